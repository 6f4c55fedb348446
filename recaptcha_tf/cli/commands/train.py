"""``recaptcha-tf train``: train a model for a task; the task's spec names the training function."""

from __future__ import annotations

import json
import os

from recaptcha_tf.cli.errors import (
    UsageError,
    _check_architecture,
    _check_charset,
    _check_split,
    _check_writable,
    _must_exist,
)
from recaptcha_tf.cli.options import (
    _add_parquet_columns,
    _count,
    _Formatter,
    _model_kwargs,
    _non_negative_float,
    _probability,
    add_training_options,
    check_task_options,
)
from recaptcha_tf.utils.run_folder import RunFolder

NAME = "train"
TENSORFLOW = True


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, formatter_class=_Formatter, help="train a model (tiles, chars or text)")
    add_training_options(p)
    p.add_argument("--run-name", default=None, help="TensorBoard run name; default: the --out folder name")
    p.add_argument("--json", action="store_true", help="end with the run's whole summary as JSON, not one line")
    p.add_argument("--resize", choices=("stretch", "pad"), default=None, help="stretch, or keep aspect ratio and pad")
    p.add_argument(
        "--steps",
        type=_count(1),
        default=None,
        help="text: optimizer updates in all, whatever the set's size (default 4000, more for inputs smaller than "
        "48x192, and at most what fits --time-budget); ignored with --epochs",
    )
    p.add_argument(
        "--time-budget",
        type=_non_negative_float,
        default=None,
        metavar="MINUTES",
        help="text: the default --steps are cut to what takes at most this many minutes of training steps on "
        "this machine, timed on a few steps first (default 15; 0: no limit); tiles/chars with pretrained "
        "--weights: the same for the model's recipe epochs (default the recipe's, 30); ignored with --epochs/--steps",
    )
    p.add_argument(
        "--warmup-fraction",
        type=_probability,
        default=None,
        metavar="F",
        help="text: share of the steps over which the learning rate rises linearly from 0 (default: one "
        "evaluation's, 0.05)",
    )
    p.add_argument(
        "--curriculum",
        type=_probability,
        default=0.0,
        metavar="F",
        help="text: share of the steps that train on labels of growing length (the shortest first, one "
        "character more at each equal stage) before every image; 0: none",
    )
    p.add_argument(
        "--plateau-extension",
        type=_probability,
        default=0.0,
        metavar="F",
        help="text: evaluations still reading blanks (the CTC plateau) are added to the run, up to this share "
        "of the steps more, and held out of the learning-rate schedule; 0: none",
    )
    p.add_argument(
        "--colour",
        choices=("auto", "ink", "gray"),
        default="auto",
        help="text: ink (distance from each image's background colour; any polarity or text colour; "
        "the default) or gray (grayscale, padded)",
    )
    p.add_argument(
        "--label-smoothing",
        type=float,
        default=None,
        help="tiles/chars cross-entropy label smoothing (default 0.1, or the model's transfer recipe's)",
    )
    p.add_argument(
        "--balance",
        type=int,
        default=None,
        metavar="N",
        help="oversample each training class to N images with Augmentor first; 0: off. Default (tiles): "
        "classes smaller than min(500, the largest class) are oversampled to that size",
    )
    p.add_argument(
        "--balanced-dir",
        default=None,
        help="where balancing writes the balanced training split (default: OUT/balanced_images)",
    )
    p.add_argument(
        "--class-weight",
        type=_class_weight,
        default="none",
        metavar="{none,balanced,NAME=W}",
        help="'balanced' weights the loss by inverse class frequency instead of oversampling; NAME=W[,NAME=W...] "
        "multiplies those classes' loss (e.g. other=3) and keeps the default oversampling",
    )
    p.add_argument(
        "--mix",
        choices=("none", "mixup", "cutmix"),
        default="none",
        help="tiles/chars: blend pairs of training images and their labels (Keras MixUp / CutMix)",
    )
    p.add_argument("--cache", default="memory", help="'memory', 'none', or a file prefix for an on-disk cache")
    p.add_argument("--val-data", default=None, help="text: separate validation set")
    _add_parquet_columns(p)
    p.add_argument(
        "--weights",
        default=None,
        help="backbone weights: none, imagenet (standard Keras/keras-hub download and cache), a "
        "keras-hub preset name or local preset folder (efficientnet-lite0, vit-*), a .weights.h5 file, "
        "or a trained .keras model with the same backbone (e.g. text: a model trained on synthetic CAPTCHAs)",
    )
    p.add_argument("--alpha", type=float, default=None, help="mobilenetv2 width multiplier (0.35 to 1.4; default 1.0)")
    p.add_argument(
        "--freeze-epochs",
        type=int,
        default=None,
        help="phase-1 epochs with the backbone frozen (default 3 with --weights, else 0; text: 0)",
    )
    p.add_argument(
        "--unfreeze",
        default=None,
        help="phase 2 unfreezes 'all' of the backbone or its top N blocks (default all, or the recipe's)",
    )
    p.add_argument(
        "--fine-tune-learning-rate",
        type=float,
        default=None,
        help="phase-2 peak learning rate (default: --learning-rate / 10 after a frozen phase)",
    )
    p.add_argument("--multi-label", action="store_true", help="tiles: sigmoid head with binary cross-entropy")
    p.add_argument("--labels", default=None, help="multi-label CSV 'path,labels' (';'-separated), paths under --data")
    p.add_argument(
        "--allow-outside-data",
        action="store_true",
        help="multi-label CSV: accept absolute and ../ paths that point outside --data",
    )
    p.add_argument("--threshold", type=float, default=0.5, help="multi-label decision threshold")
    p.add_argument(
        "--teacher",
        dest="teachers",
        action="append",
        default=[],
        metavar="RUN",
        help="tiles/chars: distil from this run's probabilities (repeat for several, averaged); the student "
        "mixes them with the labels",
    )
    p.add_argument(
        "--distill-alpha", type=float, default=None, help="weight of the hard labels with --teacher (default 0.3)"
    )
    p.add_argument(
        "--distill-temperature", type=float, default=None, help="temperature of the soft targets (default 2)"
    )
    return p


def _train_out(args) -> str:
    from recaptcha_tf.tasks import task_defaults

    model = args.model or task_defaults(args.task)["model"]
    return args.out or os.path.join("models", f"{args.task}-{model}")


def _class_weight(text: str) -> str:
    """argparse type: ``none``, ``balanced`` or ``NAME=W[,NAME=W...]`` (its class names are checked with the data)."""
    if text.strip() in ("none", "balanced"):
        return text.strip()
    import argparse

    from recaptcha_tf.training.class_weights import parse_class_weight

    try:
        parse_class_weight(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--class-weight ")) from None
    return text.strip()


def _unfreeze(value: str | None):
    """``--unfreeze``: ``None`` (the default), ``"all"`` or a number of top blocks."""
    if value is None or value == "all":
        return value
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"--unfreeze takes 'all' or a number of blocks, not {value!r}.") from None


def check(args) -> None:
    from recaptcha_tf.data.detect import choose_task

    if args.task is None:  # read from the data (one log line says how)
        _must_exist(args.data, "--data")
        args.task = choose_task(None, args.data, labels=args.labels, multi_label=args.multi_label)
    check_task_options(args, add_parser, args.task, f"--task {args.task}")
    _check_architecture(args.model, args.task)
    _must_exist(args.data, "--data")
    if args.split:
        _check_split(args.split)
    _check_charset(args.charset)
    if args.labels:
        _must_exist(args.labels, "--labels")
    _model_kwargs(args.model_arg)
    _unfreeze(args.unfreeze)
    _check_writable(_train_out(args), "--out", folder=True)
    if args.val_data:
        _must_exist(args.val_data, "--val-data")


def summary_line(summary: dict, spec, out: str, data: str) -> str:
    """One line to end a run on: where the model is, its headline test figure, and the next command."""
    test = summary.get("test") or {}
    headline = next((key for key in spec.report_keys if key != "n" and key in test), None)
    figure = f"test {headline} {test[headline]:.3f} on {test.get('n', '?')} images" if headline else "no test split"
    minutes = summary.get("train_seconds", 0) / 60
    return (
        f"trained {RunFolder(out).model}: {figure}, {summary.get('epochs_run', '?')} epochs in "
        f"{minutes:.1f} min; next: recaptcha-tf evaluate --model {out} --data {data}"
    )


def run(args) -> int:
    from recaptcha_tf.tasks import get_task, task_defaults
    from recaptcha_tf.training.run_folder import clear_run_state

    model = args.model or task_defaults(args.task)["model"]
    out = _train_out(args)
    split_path = args.split if args.split.endswith(".json") else None
    fractions = "70/15/15" if split_path else args.split
    if args.overwrite:
        clear_run_state(out)
    # every option of `train` once; the task's training function takes the ones that apply to it
    summary = get_task(args.task).run_workflow(
        "train",
        args.data,
        out,
        task=args.task,
        model=model,
        charset=args.charset,
        case=args.case,
        label_pattern=args.label_pattern,
        image_size=args.image_size,
        grayscale=args.grayscale,
        resize=args.resize,
        colour=args.colour,
        epochs=args.epochs,
        steps=args.steps,
        time_budget=args.time_budget,
        warmup_fraction=args.warmup_fraction,
        curriculum=args.curriculum,
        plateau_extension=args.plateau_extension,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        optimizer=args.optimizer,
        label_smoothing=args.label_smoothing,
        patience=args.patience,
        split=split_path,
        fractions=fractions,
        seed=args.seed,
        val_data=args.val_data,
        balance_per_class=args.balance,
        balanced_dir=args.balanced_dir,
        class_weight=args.class_weight,
        augment=not args.no_augment,
        mix=args.mix,
        cache={"memory": True, "none": False}.get(args.cache, args.cache),
        logdir=args.logdir or None,
        run_name=args.run_name,
        model_kwargs=_model_kwargs(args.model_arg) | ({"alpha": args.alpha} if args.alpha else {}),
        precision=args.precision,
        strategy=args.strategy,
        weights=args.weights,
        freeze_epochs=args.freeze_epochs,
        unfreeze=_unfreeze(args.unfreeze),
        fine_tune_learning_rate=args.fine_tune_learning_rate,
        teachers=args.teachers,
        distill_alpha=args.distill_alpha,
        distill_temperature=args.distill_temperature,
        multi_label=args.multi_label,
        labels_csv=args.labels,
        threshold=args.threshold,
        allow_outside_data=args.allow_outside_data,
        image_column=args.image_column,
        label_column=args.label_column,
    )
    print(json.dumps(summary, indent=2) if args.json else summary_line(summary, get_task(args.task), out, args.data))
    return 0
