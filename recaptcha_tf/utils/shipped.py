"""Trained models shipped inside the package, by name, and the one rule that turns ``--model`` into a file.

Shipped models live in the package folder ``recaptcha_tf/pretrained/`` (keras-hub presets and timm's
``pretrained_cfg`` in spirit)::

    pretrained/manifest.json          {"<name>": {"version", "task", "file", "sha256", "card", "description"}}
    pretrained/<name>/model.keras     the model (preprocessing and label names inside, as every saved model)
    pretrained/<name>/MODEL_CARD.md   what it was trained on, how well it does, and its limits

``RECAPTCHA_TF_PRETRAINED_DIR`` (or the ``folder`` argument) points elsewhere, for tests and for models kept
outside the package. A model's file is checked against the manifest's SHA-256 once per process before it is used.

This module imports no TensorFlow, so the command line resolves ``--model NAME`` and says what is wrong before
TensorFlow starts. :mod:`recaptcha_tf.models.shipped` is its public home in the models layer.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib

from recaptcha_tf.utils.hashing import sha256_of
from recaptcha_tf.utils.run_folder import RunFolder, write_json

ENV_VAR = "RECAPTCHA_TF_PRETRAINED_DIR"
MANIFEST = "manifest.json"
_FIELDS = ("version", "task", "file", "sha256", "card", "description")

__all__ = [
    "ENV_VAR",
    "MANIFEST",
    "ShippedModel",
    "ShippedModelError",
    "UnknownShippedModel",
    "pretrained_dir",
    "resolve_model_source",
    "resolve_shipped",
    "shipped_models",
    "write_manifest_entry",
]


class ShippedModelError(ValueError):
    """A shipped model whose manifest entry is malformed, or whose file is missing or not the file it lists."""


class UnknownShippedModel(ValueError):
    """A name that is no shipped model (and, given as ``--model``, no file or run folder either)."""


@dataclasses.dataclass(frozen=True)
class ShippedModel:
    """One entry of the manifest; ``path`` and ``card_path`` are absolute."""

    name: str
    version: str
    task: str
    file: str
    sha256: str
    card: str
    description: str
    folder: pathlib.Path

    @property
    def path(self) -> pathlib.Path:
        return self.folder / self.file

    @property
    def card_path(self) -> pathlib.Path:
        return self.folder / self.card


def pretrained_dir(folder: str | os.PathLike | None = None) -> pathlib.Path:
    """The folder of shipped models: ``folder``, else ``$RECAPTCHA_TF_PRETRAINED_DIR``, else the package's own."""
    if folder is None:
        folder = os.environ.get(ENV_VAR) or pathlib.Path(__file__).resolve().parents[1] / "pretrained"
    return pathlib.Path(folder)


def _read_manifest(folder: pathlib.Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ShippedModelError(f"The shipped-model manifest {str(path)!r} cannot be read: {err}") from None
    if not isinstance(entries, dict):
        raise ShippedModelError(f"The shipped-model manifest {str(path)!r} is not a JSON object of names.")
    return entries


def shipped_models(folder: str | os.PathLike | None = None) -> dict[str, ShippedModel]:
    """Every shipped model by name, in name order (empty when none are shipped)."""
    root = pretrained_dir(folder)
    models = {}
    for name, entry in sorted(_read_manifest(root).items()):
        missing = [key for key in _FIELDS if not isinstance(entry, dict) or key not in entry]
        if missing:
            raise ShippedModelError(f"Shipped model {name!r} in {str(root / MANIFEST)!r} lacks {', '.join(missing)}.")
        models[name] = ShippedModel(name=name, folder=root, **{key: str(entry[key]) for key in _FIELDS})
    return models


_VERIFIED: set[tuple[str, str]] = set()  # (file, sha256) pairs checked in this process


def resolve_shipped(name: str, folder: str | os.PathLike | None = None) -> pathlib.Path:
    """The file of shipped model ``name``, checked once per process against the manifest's SHA-256.

    Raises:
        UnknownShippedModel: no shipped model of that name (the message lists the names there are).
        ShippedModelError: its file is missing, or its bytes are not the ones the manifest lists.
    """
    models = shipped_models(folder)
    if name not in models:
        raise UnknownShippedModel(f"No shipped model {name!r}; {_names(models)}.")
    model = models[name]
    path = model.path
    key = (str(path), model.sha256)
    if key in _VERIFIED:
        return path
    if not path.is_file():
        raise ShippedModelError(f"Shipped model {name!r}: its file {str(path)!r} is missing; reinstall the package.")
    digest = sha256_of(path)
    if digest != model.sha256:
        raise ShippedModelError(
            f"Shipped model {name!r}: {str(path)!r} has SHA-256 {digest[:12]}..., not the manifest's "
            f"{model.sha256[:12]}...; the file is damaged or was replaced, so it is not loaded."
        )
    _VERIFIED.add(key)
    return path


def _names(models: dict) -> str:
    return f"the shipped models are: {', '.join(models)}" if models else "no models are shipped yet"


def write_manifest_entry(
    name: str,
    model_path: str | os.PathLike,
    task: str,
    version: str = "1",
    description: str = "",
    card: str | os.PathLike | None = None,
    folder: str | os.PathLike | None = None,
) -> ShippedModel:
    """Add (or replace) shipped model ``name``: its manifest entry with the SHA-256 of ``model_path``, which must
    already be inside the pretrained folder (``<name>/model.keras``), and so must ``card`` (default
    ``<name>/MODEL_CARD.md``). The manifest is rewritten atomically (a temporary file, then a rename)."""
    root = pretrained_dir(folder).resolve()
    if not name or name != name.strip() or "/" in name or os.sep in name or name.startswith("."):
        raise ShippedModelError(f"{name!r} is not a usable shipped-model name (no slashes, spaces at the ends or dot).")
    model_path = pathlib.Path(model_path).resolve()
    card_path = pathlib.Path(card).resolve() if card is not None else root / name / "MODEL_CARD.md"
    relative = {}
    for what, path in (("model", model_path), ("card", card_path)):
        if not path.is_file():
            raise ShippedModelError(f"Shipped model {name!r}: its {what} {str(path)!r} does not exist.")
        try:
            relative[what] = path.relative_to(root).as_posix()
        except ValueError:
            raise ShippedModelError(
                f"Shipped model {name!r}: its {what} {str(path)!r} is not inside {str(root)!r}."
            ) from None
    entries = _read_manifest(root)
    entries[name] = {
        "version": str(version),
        "task": task,
        "file": relative["model"],
        "sha256": sha256_of(model_path),
        "card": relative["card"],
        "description": description,
    }
    write_json(dict(sorted(entries.items())), str(root / MANIFEST))
    return shipped_models(root)[name]


def resolve_model_source(
    source: str | os.PathLike, folder: str | os.PathLike | None = None, what: str = "Model"
) -> str:
    """What ``--model`` (and :func:`recaptcha_tf.load`) names, as a path: a path that exists is returned as it is
    (a run folder, a ``.keras`` file, an export), and wins over a shipped model of the same name; otherwise a
    shipped model's name gives its checked ``model.keras``. ``what`` words the source in the error (``"--model"``).

    Raises:
        UnknownShippedModel: ``source`` is neither an existing file or folder nor a shipped model's name.
        ShippedModelError: the shipped model's file is missing or damaged.
    """
    source = os.fspath(source)
    if os.path.exists(source):
        return source
    models = shipped_models(folder)
    if source in models:
        return str(resolve_shipped(source, folder))
    raise UnknownShippedModel(
        f"{what} {source!r} is neither a file nor a run folder (one holding {RunFolder.MODEL}), nor a shipped "
        f"model's name; {_names(models)} (`recaptcha-tf models` lists them)."
    )
