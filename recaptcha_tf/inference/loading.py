"""Loading a saved ``.keras`` model in safe mode, and what it expects and produces (:class:`ModelInfo`)."""

from __future__ import annotations

import dataclasses
import os

import keras

import recaptcha_tf.layers  # noqa: F401  (registers custom layers before loading)
from recaptcha_tf.models import label_names_layer, network_of
from recaptcha_tf.utils.run_folder import RunFolder
from recaptcha_tf.utils.shipped import resolve_model_source

__all__ = [
    "MODEL_FILE",
    "ModelInfo",
    "ModelLoadError",
    "load_model",
    "model_info",
    "resolve_model_path",
    "resolve_model_source",
]

MODEL_FILE = RunFolder.MODEL


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
    temperature: float = 1.0  # softmax: the calibration temperature the model applies (LabelNames)
    min_confidence: float | None = None  # the stored default of --min-confidence
    challenge_threshold: float | None = None  # softmax: grids pick cells whose target probability reaches it

    def pipeline_args(self) -> dict:
        """The :func:`~recaptcha_tf.data.pipeline.make_dataset` arguments that prepare images as in training."""
        return dict(image_size=self.image_size, channels=self.channels, resize=self.resize)


def resolve_model_path(path: str) -> str:
    """A run folder (holding ``model.keras``), a ``.keras`` file or a shipped model's name -> the ``.keras`` file.

    A path that exists wins over a shipped model of the same name (:func:`resolve_model_source`)."""
    path = resolve_model_source(path)
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
            raise ModelLoadError(
                f"{file} contains code (such as a Lambda layer) that safe mode does not load; "
                "this package only loads models without arbitrary code."
            ) from err
        if isinstance(err, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise
        raise ModelLoadError(f"{file} is not a readable Keras model: {text[:300]}") from err


def model_info(model: keras.Model) -> ModelInfo:
    """What ``model`` expects and produces; :class:`ModelLoadError` for a Keras model this package did not make."""
    try:
        labels = label_names_layer(model)
    except ValueError as err:
        raise ModelLoadError(str(err)) from err
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
        temperature=getattr(labels, "temperature", 1.0),
        min_confidence=getattr(labels, "min_confidence", None),
        challenge_threshold=getattr(labels, "challenge_threshold", None),
    )
