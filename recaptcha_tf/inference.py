"""Loading saved models (Keras safe mode) and predicting on raw images."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

import recaptcha_tf.layers  # noqa: F401  (registers custom layers before loading)
from recaptcha_tf.data.images import CorruptImageError, load_image_array
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

    def pipeline_args(self) -> dict:
        """The :func:`~recaptcha_tf.data.pipeline.make_dataset` arguments that prepare images as in training."""
        return dict(image_size=self.image_size, channels=self.channels, resize=self.resize)


def resolve_model_path(path: str) -> str:
    """A run folder (holding ``model.keras``) or a ``.keras`` file -> the ``.keras`` file."""
    if os.path.isdir(path):
        path = os.path.join(path, MODEL_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No model at {path!r}: pass a run folder with {MODEL_FILE} or a .keras file.")
    return path


def load_model(path: str, compile: bool = False) -> keras.Model:
    """Load a ``.keras`` model with ``safe_mode=True`` (no arbitrary code is deserialised)."""
    return keras.saving.load_model(resolve_model_path(path), safe_mode=True, compile=compile)


def model_info(model: keras.Model) -> ModelInfo:
    labels = label_names_layer(model)
    # The first resizing layer gives the size the pipeline prepares images at: the network's input size,
    # or the larger canvas that a cropping text model cuts its input from.
    resizer = next((layer for layer in model.layers if isinstance(layer, keras.layers.Resizing)), None)
    height, width = (resizer.height, resizer.width) if resizer else network_of(model).input_shape[1:3]
    return ModelInfo(
        names=list(labels.names),
        kind=labels.kind,
        task=labels.task,
        image_size=(int(height), int(width)),
        channels=int(model.input_shape[-1]),  # raw channels decoded (an ink-map text model's network takes 1)
        resize=labels.resize,
        threshold=labels.threshold,
    )


def predict_outputs(model: keras.Model, sources: Sequence, batch_size: int = 64) -> np.ndarray:
    """Raw model outputs for image files or bytes, resized exactly as in training."""
    info = model_info(model)
    ds = make_dataset(sources, None, batch_size=batch_size, cache=False, **info.pipeline_args())
    return model.predict(ds, verbose=0)


def check_readable(sources: Sequence, channels: int = 3, max_pixels: int | None = None) -> None:
    """Raise :class:`CorruptImageError` naming the first unreadable file (before TensorFlow sees it)."""
    for s in sources:
        load_image_array(s, channels, max_pixels=max_pixels)


def predict(model: keras.Model, sources: Sequence, top_k: int = 3, beam_width: int = 0) -> list[dict]:
    """Predictions for image files (or bytes), one dict per image.

    Classifiers give ``label``, ``confidence`` and ``top_k`` ``(name, prob)`` pairs
    (multi-label: every label over the threshold in ``labels``); text models give
    ``text`` and per-character ``confidence``.
    """
    info = model_info(model)
    try:
        outputs = predict_outputs(model, sources)  # one decode per image when all are readable
    except tf.errors.OpError as err:
        check_readable(sources, info.channels)  # raises CorruptImageError naming the first unreadable image
        raise CorruptImageError(f"Could not read the images: {err.message.splitlines()[0]}") from err
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


__all__ = ["CorruptImageError", "ModelInfo", "load_model", "model_info", "predict", "predict_outputs"]
