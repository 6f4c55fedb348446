"""The ``recaptcha-tf`` command line: ``recaptcha-tf COMMAND [options]`` (:func:`main`).

:mod:`~recaptcha_tf.cli.main` builds the parser and dispatches; each command is a module of
:mod:`~recaptcha_tf.cli.commands`; :mod:`~recaptcha_tf.cli.options` holds the option groups they
share and :mod:`~recaptcha_tf.cli.errors` the error boundary and shared path checks.
"""

from recaptcha_tf.cli.main import (
    NO_TENSORFLOW,
    UsageError,
    build_parser,
    check_args,
    dispatch,
    error_line,
    is_user_error,
    main,
)

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
