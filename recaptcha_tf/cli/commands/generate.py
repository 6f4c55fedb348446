"""``recaptcha-tf generate``: synthetic text CAPTCHAs as PNG files named by label, or one Parquet file."""

from __future__ import annotations

from recaptcha_tf.cli.errors import UsageError, _check_charset, _check_writable
from recaptcha_tf.cli.options import _count, _Formatter

NAME = "generate"
TENSORFLOW = False


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, formatter_class=_Formatter, help="generate synthetic text CAPTCHAs")
    p.add_argument("--out", required=True, help="folder (png) or .parquet file")
    p.add_argument("--count", type=_count(1), default=5000, help="number of CAPTCHAs")
    p.add_argument("--length", default="4-6", help="label length N or MIN-MAX")
    p.add_argument("--charset", default="a-z0-9", help="characters to draw from (ranges allowed)")
    p.add_argument("--size", default="200x50", help="WIDTHxHEIGHT in pixels")
    p.add_argument("--seed", type=int, default=0, help="same seed, same images")
    p.add_argument(
        "--format", choices=("png", "parquet"), default="png", help="PNG files named by label, or one Parquet file"
    )
    p.add_argument(
        "--style",
        choices=("project", "captcha-lib"),
        default="project",
        help="project: rotated text, spots, lines, elastic warp; captcha-lib: the captcha package's ImageCaptcha",
    )
    p.add_argument("--preview", default=None, help="write a contact sheet PNG here")
    return p


def check(args) -> None:
    from recaptcha_tf.data.generator import parse_length, parse_size

    _check_charset(args.charset)
    try:
        parse_size(args.size), parse_length(args.length)
    except ValueError as err:
        raise UsageError(str(err)) from None
    _check_writable(args.out, "--out", folder=args.format == "png" and not args.out.endswith(".parquet"))


def run(args) -> int:
    from recaptcha_tf.data.generator import generate_captchas, parse_length, parse_size

    labels = generate_captchas(
        args.out,
        count=args.count,
        length=parse_length(args.length),
        charset=args.charset,
        size=parse_size(args.size),
        seed=args.seed,
        format=args.format,
        style=args.style,
        preview=args.preview,
    )
    print(f"wrote {len(labels)} CAPTCHAs to {args.out}" + (f"; preview {args.preview}" if args.preview else ""))
    return 0
