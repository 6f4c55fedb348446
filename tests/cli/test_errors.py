"""The error boundary names every user error under the module that defines it (a moved class would otherwise turn
its one-line ``error:`` back into a traceback)."""

import importlib

import pytest

from recaptcha_tf.cli.errors import _USER_ERRORS, UsageError, error_line, is_user_error

PAIRS = [(module, name) for module, names in _USER_ERRORS.items() for name in names]


@pytest.mark.parametrize("module, name", PAIRS, ids=[f"{m}.{n}" for m, n in PAIRS])
def test_each_user_error_is_defined_where_the_boundary_looks(module, name):
    found = importlib.import_module(module)
    assert hasattr(found, name), f"{module} has no {name}"
    cls = getattr(found, name)
    assert isinstance(cls, type) and issubclass(cls, Exception)
    assert cls.__module__ == module
    assert is_user_error(cls.__new__(cls))  # an instance, whatever its constructor takes


def test_usage_error_lives_in_the_errors_module_and_is_reexported():
    import recaptcha_tf.cli as cli

    assert UsageError.__module__ == "recaptcha_tf.cli.errors" and "recaptcha_tf.cli.errors" in _USER_ERRORS
    assert cli.UsageError is UsageError and cli.is_user_error is is_user_error and cli.error_line is error_line
    assert importlib.import_module("recaptcha_tf.cli.main").UsageError is UsageError


def test_bugs_are_not_user_errors():
    assert not is_user_error(KeyError("missing")) and not is_user_error(TypeError("bug"))
    assert error_line(UsageError("two\n  lines")) == "two lines"
