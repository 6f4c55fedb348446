"""The ``recaptcha-tf`` command line: parses arguments and dispatches, nothing more.

Every sub-command is one module of :mod:`recaptcha_tf.cli.commands` (its options, its checks, its
work) and has ``--help`` with its defaults; the options several commands share are declared once,
in :mod:`recaptcha_tf.cli.options`. Errors about the user's input (bad arguments and paths, bad
folders, unknown characters, class mismatches, corrupt images, models that safe mode refuses, options
the chosen task does not take) are printed as one line ``error: ...`` with exit status 2, not as a
traceback (:func:`main` is the one error boundary, :mod:`recaptcha_tf.cli.errors`; a bug still shows
its traceback). Arguments and paths are checked before TensorFlow is imported, and TensorFlow's
start-up chatter is hidden unless ``--verbose``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from recaptcha_tf.cli.commands import COMMANDS
from recaptcha_tf.cli.errors import UsageError, error_line, is_user_error
from recaptcha_tf.cli.options import _Formatter, _Parser
from recaptcha_tf.utils.version import __version__

__all__ = [
    "NO_TENSORFLOW",
    "UsageError",
    "build_parser",
    "check_args",
    "dispatch",
    "error_line",
    "is_user_error",
    "main",
]

# Commands that never import TensorFlow.
NO_TENSORFLOW = tuple(name for name, command in COMMANDS.items() if not command.TENSORFLOW)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="recaptcha-tf",
        formatter_class=_Formatter,
        description="Keras/TensorFlow toolkit for CAPTCHA recognition research (tiles, text, chars).",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging, and TensorFlow's own start-up and C++ log lines"
    )
    parser.add_argument("--version", action="version", version=f"recaptcha-tf {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    for command in COMMANDS.values():
        _add_verbosity(command.add_parser(sub))
    return parser


def _add_verbosity(command_parser) -> None:
    """``-v`` / ``-q`` after the command too (``recaptcha-tf train ... -v``); given nowhere, the global default."""
    group = command_parser.add_argument_group("output")
    group.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging")
    group.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="warnings and errors only")


def check_args(args) -> None:
    """Argument and path checks that need no TensorFlow (so bad input fails in a fraction of a second)."""
    from recaptcha_tf.data.images import set_max_pixels

    if getattr(args, "max_pixels", None) is not None:
        set_max_pixels(args.max_pixels)  # serve: uploads are checked against it before TensorFlow too
    COMMANDS[args.command].check(args)


# Commands whose long loops show progress bars (on a terminal, not with -q): recaptcha_tf.utils.progress.
PROGRESS_BARS = ("generate", "evaluate", "predict", "export", "convert-multilabel", "demo")


def dispatch(args) -> int:
    """Run the command; returns its exit status."""
    from recaptcha_tf.utils.progress import progress_bars

    with progress_bars(args.command in PROGRESS_BARS and not getattr(args, "quiet", False)):
        return COMMANDS[args.command].run(args)


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


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as err:
        print(f"error: {error_line(err)}", file=sys.stderr)
        return 2
    if args.verbose and args.quiet:
        print("error: -v/--verbose and -q/--quiet contradict each other; pick one.", file=sys.stderr)
        return 2
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(message)s")
    try:
        check_args(args)
        if args.command not in NO_TENSORFLOW:
            prepare = getattr(COMMANDS[args.command], "before_tensorflow", None)
            if prepare is not None:
                prepare(args)
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
