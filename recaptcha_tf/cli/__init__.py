"""The ``recaptcha-tf`` command line: ``recaptcha-tf COMMAND [options]`` (:func:`main`)."""

from recaptcha_tf.cli.main import UsageError, build_parser, check_args, dispatch, error_line, is_user_error, main

__all__ = ["UsageError", "build_parser", "check_args", "dispatch", "error_line", "is_user_error", "main"]
