"""Tasks as first-class objects: one :class:`TaskSpec` per task, in one registry.

A task (``tiles``, ``chars``, ``text``) is declared once, in its own module,
with everything the workflows need to know about it: its training defaults,
the default model for tuning, its tuning objectives and the metrics each trial
reports, the keys a run's summary takes from its test report, whether a left-right
mirror image keeps the label (flip augmentation, flip TTA), and its workflows:
the functions that train a model for it and evaluate a saved one
(:meth:`TaskSpec.workflow`). Training, tuning, evaluation and the CLI ask the
spec instead of testing task names; adding a task means adding one module that
calls :func:`register_task`.

This module imports no TensorFlow, so the CLI can list and check tasks before
it starts TensorFlow: workflows are named ``"module:function"`` and imported on
first use.
"""

import importlib

from recaptcha_tf.tasks.registry import TaskError, TaskSpec, get_task, register_task, task_defaults, task_names


def _register_task_modules() -> None:
    """Import every module of this package, so that a new task is one module here that calls
    :func:`register_task` (the built-in ones: ``tiles``, ``chars``, ``text``)."""
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_register_task_modules()
from recaptcha_tf.tasks import chars, text, tiles  # noqa: E402  (already registered; named for __all__)

__all__ = [
    "TaskError",
    "TaskSpec",
    "chars",
    "get_task",
    "register_task",
    "task_defaults",
    "task_names",
    "text",
    "tiles",
]
