"""The ``recaptcha-tf`` command line: parses arguments and dispatches, nothing more.

Every sub-command has ``--help`` with its defaults. Errors about the user's
input (bad arguments and paths, bad folders, unknown characters, class
mismatches, corrupt images, models that safe mode refuses) are printed as one
line ``error: ...`` with exit status 2, not as a traceback (:func:`main` is the
one error boundary; a bug still shows its traceback). Arguments and paths are
checked before TensorFlow is imported, and TensorFlow's start-up chatter is
hidden unless ``--verbose``.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import sys

from recaptcha_tf.tasks import task_names

log = logging.getLogger("recaptcha_tf")

# Commands that never import TensorFlow.
NO_TENSORFLOW = ("generate", "merge-parquet", "convert-multilabel")


class UsageError(ValueError):
    """A command-line argument or path that cannot be used as given (checked before any work)."""


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line ``error: ...`` (exit status 2), like every other user error."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def _count(minimum: int):
    """argparse type: an integer of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _number(zero_allowed: bool):
    """argparse type: a number above 0 (or at least 0 with ``zero_allowed``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (value >= 0 if zero_allowed else value > 0):
            raise argparse.ArgumentTypeError(f"must be {'0 or more' if zero_allowed else 'positive'}, got {text}")
        return value

    return parse


_positive_float, _non_negative_float = _number(zero_allowed=False), _number(zero_allowed=True)


def _size(text: str) -> tuple[int, int]:
    """``"120"`` -> (120, 120); ``"64x256"`` -> (64, 256) as (height, width)."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad size {text!r}; use N or HxW") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 8:
        raise argparse.ArgumentTypeError(f"bad size {text!r}; use N or HxW with sides of at least 8")
    return parts[0], parts[1]


def _add_common_data(p, help_data: str):
    p.add_argument("--data", required=True, help=help_data)


def _add_tune_parser(sub) -> None:
    p = sub.add_parser(
        "tune",
        formatter_class=_Formatter,
        help="Keras Tuner search (grid, random, hyperband, bayesian) logged to TensorBoard HParams",
        description="Searches optimizers, losses, activations, learning rates or architecture with Keras Tuner. "
        "Every trial appears in TensorBoard's HParams tab (tensorboard --logdir LOGDIR). Re-running "
        "the same command resumes a stopped search; --overwrite starts afresh. OUT gets results.csv/.md/"
        ".png and the best model (model.keras), which evaluate and predict accept. Distributed: set "
        "KERASTUNER_TUNER_ID (chief, tuner0, tuner1, ...), KERASTUNER_ORACLE_IP and "
        "KERASTUNER_ORACLE_PORT and run the same command on the chief and every worker.",
    )
    _add_common_data(p, "class folders (tiles/chars), or text images named by label / Parquet (text)")
    p.add_argument("--task", choices=task_names(), default="tiles")
    space = p.add_mutually_exclusive_group()
    space.add_argument(
        "--search",
        choices=("optimizers", "architecture"),
        default=None,
        help="built-in search space (optimizers when --space is not given either)",
    )
    space.add_argument("--space", default=None, help="YAML or JSON file mapping hyperparameters to lists of values")
    p.add_argument(
        "--tuner",
        choices=("grid", "random", "hyperband", "bayesian"),
        default="grid",
        help="grid runs every combination once",
    )
    p.add_argument("--model", default=None, help="registry model; default cnn (tiles, chars), crnn (text)")
    p.add_argument(
        "--max-trials",
        type=int,
        default=None,
        help="cap on trials; default the whole grid (grid) or 10 (random, bayesian); not for hyperband",
    )
    p.add_argument("--epochs", type=_count(1), default=8, help="epochs per trial (hyperband: the most any trial gets)")
    p.add_argument(
        "--patience", type=_count(0), default=3, help="early stopping per trial on the objective (0 disables)"
    )
    p.add_argument(
        "--objective",
        default=None,
        help="tiles/chars: macro_f1 (default), accuracy or loss; text: cer (default), exact_match or loss "
        "(all on the validation split)",
    )
    p.add_argument(
        "--logdir", default="logs/tune", help="TensorBoard root ('' to disable); trials go to LOGDIR/NAME/trial_<id>"
    )
    p.add_argument("--name", default=None, help="search name; default <task>-<space>-<tuner>")
    p.add_argument("--out", default=None, help="search folder (state, results, best model); default models/tune-<name>")
    p.add_argument("--overwrite", action="store_true", help="start afresh instead of resuming the search in --out")
    p.add_argument("--seed", type=int, default=0, help="split, shuffle, initialisation and tuner seed")
    p.add_argument(
        "--image-size",
        type=_size,
        default=None,
        help="N or HxW; default 112 (tiles), 52x32 (chars), fitted to the images (text)",
    )
    p.add_argument(
        "--grayscale",
        action="store_true",
        default=None,
        help="1-channel images (default for chars; text: --colour gray)",
    )
    p.add_argument("--batch-size", type=_count(1), default=None, help="default 64 (tiles, chars), 16 (text)")
    p.add_argument(
        "--learning-rate",
        type=_positive_float,
        default=None,
        help="peak learning rate when the space does not search it; default the task's",
    )
    p.add_argument(
        "--optimizer",
        default="adam",
        choices=("adam", "adamw", "nadam", "rmsprop", "sgd", "sgd+momentum"),
        help="optimizer when the space does not search it",
    )
    p.add_argument(
        "--loss",
        default=None,
        help="loss when the space does not search it; default label_smoothed_crossentropy (ctc for crnn)",
    )
    p.add_argument("--split", default="70/15/15", help="train/val/test fractions")
    p.add_argument("--no-augment", action="store_true", help="disable random augmentation")
    _add_runtime(p)
    p.add_argument(
        "--charset", default=None, help="text: vocabulary, e.g. a-z0-9 (default: a-z0-9 plus characters in the data)"
    )
    _add_text_labels(p)
    p.add_argument(
        "--model-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fixed builder argument, JSON value (the space overrides it)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the validated space and grid size, then exit")
    _add_max_pixels(p)


def _run_tune(args) -> int:
    from recaptcha_tf.tuning import grid_size, load_search_space

    space = args.space or args.search or "optimizers"
    if args.dry_run:
        import yaml

        parsed = load_search_space(space, args.task, args.model, args.image_size)
        print(yaml.safe_dump(parsed, sort_keys=False).rstrip())
        print(f"# {grid_size(parsed)} combinations")
        return 0
    from recaptcha_tf.tuning.search import run_search

    summary = run_search(
        args.data,
        task=args.task,
        space=space,
        tuner=args.tuner,
        model=args.model,
        max_trials=args.max_trials,
        epochs=args.epochs,
        patience=args.patience,
        objective=args.objective,
        logdir=args.logdir or None,
        name=args.name,
        out=args.out,
        overwrite=args.overwrite,
        seed=args.seed,
        image_size=args.image_size,
        grayscale=args.grayscale,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        optimizer=args.optimizer,
        loss=args.loss,
        fractions=args.split,
        augment=not args.no_augment,
        charset=args.charset,
        case=args.case,
        label_pattern=args.label_pattern,
        model_kwargs=_model_kwargs(args.model_arg),
        precision=args.precision,
        verbose=2,
        strategy=args.strategy,
    )
    if summary.get("results", {}).get("md"):
        with open(summary["results"]["md"]) as f:
            print("".join(f.readlines()[:14]))
    print(json.dumps(summary, indent=2, default=str))
    return 0


def _add_runtime(p):
    """Number format and tf.distribute strategy (train and tune)."""
    p.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "float32", "mixed_bfloat16", "mixed_float16"),
        help="number format; auto: bf16 on CPUs that have it, fp16 on GPUs, else float32",
    )
    p.add_argument(
        "--strategy",
        default="auto",
        choices=("auto", "default", "mirrored", "multiworker", "tpu"),
        help="tf.distribute strategy; --batch-size is per replica and the learning rate scales with "
        "replicas. auto: multiworker with a multi-worker TF_CONFIG, tpu on a TPU, mirrored with 2+ GPUs",
    )


def _add_inference_runtime(p):
    """What runs the model (predict and serve)."""
    p.add_argument(
        "--runtime",
        choices=("keras", "onnx", "tflite"),
        default="keras",
        help="keras: the .keras model (compiled once); onnx / tflite: its export (RUN/export/model.onnx "
        "or .tflite from `recaptcha-tf export`, or that file as --model) through ONNX Runtime / "
        "TFLite, without loading the Keras model",
    )


def _add_max_pixels(p):
    from recaptcha_tf.data.images import DEFAULT_MAX_PIXELS

    p.add_argument(
        "--max-pixels",
        type=_count(0),
        default=DEFAULT_MAX_PIXELS,
        help="images declaring more pixels (width x height) are skipped in training and refused by "
        "predict/evaluate, from their header, before decoding (decompression bombs); 0: no limit",
    )


def _add_tta(p):
    p.add_argument(
        "--tta",
        choices=("none", "flip"),
        default="none",
        help="tiles: test-time augmentation; flip averages each tile's probabilities with its mirror image's",
    )


def _add_parquet_columns(p):
    p.add_argument("--image-column", default=None, help="Parquet: the image column (default: detected)")
    p.add_argument("--label-column", default=None, help="Parquet: the label column (default: detected)")


def _add_text_labels(p):
    """How text labels are read from file names (train, tune, evaluate)."""
    p.add_argument("--case", choices=("keep", "lower", "upper"), default="keep", help="text: label case handling")
    p.add_argument("--label-pattern", default=None, help="text: regex with group 'label' for file names")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="recaptcha-tf",
        formatter_class=_Formatter,
        description="Keras/TensorFlow toolkit for CAPTCHA recognition research (tiles, text, chars).",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging, and TensorFlow's own start-up and C++ log lines"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "balance",
        formatter_class=_Formatter,
        help="split a class-folder dataset and oversample its training split with Augmentor",
        description="Stratified split first; only the training split is augmented. "
        "OUT/split.json records val/test (untouched originals), so "
        "`train --data OUT` trains on the balanced set without leakage.",
    )
    _add_common_data(p, "class-folder dataset ROOT/<class>/<images>")
    p.add_argument("--out", default="balanced_images", help="output folder")
    p.add_argument("--per-class", type=_count(1), default=2000, help="oversample every class up to this many images")
    p.add_argument("--cap", type=_count(1), default=None, help="keep at most this many originals per class")
    p.add_argument("--split", default="70/15/15", help="train/val/test fractions")
    p.add_argument("--seed", type=int, default=0, help="split and augmentation seed")
    _add_max_pixels(p)

    p = sub.add_parser("train", formatter_class=_Formatter, help="train a model (tiles, chars or text)")
    _add_common_data(p, "class folders (tiles/chars), or text images named by label / Parquet (text)")
    p.add_argument("--task", choices=task_names(), default="tiles")
    p.add_argument("--model", default=None, help="registry name; default cnn (tiles), resnet18 (chars), crnn (text)")
    p.add_argument("--out", default=None, help="run folder; default models/<task>-<model>")
    p.add_argument("--logdir", default="logs", help="TensorBoard root ('' to disable)")
    p.add_argument("--run-name", default=None, help="TensorBoard run name; default: the --out folder name")
    p.add_argument(
        "--image-size",
        type=_size,
        default=None,
        help="N or HxW; default 112 (tiles), 52x32 (chars); text: fitted to the training images",
    )
    p.add_argument(
        "--grayscale",
        action="store_true",
        default=None,
        help="train on 1-channel images (default for chars; text: the same as --colour gray)",
    )
    p.add_argument("--resize", choices=("stretch", "pad"), default=None, help="stretch, or keep aspect ratio and pad")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh: remove the run's state in --out (backup, split.json, history, checkpoints, "
        "balanced_images) first; other files in --out are kept",
    )
    p.add_argument(
        "--epochs",
        type=_count(1),
        default=None,
        help="default 26 (tiles); chars: from the set's size (8-30); text: as many as --steps takes",
    )
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
        "--colour",
        choices=("auto", "ink", "gray"),
        default="auto",
        help="text: ink (distance from each image's background colour; any polarity or text colour; "
        "the default) or gray (grayscale, padded)",
    )
    p.add_argument("--batch-size", type=_count(1), default=None, help="default 64 (tiles, chars), 16 (text)")
    p.add_argument(
        "--learning-rate", type=_positive_float, default=None, help="peak learning rate of the cosine schedule"
    )
    p.add_argument("--optimizer", default="adam", choices=("adam", "adamw", "nadam", "rmsprop", "sgd"))
    p.add_argument(
        "--label-smoothing",
        type=float,
        default=None,
        help="tiles/chars cross-entropy label smoothing (default 0.1, or the model's transfer recipe's)",
    )
    p.add_argument("--patience", type=_count(0), default=None, help="early-stopping patience in epochs (0 disables)")
    p.add_argument(
        "--split",
        default="70/15/15",
        help="train/val/test fractions adding up to 100 (70/30: no test part), or a split.json to reuse",
    )
    p.add_argument("--seed", type=int, default=0, help="split, shuffle and initialisation seed")
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
        choices=("none", "balanced"),
        default="none",
        help="'balanced' weights the loss by inverse class frequency instead of oversampling",
    )
    p.add_argument("--no-augment", action="store_true", help="disable random augmentation")
    p.add_argument(
        "--mix",
        choices=("none", "mixup", "cutmix"),
        default="none",
        help="tiles/chars: blend pairs of training images and their labels (Keras MixUp / CutMix)",
    )
    p.add_argument("--cache", default="memory", help="'memory', 'none', or a file prefix for an on-disk cache")
    _add_runtime(p)
    p.add_argument(
        "--charset", default=None, help="text: vocabulary, e.g. a-z0-9 (default: a-z0-9 plus characters in the data)"
    )
    _add_text_labels(p)
    p.add_argument("--val-data", default=None, help="text: separate validation set")
    _add_parquet_columns(p)
    p.add_argument(
        "--model-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra builder argument, JSON value (e.g. conv_layers=4, filters=[32,64])",
    )
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
    _add_max_pixels(p)

    p = sub.add_parser("evaluate", formatter_class=_Formatter, help="evaluate a saved model on a data folder")
    p.add_argument("--model", required=True, help="run folder or .keras file")
    _add_common_data(p, "class folders, text images, or Parquet")
    p.add_argument("--report", default=None, help="write the JSON report here (plots go beside it)")
    p.add_argument(
        "--subset",
        choices=("auto", "all", "train", "val", "test"),
        default="auto",
        help="auto: the run's test split if --data is its training data, else every image",
    )
    p.add_argument("--beam-width", type=int, default=0, help="text/CTC: beam search width (0 = greedy)")
    _add_text_labels(p)
    p.add_argument("--labels", default=None, help="multi-label models: CSV 'path,labels' (default: class folders)")
    p.add_argument(
        "--allow-outside-data",
        action="store_true",
        help="multi-label CSV: accept absolute and ../ paths that point outside --data",
    )
    p.add_argument(
        "--challenges",
        type=_count(0),
        default=500,
        help="tiles: seeded 3x3 and 4x4 grids for the challenge-level score (0 skips it)",
    )
    _add_tta(p)
    p.add_argument(
        "--ensemble",
        nargs="+",
        default=[],
        metavar="RUN",
        help="combine these runs with --model: tiles/chars average the probabilities (same classes); text: "
        "each run reads, and the text most runs read wins (ties: the most confident)",
    )
    _add_parquet_columns(p)
    _add_max_pixels(p)

    p = sub.add_parser("predict", formatter_class=_Formatter, help="predict image files with a saved model")
    p.add_argument("--model", required=True, help="run folder or .keras file (or an .onnx / .tflite export)")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--top-k", type=_count(1), default=3, help="classifiers: how many classes to list")
    p.add_argument("--beam-width", type=_count(0), default=0, help="text/CTC: beam search width (0 = greedy)")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    _add_tta(p)
    _add_inference_runtime(p)
    _add_max_pixels(p)

    p = sub.add_parser("generate", formatter_class=_Formatter, help="generate synthetic text CAPTCHAs")
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

    p = sub.add_parser("merge-parquet", formatter_class=_Formatter, help="merge Parquet CAPTCHA files into one")
    p.add_argument("inputs", nargs="+", help="Parquet files with image bytes and label columns")
    p.add_argument("--out", required=True, help="merged Parquet file (columns image, text)")
    _add_parquet_columns(p)

    p = sub.add_parser(
        "convert-multilabel",
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

    p = sub.add_parser(
        "demo",
        formatter_class=_Formatter,
        help="generate ~5,000 CAPTCHAs, train the CRNN, evaluate on a held-out generated set",
    )
    p.add_argument("--out", default="demo_run", help="folder for generated data, model and reports")
    p.add_argument("--logdir", default="logs", help="TensorBoard root")
    p.add_argument(
        "--count", type=_count(10), default=5000, help="training CAPTCHAs to generate (500 more are held out)"
    )
    p.add_argument("--epochs", type=_count(1), default=None, help="CRNN epochs (default 12)")
    p.add_argument("--seed", type=int, default=0, help="generator and training seed")

    p = sub.add_parser(
        "export",
        formatter_class=_Formatter,
        help="export a saved model to SavedModel, TFLite or ONNX and check parity with Keras",
        description="Exports the float32 inference model (raw images of any size in, resizing "
        "inside) with a sidecar <artifact>.json (names, kind, threshold, task, size, "
        "channels, resize), then compares it with Keras on real images. A failed "
        "parity check exits with status 1.",
    )
    p.add_argument("--model", required=True, help="run folder or .keras file")
    p.add_argument("--format", required=True, choices=("savedmodel", "tflite", "onnx"))
    p.add_argument(
        "--quantize",
        choices=("dynamic",),
        default=None,
        help="dynamic-range quantization (int8 weights; tflite and onnx)",
    )
    p.add_argument(
        "--out", default=None, help="artifact path; default RUN/export/model[_dynamic]{_savedmodel,.tflite,.onnx}"
    )
    p.add_argument(
        "--data",
        nargs="*",
        default=None,
        help="images or folders for the parity check; default the run's test split (split.json)",
    )
    p.add_argument("--parity-images", type=_count(1), default=64, help="at most this many images in the parity check")
    p.add_argument(
        "--tolerance", type=float, default=1e-4, help="float32 exports: max abs difference allowed on probabilities"
    )
    p.add_argument(
        "--min-agreement",
        type=float,
        default=0.9,
        help="quantized exports: top-1 / label-set / decoded-text agreement required",
    )
    p.add_argument("--no-parity", action="store_true", help="skip the parity check")
    _add_max_pixels(p)

    p = sub.add_parser(
        "serve",
        formatter_class=_Formatter,
        help="Gradio demo: tiles, text CAPTCHAs and 3x3/4x4 grid challenges",
        description="Uploads are validated (size in bytes and pixels, image content) before TensorFlow sees them.",
    )
    p.add_argument("--model", required=True, help="run folder or .keras file")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    p.add_argument("--port", type=_count(0), default=7860)
    p.add_argument("--max-bytes", type=_count(1), default=5_000_000, help="largest upload in bytes")
    p.add_argument(
        "--max-pixels", type=_count(1), default=4096 * 4096, help="largest upload in pixels (width x height)"
    )
    _add_inference_runtime(p)
    p.add_argument("--max-batch-size", type=_count(1), default=32, help="most concurrent images per model call")
    p.add_argument(
        "--batch-wait-ms", type=float, default=2.0, help="how long a request waits for others to join its micro-batch"
    )
    _add_tune_parser(sub)
    return parser


def _model_kwargs(items):
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not key or not eq:
            raise UsageError(f"--model-arg {item!r}: use KEY=VALUE, e.g. conv_layers=4 or filters=[32,64].")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def dispatch(args) -> int:
    if args.command == "balance":
        from recaptcha_tf.data.balance import balance_split
        from recaptcha_tf.data.folders import scan_class_folders
        from recaptcha_tf.data.splits import stratified_split

        ds = scan_class_folders(args.data)
        if len(ds.class_names) < 2:
            raise UsageError(f"{args.data!r} has one class folder; balancing needs at least two classes.")
        split = stratified_split(ds.paths, ds.labels, ds.class_names, args.split, args.seed, root=args.data)
        out = balance_split(split, args.out, per_class=args.per_class, cap=args.cap, seed=args.seed)
        counts = out.counts()
        for i, name in enumerate(out.class_names):
            print(
                f"{name:>16}: {ds.counts()[i]:5d} -> train {counts['train'][i]:5d}, val {counts['val'][i]:4d}, "
                f"test {counts['test'][i]:4d}"
            )
        print(f"wrote {args.out}/ and {args.out}/split.json")
    elif args.command == "train":
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
            multi_label=args.multi_label,
            labels_csv=args.labels,
            threshold=args.threshold,
            allow_outside_data=args.allow_outside_data,
            image_column=args.image_column,
            label_column=args.label_column,
        )
        print(json.dumps(summary, indent=2))
    elif args.command == "evaluate":
        from recaptcha_tf.evaluation.workflow import evaluate

        result = evaluate(
            args.model,
            args.data,
            report=args.report,
            subset=args.subset,
            beam_width=args.beam_width,
            label_pattern=args.label_pattern,
            case=args.case,
            labels_csv=args.labels,
            challenges=args.challenges,
            image_column=args.image_column,
            label_column=args.label_column,
            allow_outside_data=args.allow_outside_data,
            tta=args.tta,
            ensemble=args.ensemble,
        )
        from recaptcha_tf.tasks import get_task

        keys = [k for name in task_names() for k in get_task(name).report_keys]
        keys = [k for k in keys if k not in ("challenge", "ms_per_image")]
        shown = {k: result[k] for k in dict.fromkeys([*keys, "subset", "images_per_second"]) if k in result}
        if "challenge" in result:
            shown["challenge_solved"] = {g: r["solved"] for g, r in result["challenge"].items()}
        print(json.dumps(shown, indent=2))
    elif args.command == "predict":
        from recaptcha_tf.inference.predictor import load_inference, predict

        results = predict(
            load_inference(args.model, args.runtime),
            args.images,
            top_k=args.top_k,
            beam_width=args.beam_width,
            errors="report",
            tta=args.tta,
        )
        failed = 0
        for path, r in zip(args.images, results):
            if "error" in r:
                failed += 1
                print(f"error: {r['error']}", file=sys.stderr)
                if args.json:
                    print(json.dumps({"image": path, **r}))
            elif args.json:
                print(json.dumps({"image": path, **r}))
            elif "text" in r:
                conf = " ".join(f"{c}:{p:.2f}" for c, p in zip(r["text"], r["confidence"]))
                print(f"{path}\t{r['text']}\t{conf}")
            else:
                top = ", ".join(f"{n} {p:.3f}" for n, p in r["top_k"])
                print(f"{path}\t{r['label']}\t{r['confidence']:.3f}\t[{top}]")
        if failed:
            print(f"error: {failed} of {len(results)} image(s) could not be read", file=sys.stderr)
            return 2
    elif args.command == "generate":
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
    elif args.command == "merge-parquet":
        from recaptcha_tf.data.text.parquet import merge_parquet

        rows = merge_parquet(args.inputs, args.out, image_column=args.image_column, label_column=args.label_column)
        print(f"wrote {rows} rows to {args.out}")
    elif args.command == "convert-multilabel":
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
    elif args.command == "demo":
        from recaptcha_tf.cli.demo import run_demo

        run_demo(args.out, logdir=args.logdir, count=args.count, epochs=args.epochs, seed=args.seed)
    elif args.command == "export":
        return _export(args)
    elif args.command == "serve":
        from recaptcha_tf.serving.app import serve

        serve(
            args.model,
            host=args.host,
            port=args.port,
            max_bytes=args.max_bytes,
            max_pixels=args.max_pixels,
            runtime=args.runtime,
            max_batch_size=args.max_batch_size,
            batch_wait_ms=args.batch_wait_ms,
        )
    elif args.command == "tune":
        return _run_tune(args)
    return 0


# ----------------------------------------------------------------------------- checks before TensorFlow


def _train_out(args) -> str:
    from recaptcha_tf.tasks import task_defaults

    model = args.model or task_defaults(args.task)["model"]
    return args.out or os.path.join("models", f"{args.task}-{model}")


def _export(args) -> int:
    """The ``export`` command: export, write the sidecar, check parity, print; returns the exit status.

    0: exported and parity passed (or skipped); 1: parity failed; 2: the export cannot be made.
    The parity report is written to ``<artifact>.parity.json``.
    """
    from recaptcha_tf.export import (
        ExportError,
        artifact_size,
        check_parity,
        describe_parity,
        export_model,
        sidecar_path,
        write_json,
    )
    from recaptcha_tf.inference.loading import load_model

    try:
        model = load_model(args.model)
        artifact = export_model(args.model, args.format, out=args.out, quantize=args.quantize, model=model)
    except ExportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"exported {artifact} ({artifact_size(artifact) / 1e6:.2f} MB); sidecar {sidecar_path(artifact)}")
    if args.no_parity:
        return 0
    try:
        report = check_parity(
            args.model,
            artifact,
            sources=args.data or None,
            limit=args.parity_images,
            tolerance=args.tolerance,
            min_agreement=args.min_agreement,
            model=model,
        )
    except ExportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    report_path = write_json(report, artifact.rstrip("/" + os.sep) + ".parity.json")
    print(describe_parity(report))
    if not report["passed"]:
        print(
            f"error: the {args.format} export does not agree with the Keras model (details: {report_path}); "
            "do not deploy it.",
            file=sys.stderr,
        )
        for d in report["disagreements"][:5]:
            print(f"  {d['image']}: keras {d['keras']!r}, export {d['export']!r}", file=sys.stderr)
        return 1
    return 0


def _unfreeze(value: str | None):
    """``--unfreeze``: ``None`` (the default), ``"all"`` or a number of top blocks."""
    if value is None or value == "all":
        return value
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"--unfreeze takes 'all' or a number of blocks, not {value!r}.") from None


def _must_exist(path: str, what: str) -> None:
    if not os.path.exists(path):
        raise UsageError(f"{what} {path!r} does not exist.")


def _check_model_path(path: str) -> None:
    """A run folder holding model.keras, or a .keras file (the same rule as inference.resolve_model_path)."""
    file = os.path.join(path, "model.keras") if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise UsageError(f"No model at {file!r}: pass a run folder with model.keras or a .keras file.")


def _check_writable(path: str, what: str, folder: bool = False) -> None:
    """``path`` can be created: no file where a folder must be, and the nearest existing folder is writable."""
    path = os.path.abspath(path)
    if folder and os.path.isfile(path):
        raise UsageError(f"{what} {path!r} is a file, not a folder.")
    if not folder and os.path.isdir(path):
        raise UsageError(f"{what} {path!r} is a folder; give a file name.")
    parent = path if folder else os.path.dirname(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise UsageError(f"Cannot write {what.lower()} {path!r}: {parent!r} is a file, not a folder.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"Cannot write {what.lower()} {path!r}: no permission to write in {parent!r}.")


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _check_port(host: str, port: int) -> None:
    import socket

    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise UsageError(f"Port {port} on {host} is already in use; pick another with --port.") from None
            raise UsageError(f"Cannot listen on {host}:{port}: {err.strerror}.") from None


def _check_split(text: str) -> None:
    from recaptcha_tf.data.splits import parse_fractions

    if text.endswith(".json"):
        _must_exist(text, "Split manifest")
        return
    if parse_fractions(text)[2] == 0:
        log.warning("--split %s has no test part: the run gets no test report.", text)


def check_args(args) -> None:
    """Argument and path checks that need no TensorFlow (so bad input fails in a fraction of a second)."""
    from recaptcha_tf.data.images import set_max_pixels

    if getattr(args, "max_pixels", None) is not None:
        set_max_pixels(args.max_pixels)  # serve: uploads are checked against it before TensorFlow too
    command = args.command
    if command in ("train", "tune", "balance", "evaluate"):
        _must_exist(args.data, "--data")
    if command in ("train", "tune", "balance") and getattr(args, "split", None):
        _check_split(args.split)
    if getattr(args, "charset", None):
        from recaptcha_tf.data.text.vocabulary import expand_charset

        try:
            expand_charset(args.charset)
        except ValueError as err:
            raise UsageError(f"--charset: {err}") from None
    if getattr(args, "labels", None):
        _must_exist(args.labels, "--labels")
    if getattr(args, "model_arg", None):
        _model_kwargs(args.model_arg)
    if command == "train":
        _check_writable(_train_out(args), "--out", folder=True)
        if args.val_data:
            _must_exist(args.val_data, "--val-data")
    elif command == "balance":
        _check_writable(args.out, "--out", folder=True)
        if _inside(args.out, args.data) or _inside(args.data, args.out):
            raise UsageError(f"--out {args.out!r} and --data {args.data!r} overlap; balance into a separate folder.")
    elif command in ("evaluate", "predict", "export", "serve"):
        _check_model_path(args.model)
        for member in getattr(args, "ensemble", None) or []:
            _check_model_path(member)
    if command == "evaluate" and args.report:
        _check_writable(args.report, "--report")
    elif command == "export":
        if args.out:
            _check_writable(args.out, "--out")
        for path in args.data or []:
            _must_exist(path, "--data")
    elif command == "serve":
        _check_port(args.host, args.port)
    elif command == "generate":
        from recaptcha_tf.data.generator import parse_length, parse_size

        try:
            parse_size(args.size), parse_length(args.length)
        except ValueError as err:
            raise UsageError(str(err)) from None
        _check_writable(args.out, "--out", folder=args.format == "png" and not args.out.endswith(".parquet"))
    elif command == "convert-multilabel":
        _must_exist(args.source, "Source")
        _check_writable(args.out, "--out", folder=True)
    elif command == "merge-parquet":
        for path in args.inputs:
            _must_exist(path, "Input")
        _check_writable(args.out, "--out")


def _start_tensorflow(verbose: bool) -> None:
    """Import TensorFlow with its C++ start-up lines (CUDA probing, absl) hidden unless ``verbose``.

    Those lines are written straight to file descriptor 2, so it points at /dev/null
    while TensorFlow loads and looks for devices; Python errors are unaffected.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "3")
    if verbose or "tensorflow" in sys.modules:
        import tensorflow  # noqa: F401

        return
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stderr.flush()
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# ----------------------------------------------------------------------------- the error boundary

# The project's own error types, by module: an error can only come from a module that was imported.
# Each class under the module that defines it (tests/cli/test_errors.py checks that they are there).
_USER_ERRORS = {
    "recaptcha_tf.cli.main": ("UsageError",),
    "recaptcha_tf.data.folders": ("DatasetError",),
    "recaptcha_tf.data.splits": ("SplitError",),
    "recaptcha_tf.data.images": ("CorruptImageError",),
    "recaptcha_tf.data.text.vocabulary": ("OutOfVocabularyError",),
    "recaptcha_tf.models.weights": ("WeightsError",),
    "recaptcha_tf.models.registry": ("ModelConfigError",),
    "recaptcha_tf.inference.loading": ("ModelLoadError",),
    "recaptcha_tf.inference.artifacts": ("ExportError",),
    "recaptcha_tf.serving.app": ("UploadError", "ServeError"),
    "recaptcha_tf.tuning.spaces": ("TuningError",),
    "recaptcha_tf.tasks.registry": ("TaskError",),
}
# Expected operating-system errors: paths that are missing, taken, not folders, or not ours to write.
_OS_ERRORS = (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError)


def is_user_error(err: BaseException) -> bool:
    """True for the project's own error types and expected OS errors; anything else is a bug."""
    types = tuple(
        getattr(sys.modules[m], name)
        for m, names in _USER_ERRORS.items()
        if m in sys.modules
        for name in names
        if hasattr(sys.modules[m], name)
    )
    return isinstance(err, types + _OS_ERRORS) or (isinstance(err, OSError) and err.errno == errno.EADDRINUSE)


def error_line(err: BaseException) -> str:
    """The one-line message of a user error."""
    if isinstance(err, OSError) and err.strerror and err.filename:
        return f"{err.strerror}: {err.filename!r}"
    return " ".join(str(err).split()) or type(err).__name__


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as err:
        print(f"error: {error_line(err)}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    try:
        check_args(args)
        if args.command not in NO_TENSORFLOW:
            _start_tensorflow(args.verbose)
        return dispatch(args)
    except KeyboardInterrupt:
        print("interrupted: re-run the same command to resume from the last completed epoch", file=sys.stderr)
        return 130
    except Exception as err:
        if not is_user_error(err):
            raise  # a bug: keep its traceback
        print(f"error: {error_line(err)}", file=sys.stderr)
        return 2
