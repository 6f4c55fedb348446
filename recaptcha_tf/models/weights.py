"""Pretrained weights for backbones: ``none``, ``imagenet``, a local file or a keras-hub preset.

``imagenet`` goes through the library's own download and cache
(``keras.utils.get_file`` into ``~/.keras/models``, or ``$KERAS_HOME/models``),
so a user with internet just gets the weights; without network and without a
cached file the error names the file and where to put it. A local path loads
a ``.weights.h5`` file (Keras 3 format, saved from the same backbone with
``backbone.save_weights``) or a legacy ``.h5`` weights file into the backbone.
"""

from __future__ import annotations

import os
import re
import warnings

import keras


class WeightsError(ValueError):
    """Pretrained weights cannot be had or do not fit the backbone."""


def keras_cache_dir() -> str:
    """Where ``keras.utils.get_file`` caches downloads (``$KERAS_HOME/models``, default ``~/.keras/models``)."""
    from keras.src.backend import config

    return os.path.join(os.path.expanduser(config.keras_home()), "models")


_PRESET_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")


def parse_weights(weights: str | None) -> str | None:
    """Normalise ``--weights``.

    * ``None`` / ``"none"`` -> ``None`` (random initialisation);
    * ``"imagenet"`` -> ``"imagenet"`` (each entry's standard ImageNet weights);
    * an existing file (``.weights.h5``, ``.h5``, ``.keras``) -> its path;
    * an existing folder -> its path, if it is a keras-hub preset (holds ``config.json``);
    * a shipped model's name (``universal``, ``recaptcha-tf models``) -> its checked ``model.keras``
      (an existing path of the same name wins);
    * a keras-hub preset name (``efficientnet_lite0_ra_imagenet``) or handle
      (``kaggle://...``, ``hf://...``) -> unchanged, for keras-hub entries to load.

    Raises:
        WeightsError: a path that does not exist, or a folder that is not a preset.
    """
    if weights is None or str(weights).lower() in ("", "none", "random"):
        return None
    if str(weights).lower() == "imagenet":
        return "imagenet"
    text = str(weights)
    path = os.path.expanduser(text)
    if os.path.isfile(path):
        return path
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise WeightsError(f"--weights {weights!r} is a folder but not a keras-hub preset (no config.json in it).")
        return path
    from recaptcha_tf.utils.shipped import resolve_shipped, shipped_models

    if text in shipped_models():
        return str(resolve_shipped(text))
    if "://" in text or (_PRESET_NAME.match(text) and not text.endswith((".h5", ".keras"))):
        return text
    raise WeightsError(
        f"--weights {weights!r}: no such file or folder. Use none, imagenet, a .weights.h5 file, a shipped "
        "model's name (`recaptcha-tf models`), or (for keras-hub models) a preset name or preset folder."
    )


def weights_kind(weights: str | None) -> str | None:
    """What a parsed ``--weights`` value is: ``None``, ``"imagenet"``, ``"file"`` or ``"preset"``
    (a keras-hub preset folder, name or handle)."""
    weights = parse_weights(weights)
    if weights is None or weights == "imagenet":
        return weights
    return "file" if os.path.isfile(weights) else "preset"


def require_file_weights(weights: str | None, model_name: str) -> str | None:
    """``weights`` for a model that is not a keras-hub backbone: a preset is a clear error."""
    weights = parse_weights(weights)
    if weights_kind(weights) == "preset":
        raise WeightsError(
            f"{model_name} is not a keras-hub backbone, so --weights {weights!r} (a preset) does not "
            "apply; use none, imagenet or a .weights.h5 file."
        )
    return weights


def build_with_imagenet(constructor, model_name: str, **kwargs) -> keras.Model:
    """Call a ``keras.applications`` constructor with ``weights="imagenet"``.

    A failed download (no network) becomes a :class:`WeightsError` that names
    the file keras-applications wanted and the cache folder it looks in.
    """
    try:
        return constructor(weights="imagenet", **kwargs)
    except Exception as err:  # get_file raises a bare Exception on URL failures
        message = str(err)
        if "URL fetch failure" not in message and "fetch" not in message.lower():
            raise
        url = re.search(r"https?://\S+?\.h5", message)
        name = os.path.basename(url.group(0)) if url else "<the weights file>"
        raise WeightsError(
            f"Could not download ImageNet weights for {model_name} (no network?). Put {name} "
            f"{'from ' + url.group(0) + ' ' if url else ''}into {keras_cache_dir()}/ and re-run, "
            "or pass --weights PATH to a local weights file."
        ) from None


def load_weights_file(backbone: keras.Model, path: str, model_name: str) -> None:
    """Load a local weights file into ``backbone``; a mismatch is a clear :class:`WeightsError`.

    ``path`` is a ``.weights.h5`` file saved from the same backbone, or a trained
    ``.keras`` model (loaded in safe mode) whose nested ``backbone`` has the same
    architecture: e.g. a text model trained on synthetic CAPTCHAs as the start
    for a small real set.
    """
    # Keras warns once per layer it cannot match (200 lines for a MobileNetV2 of another width) before it fails;
    # the one error below says it all.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _load_weights_file(backbone, path, model_name)


def _load_weights_file(backbone: keras.Model, path: str, model_name: str) -> None:
    try:
        if path.endswith(".keras"):
            import recaptcha_tf.layers  # noqa: F401  (registers custom layers)
            from recaptcha_tf.models.backbone import find_backbone

            source = find_backbone(keras.saving.load_model(path, safe_mode=True, compile=False))
            values = source.get_weights()
            if [v.shape for v in values] != [tuple(w.shape) for w in backbone.weights]:
                raise ValueError("its backbone has other layer shapes")
            backbone.set_weights(values)
            return
        backbone.load_weights(path)
    except Exception as err:  # noqa: BLE001
        raise WeightsError(
            f"{path} does not fit the {model_name} backbone ({len(backbone.weights)} weight tensors): {err}. "
            "Save the file from the same architecture with backbone.save_weights('x.weights.h5')."
        ) from None
