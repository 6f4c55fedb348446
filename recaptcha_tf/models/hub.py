"""keras-hub backbones from presets: a public preset name or a local preset folder.

keras-hub ships pretrained backbones as *presets*: a folder with ``config.json``,
``metadata.json`` and ``model.weights.h5`` (and, for most image models, an
``image_converter.json`` that says how pixels are normalised). The same call,
``keras_hub.models.Backbone.from_preset(x)``, takes a public name such as
``efficientnet_lite0_ra_imagenet`` (downloaded once and cached by keras-hub,
under ``$KAGGLEHUB_CACHE`` or ``~/.cache/kagglehub``), a ``kaggle://`` or
``hf://`` handle, or the path of a preset folder saved with
``backbone.save_to_preset(folder)``. This module wraps that call for the
registry's keras-hub entries:

* :func:`load_hub_backbone` maps ``--weights`` (``none``, ``imagenet``, a preset
  name or a preset folder) to a backbone, and turns a failed download into a
  :class:`~recaptcha_tf.models.weights.WeightsError` that names the folder to pass;
* :func:`preset_normalisation` reads the preset's pixel normalisation (its image
  converter's ``scale`` and ``offset``), falling back to the entry's own default
  when the preset carries no image converter, so the model's input
  normalisation follows the weights it was given.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras

from recaptcha_tf.models.weights import WeightsError, weights_kind

Normalisation = tuple[float | Sequence[float], float | Sequence[float]]


def load_hub_backbone(
    backbone_class,
    weights: str | None,
    imagenet_preset: str | None,
    model_name: str,
    random_config: dict,
) -> tuple[keras.Model, str | None]:
    """The keras-hub backbone for ``--weights``, and the preset it came from.

    Args:
        backbone_class: e.g. ``keras_hub.models.EfficientNetBackbone``.
        weights: ``None`` (random initialisation from ``random_config``), ``"imagenet"``
            (the public ``imagenet_preset``), a preset name or handle, a local preset
            folder, or a ``.weights.h5`` / ``.keras`` file saved from the same backbone.
        random_config: constructor arguments of the architecture, for random initialisation
            and for weight files.

    Returns:
        ``(backbone, preset)``; ``preset`` is ``None`` unless the weights came from one.

    Raises:
        WeightsError: no ImageNet preset for this entry, or a preset that cannot be loaded
            (no network and no cached copy), naming the local folder to pass instead.
    """
    from recaptcha_tf.models.weights import load_weights_file

    kind = weights_kind(weights)
    if kind is None or kind == "file":
        backbone = backbone_class(**random_config)
        if kind == "file":
            load_weights_file(backbone, weights, model_name)
        return backbone, None
    preset = imagenet_preset if kind == "imagenet" else weights
    if preset is None:
        raise WeightsError(
            f"There is no public ImageNet preset for {model_name}; pass --weights with a keras-hub "
            "preset name or a local preset folder."
        )
    try:
        backbone = backbone_class.from_preset(preset)
    except Exception as err:  # noqa: BLE001  download failures surface as assorted exception types
        if os.path.isdir(str(preset)):
            raise WeightsError(f"{preset} is not a keras-hub preset for {model_name}: {str(err)[:300]}") from None
        raise WeightsError(
            f"Could not load the keras-hub preset {preset!r} for {model_name} ({type(err).__name__}: "
            f"{str(err)[:200]}). Without network, pass --weights with a local preset folder (one holding "
            "config.json and model.weights.h5, e.g. saved by backbone.save_to_preset(folder) on a machine that "
            "can download it; keras-hub caches downloads under ~/.cache/kagglehub)."
        ) from None
    return backbone, str(preset)


def preset_normalisation(preset: str | None, default: Normalisation) -> Normalisation:
    """``(scale, offset)`` such that the backbone's input is ``pixels * scale + offset``.

    Reads the preset's ``image_converter.json`` (keras-hub's ``ImageConverter``) when it has
    one; otherwise (random initialisation, a weights file, or a preset saved without an
    image converter) returns ``default``. ``scale`` and ``offset`` are floats or one value
    per channel.
    """
    if preset is None:
        return default
    import keras_hub

    if os.path.isdir(str(preset)):  # a local preset: a damaged converter file is an error, never a silent default
        if not os.path.isfile(os.path.join(str(preset), "image_converter.json")):
            return default
        try:
            converter = keras_hub.layers.ImageConverter.from_preset(preset)
        except Exception as err:  # noqa: BLE001  keras deserialisation raises assorted types
            raise WeightsError(
                f"{preset}/image_converter.json is not a keras-hub image converter "
                f"({type(err).__name__}: {' '.join(str(err).split())[:200]})."
            ) from None
    else:
        try:
            converter = keras_hub.layers.ImageConverter.from_preset(preset)
        except (FileNotFoundError, ValueError, OSError):
            return default
    scale = 1.0 if converter.scale is None else converter.scale
    offset = 0.0 if converter.offset is None else converter.offset
    return _plain(scale), _plain(offset)


def _plain(value):
    if isinstance(value, (int, float)):
        return float(value)
    return [float(v) for v in value]


def normalisation_layer(normalisation: Normalisation, name: str = "normalise") -> keras.layers.Layer:
    """A float32 ``Rescaling(scale, offset)`` (per-channel when given lists): part of the saved model."""
    scale, offset = normalisation
    return keras.layers.Rescaling(scale=scale, offset=offset, name=name, dtype="float32")
