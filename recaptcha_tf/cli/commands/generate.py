"""``recaptcha-tf generate``: synthetic text CAPTCHAs as PNG files named by label, or one Parquet file."""

from __future__ import annotations

import sys

from recaptcha_tf.cli.errors import UsageError, _check_charset, _check_writable
from recaptcha_tf.cli.options import _count, _Formatter, _size

NAME = "generate"
TENSORFLOW = False


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, formatter_class=_Formatter, help="generate synthetic text CAPTCHAs")
    p.add_argument("--out", required=True, help="folder (png) or .parquet file")
    p.add_argument("--count", type=_count(1), default=5000, help="number of CAPTCHAs")
    p.add_argument("--length", default="4-6", help="label length N or MIN-MAX")
    p.add_argument("--charset", default="a-z0-9", help="characters to draw from (ranges allowed)")
    p.add_argument("--image-size", type=_size, default=(50, 200), help="HEIGHTxWIDTH in pixels, as train --image-size")
    p.add_argument("--size", default=None, help="deprecated (goes in 0.3.0): WIDTHxHEIGHT; use --image-size HxW")
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
    if args.size is not None:
        if args.image_size != (50, 200):
            raise UsageError("--size (deprecated, WIDTHxHEIGHT) and --image-size (HEIGHTxWIDTH) both given; use one.")
        print(
            "warning: --size WIDTHxHEIGHT is deprecated and goes in 0.3.0; use --image-size HEIGHTxWIDTH",
            file=sys.stderr,
        )
    try:
        if args.size is not None:
            width, height = parse_size(args.size)
            args.image_size = (height, width)
        parse_length(args.length)
    except ValueError as err:
        raise UsageError(str(err)) from None
    _check_writable(args.out, "--out", folder=args.format == "png" and not args.out.endswith(".parquet"))


def run(args) -> int:
    from recaptcha_tf.data.generator import generate_captchas, parse_length

    labels = generate_captchas(
        args.out,
        count=args.count,
        length=parse_length(args.length),
        charset=args.charset,
        size=(args.image_size[1], args.image_size[0]),  # the generator takes (width, height)
        seed=args.seed,
        format=args.format,
        style=args.style,
        preview=args.preview,
    )
    print(f"wrote {len(labels)} CAPTCHAs to {args.out}" + (f"; preview {args.preview}" if args.preview else ""))
    return 0
