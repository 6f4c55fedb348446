"""Loading saved models (Keras safe mode) and predicting on raw images."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

import recaptcha_tf.layers  # noqa: F401  (registers custom layers before loading)
from recaptcha_tf.data.images import CorruptImageError, find_undecodable, load_image_array
from recaptcha_tf.data.pipeline import make_dataset
from recaptcha_tf.decoding import decode_text_outputs
from recaptcha_tf.models import label_names_layer, network_of

MODEL_FILE = "model.keras"


@dataclasses.dataclass
class ModelInfo:
    """What a saved model expects and produces."""

    names: list[str]
    kind: str  # softmax | sigmoid | ctc | multihead
    task: str
    image_size: tuple[int, int]
    channels: int
    resize: str
    threshold: float


def resolve_model_path(path: str) -> str:
    """A run folder (holding ``model.keras``) or a ``.keras`` file -> the ``.keras`` file."""
    if os.path.isdir(path):
        path = os.path.join(path, MODEL_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No model at {path!r}: pass a run folder with {MODEL_FILE} or a .keras file.")
    return path


class ModelLoadError(ValueError):
    """A model file that cannot be loaded: not a Keras model, damaged, or holding code that safe mode refuses."""


def load_model(path: str, compile: bool = False) -> keras.Model:
    """Load a ``.keras`` model with ``safe_mode=True`` (no arbitrary code is deserialised).

    Raises:
        FileNotFoundError: no model at ``path``.
        ModelLoadError: the file is not a readable Keras model, or contains code (e.g. a
            ``Lambda`` layer) that safe mode does not load.
    """
    import zipfile

    file = resolve_model_path(path)
    try:
        return keras.saving.load_model(file, safe_mode=True, compile=compile)
    except (ValueError, TypeError, KeyError, zipfile.BadZipFile, OSError) as err:
        text = " ".join(str(err).split())
        if "safe_mode" in text or "safe mode" in text.lower():
            raise ModelLoadError(f"{file} contains code (such as a Lambda layer) that safe mode does not load; "
                                 "this package only loads models without arbitrary code.") from err
        if isinstance(err, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise
        raise ModelLoadError(f"{file} is not a readable Keras model: {text[:300]}") from err


def model_info(model: keras.Model) -> ModelInfo:
    """What ``model`` expects and produces; :class:`ModelLoadError` for a Keras model this package did not make."""
    try:
        labels = label_names_layer(model)
    except ValueError as err:
        raise ModelLoadError(str(err)) from err
    net = network_of(model)
    height, width, channels = net.input_shape[1:4]
    return ModelInfo(
        names=list(labels.names),
        kind=labels.kind,
        task=labels.task,
        image_size=(int(height), int(width)),
        channels=int(channels),
        resize=labels.resize,
        threshold=labels.threshold,
    )


def predict_outputs(model: keras.Model, sources: Sequence, batch_size: int = 64) -> np.ndarray:
    """Raw model outputs for image files or bytes, resized exactly as in training."""
    info = model_info(model)
    ds = make_dataset(
        sources, None, image_size=info.image_size, channels=info.channels, resize=info.resize,
        batch_size=batch_size, cache=False,
    )
    return model.predict(ds, verbose=0)


def check_readable(sources: Sequence, channels: int = 3, max_pixels: int | None = None) -> None:
    """Raise :class:`CorruptImageError` naming the first unreadable file (before TensorFlow sees it)."""
    for s in sources:
        load_image_array(s, channels, max_pixels=max_pixels)


def unreadable(sources: Sequence, channels: int = 3) -> dict[int, str]:
    """``{index: one-line reason}`` for each image among ``sources`` that cannot be used
    (missing, corrupt, or over the pixel limit), found with the training decoder in parallel."""
    reasons = {}
    for i in find_undecodable(list(sources), channels, warn=False):
        name = sources[i] if isinstance(sources[i], str) else f"image {i + 1}"
        try:
            load_image_array(sources[i], channels)
            reasons[i] = f"{name} could not be decoded."
        except CorruptImageError as err:
            reasons[i] = str(err)
    return reasons


def predict(model: keras.Model, sources: Sequence, top_k: int = 3, beam_width: int = 0,
            errors: str = "raise") -> list[dict]:
    """Predictions for image files (or bytes), one dict per image.

    Classifiers give ``label``, ``confidence`` and ``top_k`` ``(name, prob)`` pairs
    (multi-label: every label over the threshold in ``labels``); text models give
    ``text`` and per-character ``confidence``.

    An unreadable image (missing, corrupt, over the pixel limit): with ``errors="raise"``
    a :class:`CorruptImageError` naming the first one; with ``errors="report"`` its
    entry is ``{"error": reason}`` and every other image is still predicted.
    """
    info = model_info(model)
    sources = list(sources)
    bad: dict[int, str] = {}
    try:
        outputs = predict_outputs(model, sources)  # one decode per image when all are readable
    except tf.errors.OpError as err:
        bad = unreadable(sources, info.channels)
        if not bad:
            raise CorruptImageError(f"Could not read the images: {err.message.splitlines()[0]}") from err
        if errors == "raise":
            raise CorruptImageError(bad[min(bad)]) from err
        good = [s for i, s in enumerate(sources) if i not in bad]
        outputs = predict_outputs(model, good) if good else np.zeros((0,))
    results = _describe_outputs(outputs, info, top_k, beam_width) if len(outputs) else []
    for i in sorted(bad):
        results.insert(i, {"error": bad[i]})
    return results


def _describe_outputs(outputs: np.ndarray, info: ModelInfo, top_k: int, beam_width: int) -> list[dict]:
    results = []
    if info.kind in ("ctc", "multihead"):
        for text, conf in decode_text_outputs(outputs, info.names, info.kind, beam_width):
            results.append({"text": text, "confidence": [round(c, 4) for c in conf]})
        return results
    for probs in outputs:
        order = np.argsort(-probs)[:top_k]
        result = {
            "label": info.names[int(order[0])],
            "confidence": float(probs[order[0]]),
            "top_k": [(info.names[int(i)], float(probs[i])) for i in order],
        }
        if info.kind == "sigmoid":
            result["labels"] = [info.names[i] for i in np.flatnonzero(probs >= info.threshold)]
        results.append(result)
    return results


__all__ = ["CorruptImageError", "ModelInfo", "ModelLoadError", "load_model", "model_info", "predict", "predict_outputs"]
