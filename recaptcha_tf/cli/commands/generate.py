"""``recaptcha-tf generate``: synthetic text CAPTCHAs as PNG files named by label, or one Parquet file."""

from __future__ import annotations

import os
import sys

from recaptcha_tf.cli.errors import UsageError, _check_charset, _check_writable
from recaptcha_tf.cli.options import _count, _Formatter, _probability, _size

NAME = "generate"
TENSORFLOW = False


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, formatter_class=_Formatter, help="generate synthetic text CAPTCHAs")
    p.add_argument("--out", required=True, help="folder (png) or .parquet file")
    p.add_argument("--count", type=_count(1), default=5000, help="number of CAPTCHAs")
    p.add_argument("--length", default=None, help="label length N or MIN-MAX; default 4-6 (wild: 3-8)")
    p.add_argument(
        "--charset", default=None, help="characters to draw from (ranges allowed); default a-z0-9 (wild: 0-9a-zA-Z)"
    )
    p.add_argument(
        "--image-size",
        type=_size,
        default=None,
        help="HEIGHTxWIDTH in pixels, as train --image-size; default 50x200 (wild: a size per image)",
    )
    p.add_argument("--size", default=None, help="deprecated (goes in 0.3.0): WIDTHxHEIGHT; use --image-size HxW")
    p.add_argument("--seed", type=int, default=0, help="same seed, same images")
    p.add_argument(
        "--format", choices=("png", "parquet"), default="png", help="PNG files named by label, or one Parquet file"
    )
    p.add_argument(
        "--style",
        choices=("project", "captcha-lib", "wild"),
        default="project",
        help="project: rotated text, spots, lines, elastic warp; captcha-lib: the captcha package's ImageCaptcha; "
        "wild: a font per image from hundreds of installed fonts, varied sizes, colours, backgrounds and clutter "
        "(needs Debian's fonts-* packages: see docs)",
    )
    p.add_argument(
        "--warp",
        type=_probability,
        default=0.0,
        help="the share of images bent along a wave, so that glyphs bend and touch (0 to 1; default 0)",
    )
    p.add_argument("--fonts", default=None, help="a text file of font file names to use (wild: pins the font list)")
    p.add_argument("--preview", default=None, help="write a contact sheet PNG here")
    return p


def check(args) -> None:
    from recaptcha_tf.data.generator import parse_length, parse_size

    if args.charset is not None:
        _check_charset(args.charset)
    if args.size is not None:
        if args.image_size is not None:
            raise UsageError("--size (deprecated, WIDTHxHEIGHT) and --image-size (HEIGHTxWIDTH) both given; use one.")
        print(
            "warning: --size WIDTHxHEIGHT is deprecated and goes in 0.3.0; use --image-size HEIGHTxWIDTH",
            file=sys.stderr,
        )
    try:
        if args.size is not None:
            width, height = parse_size(args.size)
            args.image_size = (height, width)
        if args.length is not None:
            parse_length(args.length)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.fonts is not None and not os.path.isfile(args.fonts):
        raise UsageError(f"--fonts {args.fonts!r} is not a file (one font file name a line).")
    _check_writable(args.out, "--out", folder=args.format == "png" and not args.out.endswith(".parquet"))


def run(args) -> int:
    from recaptcha_tf.data.generator import generate_captchas, parse_length

    fonts = None
    if args.style == "wild" or args.fonts:
        from recaptcha_tf.data.wild import NoFontsError, wild_fonts

        try:
            fonts = wild_fonts(listing=args.fonts)
        except NoFontsError as err:
            raise UsageError(str(err)) from None
    labels = generate_captchas(
        args.out,
        count=args.count,
        length=None if args.length is None else parse_length(args.length),
        charset=args.charset,
        size=None if args.image_size is None else (args.image_size[1], args.image_size[0]),  # (width, height)
        fonts=fonts,
        seed=args.seed,
        format=args.format,
        style=args.style,
        preview=args.preview,
        warp=args.warp,
    )
    print(f"wrote {len(labels)} CAPTCHAs to {args.out}" + (f"; preview {args.preview}" if args.preview else ""))
    return 0
