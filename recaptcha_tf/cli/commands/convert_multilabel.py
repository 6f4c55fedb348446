"""``recaptcha-tf convert-multilabel``: Hugging Face multi-label images -> image files and a path,labels CSV."""

from __future__ import annotations

import os
import sys

from recaptcha_tf.cli.errors import _check_separate, _check_writable, _must_exist
from recaptcha_tf.cli.options import _add_max_pixels, _Formatter

NAME = "convert-multilabel"
TENSORFLOW = False


def add_parser(subparsers):
    p = subparsers.add_parser(
        NAME,
        formatter_class=_Formatter,
        help="Hugging Face multi-label images (e.g. ReCAPTCHAv2-29k) -> images + path,labels CSV",
    )
    p.add_argument(
        "source",
        help="a .parquet/.arrow file, or a folder of Parquet files, Arrow files (save_to_disk) "
        "or images with metadata.jsonl/metadata.csv",
    )
    p.add_argument(
        "--out",
        required=True,
        help="folder for images/ and labels.csv (train with --data OUT --labels OUT/labels.csv --multi-label)",
    )
    p.add_argument(
        "--classes",
        default=None,
        help="comma-separated class names of the label positions (default: the dataset's features)",
    )
    p.add_argument("--image-column", default="image", help="the image column")
    p.add_argument("--label-column", default="labels", help="the labels column (multi-hot, indices or names)")
    p.add_argument(
        "--allow-outside-data", action="store_true", help="image-folder metadata: accept file names outside SOURCE"
    )
    _add_max_pixels(p)
    return p


def check(args) -> None:
    _must_exist(args.source, "Source")
    _check_writable(args.out, "--out", folder=True)
    if os.path.isdir(args.source):
        _check_separate(args.out, args.source, "the source", "convert")


def run(args) -> int:
    from recaptcha_tf.data.hf_multilabel import convert_multilabel

    result = convert_multilabel(
        args.source,
        args.out,
        class_names=args.classes and args.classes.split(","),
        image_column=args.image_column,
        label_column=args.label_column,
        allow_outside=args.allow_outside_data,
    )
    for problem in result["skipped"]:
        print(f"warning: skipped {problem}", file=sys.stderr)
    print(
        f"wrote {result['images']} images ({', '.join(f'{k} {v}' for k, v in result['splits'].items())}) "
        f"and {result['csv']}; classes: {', '.join(result['class_names'] or [])}"
    )
    return 0
