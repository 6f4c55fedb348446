"""The command line's error boundary and the checks several commands share (no TensorFlow here).

Errors about the user's input are printed as one line ``error: ...`` with exit status 2
(:func:`is_user_error` tells them from bugs, :func:`error_line` words them); the checks below
run before TensorFlow is imported, so bad arguments and paths fail in a fraction of a second.
"""

from __future__ import annotations

import errno
import logging
import os
import sys

from recaptcha_tf.utils.run_folder import RunFolder

log = logging.getLogger("recaptcha_tf")


class UsageError(ValueError):
    """A command-line argument or path that cannot be used as given (checked before any work)."""


# The project's own error types, by module: an error can only come from a module that was imported.
# Each class under the module that defines it (tests/cli/test_errors.py checks that they are there).
_USER_ERRORS = {
    "recaptcha_tf.cli.errors": ("UsageError",),
    "recaptcha_tf.utils.shipped": ("ShippedModelError", "UnknownShippedModel"),
    "recaptcha_tf.data.folders": ("DatasetError",),
    "recaptcha_tf.data.splits": ("SplitError",),
    "recaptcha_tf.data.images": ("CorruptImageError",),
    "recaptcha_tf.data.text.vocabulary": ("OutOfVocabularyError",),
    "recaptcha_tf.models.weights": ("WeightsError",),
    "recaptcha_tf.models.registry": ("ModelConfigError",),
    "recaptcha_tf.inference.loading": ("ModelLoadError",),
    "recaptcha_tf.inference.outputs": ("UnknownOutputKind",),
    "recaptcha_tf.inference.predictor": ("InferenceOptionError",),
    "recaptcha_tf.inference.artifacts": ("ExportError",),
    "recaptcha_tf.serving.app": ("ServeError",),
    "recaptcha_tf.serving.uploads": ("UploadError",),
    "recaptcha_tf.tuning.spaces": ("TuningError",),
    "recaptcha_tf.tasks.registry": ("TaskError",),
    "recaptcha_tf.training.phases": ("TrainingConfigError",),
    "recaptcha_tf.training.distillation": ("TeacherError",),
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


# ----------------------------------------------------------------------------- checks shared by several commands


def _must_exist(path: str, what: str) -> None:
    if not os.path.exists(path):
        raise UsageError(f"{what} {path!r} does not exist.")


def _resolve_model(value: str, what: str = "--model") -> str:
    """``--model`` of evaluate/predict/export/serve as a path: a path that exists as it is, else a shipped model's
    checked ``model.keras`` (:func:`recaptcha_tf.utils.shipped.resolve_model_source`, the rule ``load`` follows)."""
    from recaptcha_tf.utils.shipped import resolve_model_source

    return resolve_model_source(value, what=what)


# The built-in architectures and their head kinds, so that ``train``/``tune --model`` is checked before TensorFlow
# starts (the registry imports Keras). tests/cli/test_model_names.py keeps it equal to the registry's own.
BUILT_IN_MODELS = {
    **dict.fromkeys(("cnn", "mobilenetv2", "resnet18", "resnet34", "resnet50"), "classifier"),
    **dict.fromkeys(("efficientnet-lite0", "efficientnetb0", "efficientnetv2b0"), "classifier"),
    **dict.fromkeys(("vit-b16", "vit-hybrid", "vit-small", "vit-tiny"), "classifier"),
    **dict.fromkeys(("crnn", "crnn_mobilenetv2"), "ctc"),
    "multihead": "multihead",
}


def _check_architecture(name: str | None, task: str) -> None:
    """``train``/``tune --model``: a registered architecture whose head kind ``task`` takes. Before TensorFlow the
    built-in names are known; models registered in this process (plug-ins) once the registry is imported."""
    if name is None:
        return
    from recaptcha_tf.tasks import get_task

    if "recaptcha_tf.models.registry" in sys.modules:
        from recaptcha_tf.models.registry import list_models, model_head

        heads = {model: model_head(model) for model in list_models()}
    else:
        heads = BUILT_IN_MODELS
    spec = get_task(task)
    takes = sorted(model for model, head in heads.items() if head in spec.heads)
    if name not in heads:
        hint = ""
        if os.path.exists(name) or name.endswith(".keras"):
            hint = " To start from a trained model, pass it as --weights (a .keras model with the same backbone)."
        raise UsageError(
            f"Unknown model {name!r}: --model names an architecture of the registry; task {task!r} takes "
            f"{', '.join(takes)} (`recaptcha-tf models --task {task}`).{hint}"
        )
    if heads[name] not in spec.heads:
        raise UsageError(
            f"Model {name!r} has a {heads[name]} head, which task {task!r} does not take; "
            f"use one of {', '.join(takes)}."
        )


def _check_model_path(path: str, what: str = "--model") -> str:
    """A run folder holding model.keras, a .keras file or a shipped model's name (the same rule as
    inference.resolve_model_path); returns it as a path."""
    path = _resolve_model(path, what)
    file = RunFolder(path).model if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise UsageError(f"No model at {file!r}: pass a run folder with model.keras or a .keras file.")
    return path


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


def _check_separate(out: str, source: str, what: str, action: str) -> None:
    """``out`` and the folder ``source`` must not hold one another: writing into the data being read."""
    if _inside(out, source) or _inside(source, out):
        raise UsageError(f"--out {out!r} and {what} {source!r} overlap; {action} into a separate folder.")


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


def _check_charset(text: str | None) -> None:
    """``--charset`` expands (ranges such as ``a-z`` run forwards)."""
    if not text:
        return
    from recaptcha_tf.data.text.vocabulary import expand_charset

    try:
        expand_charset(text)
    except ValueError as err:
        raise UsageError(f"--charset: {err}") from None
