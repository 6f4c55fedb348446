"""``recaptcha-tf balance``: split a class-folder dataset, then oversample its training split with Augmentor."""

from __future__ import annotations

from recaptcha_tf.cli.errors import UsageError, _check_separate, _check_split, _check_writable, _must_exist
from recaptcha_tf.cli.options import _add_common_data, _add_max_pixels, _count, _Formatter

NAME = "balance"
TENSORFLOW = True


def add_parser(subparsers):
    p = subparsers.add_parser(
        NAME,
        formatter_class=_Formatter,
        help="split a class-folder dataset and oversample its training split with Augmentor",
        description="Stratified split first; only the training split is augmented. "
        "OUT/split.json records val/test (untouched originals), so "
        "`train --data OUT` trains on the balanced set without leakage.",
    )
    _add_common_data(p, "class-folder dataset ROOT/<class>/<images>")
    p.add_argument("--out", default="balanced_images", help="output folder")
    p.add_argument(
        "--balance",
        type=_count(1),
        default=None,
        metavar="N",
        help="oversample every class up to N images, as train --balance N; default 2000",
    )
    p.add_argument("--per-class", type=_count(1), default=None, help="deprecated (goes in 0.3.0): use --balance N")
    p.add_argument("--cap", type=_count(1), default=None, help="keep at most this many originals per class")
    p.add_argument("--split", default="70/15/15", help="train/val/test fractions")
    p.add_argument("--seed", type=int, default=0, help="split and augmentation seed")
    p.add_argument(
        "--task",
        choices=("tiles", "chars"),
        default="tiles",
        help="chars: never mirror an image (a mirrored glyph is another character, or none)",
    )
    _add_max_pixels(p)
    return p


def check(args) -> None:
    import sys

    if args.per_class is not None:  # the old spelling, for one release
        if args.balance is not None and args.balance != args.per_class:
            raise UsageError("--per-class (deprecated) and --balance both given; use --balance.")
        print("warning: balance --per-class is deprecated and goes in 0.3.0; use --balance, as train", file=sys.stderr)
        args.balance = args.per_class
    args.balance = 2000 if args.balance is None else args.balance
    _must_exist(args.data, "--data")
    if args.split:
        _check_split(args.split)
    _check_writable(args.out, "--out", folder=True)
    _check_separate(args.out, args.data, "--data", "balance")


def run(args) -> int:
    from recaptcha_tf.data.balance import balance_split
    from recaptcha_tf.data.folders import scan_class_folders
    from recaptcha_tf.data.splits import stratified_split

    ds = scan_class_folders(args.data)
    if len(ds.class_names) < 2:
        raise UsageError(f"{args.data!r} has one class folder; balancing needs at least two classes.")
    split = stratified_split(ds.paths, ds.labels, ds.class_names, args.split, args.seed, root=args.data)
    from recaptcha_tf.data.balance import DEFAULT_OPERATIONS, NO_FLIP_OPERATIONS

    operations = NO_FLIP_OPERATIONS if args.task == "chars" else DEFAULT_OPERATIONS  # a mirrored glyph is another
    out = balance_split(split, args.out, per_class=args.balance, cap=args.cap, seed=args.seed, operations=operations)
    counts = out.counts()
    for i, name in enumerate(out.class_names):
        print(
            f"{name:>16}: {ds.counts()[i]:5d} -> train {counts['train'][i]:5d}, val {counts['val'][i]:4d}, "
            f"test {counts['test'][i]:4d}"
        )
    print(f"wrote {args.out}/ and {args.out}/split.json")
    return 0
