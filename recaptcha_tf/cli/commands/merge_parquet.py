"""``recaptcha-tf merge-parquet``: Parquet CAPTCHA files into one (columns image, text)."""

from __future__ import annotations

from recaptcha_tf.cli.errors import _check_writable, _must_exist
from recaptcha_tf.cli.options import _add_parquet_columns, _Formatter

NAME = "merge-parquet"
TENSORFLOW = False


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, formatter_class=_Formatter, help="merge Parquet CAPTCHA files into one")
    p.add_argument("inputs", nargs="+", help="Parquet files with image bytes and label columns")
    p.add_argument("--out", required=True, help="merged Parquet file (columns image, text)")
    _add_parquet_columns(p)
    return p


def check(args) -> None:
    for path in args.inputs:
        _must_exist(path, "Input")
    _check_writable(args.out, "--out")


def run(args) -> int:
    from recaptcha_tf.data.text.parquet import merge_parquet

    rows = merge_parquet(args.inputs, args.out, image_column=args.image_column, label_column=args.label_column)
    print(f"wrote {rows} rows to {args.out}")
    return 0
