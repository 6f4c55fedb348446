"""The ``recaptcha-tf`` commands, one module each, in the order ``recaptcha-tf --help`` lists them.

Every module has ``NAME`` (the command), ``TENSORFLOW`` (whether it needs TensorFlow started),
``add_parser(subparsers)`` (its options; returns its parser), ``check(args)`` (argument and path
checks that need no TensorFlow) and ``run(args) -> int`` (the work; the exit status), and may have
``before_tensorflow(args)`` (settings that must come before TensorFlow starts). Adding a
command is one module here and one entry in ``MODULES``.
"""

from recaptcha_tf.cli.commands import (
    balance,
    convert_multilabel,
    demo,
    evaluate,
    export,
    generate,
    merge_parquet,
    models,
    predict,
    read,
    serve,
    train,
    tune,
)

MODULES = (
    balance,
    train,
    evaluate,
    predict,
    read,
    generate,
    merge_parquet,
    convert_multilabel,
    demo,
    export,
    serve,
    tune,
    models,
)
COMMANDS = {module.NAME: module for module in MODULES}

__all__ = ["COMMANDS", "MODULES"]
