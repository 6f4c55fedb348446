"""The argparse pieces the commands share: the parser and formatter, value types, and option groups.

An option that several commands take is declared once here, in the group helper those commands
call (``train`` and ``tune`` share :func:`add_training_options`); a command that words an option
differently passes its changes (argparse keywords by dest) instead of declaring the option again.
Options that apply only to some tasks are declared by the tasks (``TaskSpec.options``) and
checked by :func:`check_task_options`.
"""

from __future__ import annotations

import argparse
import json
import types

from recaptcha_tf.cli.errors import UsageError
from recaptcha_tf.tasks import get_task, task_names


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line ``error: ...`` (exit status 2), like every other user error."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows an option's real default; an option whose default is ``None`` (the task or recipe decides) or a flag
    that is off says nothing, instead of "(default: None)"."""

    def _get_help_string(self, action):
        if action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return action.help
        return super()._get_help_string(action)


# ----------------------------------------------------------------------------- value types


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


def _probability(text: str) -> float:
    """argparse type: a number from 0 to 1."""
    value = _non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, got {text}")
    return value


def _min_confidence(text: str):
    """argparse type: a probability, or ``none`` (never abstain)."""
    return "none" if text.strip().lower() == "none" else _probability(text)


def _add_min_confidence(p):
    p.add_argument(
        "--min-confidence",
        type=_min_confidence,
        default=None,
        help="abstain below this confidence: a text reading is marked not accepted; a tile whose best object "
        "class scores below it is answered 'other' (not selected in a challenge). Default: the threshold stored "
        "in the model (chosen on its validation split), if any; 'none': always answer",
    )


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


def _model_kwargs(items):
    """``--model-arg KEY=VALUE`` items -> ``{key: JSON value (or the text)}``."""
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


# ----------------------------------------------------------------------------- option groups


def _add_common_data(p, help_data: str):
    p.add_argument("--data", required=True, help=help_data)


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


def _add_text_labels(p, case_default: str | None = "keep", case_help: str = "text: label case handling"):
    """How text labels are read from file names (train, tune, evaluate)."""
    p.add_argument("--case", choices=("keep", "lower", "upper"), default=case_default, help=case_help)
    p.add_argument("--label-pattern", default=None, help="text: regex with group 'label' for file names")


def add_training_options(p, **changes) -> None:
    """The options ``train`` and ``tune`` share, declared once, as the group "training options".

    ``changes`` maps an option's dest to the argparse keywords this command words differently
    (``tune``'s ``--epochs`` has a default of 8 and its own help, for instance); every other
    keyword is the one declared here.
    """
    group = p.add_argument_group("training options")
    unused = set(changes)

    def add(*flags, **keywords):
        dest = keywords.get("dest") or flags[0].lstrip("-").replace("-", "_")
        unused.discard(dest)
        group.add_argument(*flags, **{**keywords, **changes.get(dest, {})})

    shared = types.SimpleNamespace(add_argument=add)  # for the group helpers, which take anything with add_argument
    _add_common_data(shared, "class folders (tiles/chars), or text images named by label / Parquet (text)")
    add(
        "--task",
        choices=task_names(),
        default=None,
        help="default: inferred from --data (one log line says how): images named by their labels, a CSV or "
        "Parquet give text; class folders give chars when every class name is one character and the images are "
        "at most 64 px a side, else tiles",
    )
    add(
        "--model",
        default=None,
        help="architecture name from the registry (`recaptcha-tf models`); default cnn (tiles), resnet18 (chars), "
        "crnn (text). A trained model to start from goes to --weights",
    )
    add("--out", default=None, help="run folder; default models/<task>-<model>")
    add("--logdir", default="logs", help="TensorBoard root ('' to disable)")
    add(
        "--image-size",
        type=_size,
        default=None,
        help="N or HxW; default 112 (tiles), 52x32 (chars); text: fitted to the training images",
    )
    add(
        "--grayscale",
        action="store_true",
        default=None,
        help="train on 1-channel images (default for chars; text: the same as --colour gray)",
    )
    add(
        "--overwrite",
        action="store_true",
        help="start afresh: remove the run's state in --out (backup, split.json, history, checkpoints, "
        "balanced_images) first; other files in --out are kept",
    )
    add(
        "--epochs",
        type=_count(1),
        default=None,
        help="default 26 (tiles); chars: from the set's size (8-30); text: as many as --steps takes",
    )
    add("--batch-size", type=_count(1), default=None, help="default 64 (tiles, chars), 16 (text)")
    add("--learning-rate", type=_positive_float, default=None, help="peak learning rate of the cosine schedule")
    add("--optimizer", default="adam", choices=("adam", "adamw", "nadam", "rmsprop", "sgd"))
    add("--patience", type=_count(0), default=None, help="early-stopping patience in epochs (0 disables)")
    add(
        "--split",
        default="70/15/15",
        help="train/val/test fractions adding up to 100 (70/30: no test part), or a split.json to reuse",
    )
    add("--seed", type=int, default=0, help="split, shuffle and initialisation seed")
    add("--no-augment", action="store_true", help="disable random augmentation")
    _add_runtime(shared)
    add("--charset", default=None, help="text: vocabulary, e.g. a-z0-9 (default: a-z0-9 plus characters in the data)")
    _add_text_labels(shared)
    add(
        "--model-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra builder argument, JSON value (e.g. conv_layers=4, filters=[32,64])",
    )
    _add_max_pixels(shared)
    if unused:
        raise ValueError(f"add_training_options has no options {sorted(unused)}")


# ----------------------------------------------------------------------------- options that only some tasks take


def command_parser(add_parser) -> argparse.ArgumentParser:
    """A fresh parser of one command (its ``add_parser``), to read the defaults and flags it declares."""
    return add_parser(_Parser(prog="recaptcha-tf").add_subparsers(dest="command"))


def check_task_options(args, add_parser, task: str, chosen: str, every_task: tuple[str, ...] = ()) -> None:
    """Refuse an option that only other tasks take, when the user gave it a value other than its default.

    The tasks declare their task-specific options (``TaskSpec.options``, argparse dests); an option some
    task declares is task-specific, unless this command applies it to every task (``every_task``). One the
    user left at its default (``parser.get_default``) is never an error. ``chosen`` words the task in the
    message (``"--task text"``).
    """
    specs = [get_task(name) for name in task_names()]
    specific = {dest for spec in specs for dest in spec.options} - set(every_task)
    allowed = set(get_task(task).options)
    parser = command_parser(add_parser)
    for action in parser._actions:
        dest = action.dest
        if dest not in specific or dest in allowed or not hasattr(args, dest):
            continue
        if getattr(args, dest) != parser.get_default(dest):
            flag = max(action.option_strings, key=len, default=dest)
            takers = ", ".join(spec.name for spec in specs if dest in spec.options)
            raise UsageError(f"{flag} does not apply to {chosen} (it is for: {takers}).")
