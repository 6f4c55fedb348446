"""Runtimes: run an exported artifact (SavedModel, TFLite, ONNX) from its sidecar, without Keras."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from recaptcha_tf.inference.artifacts import (
    ExportError,
    _quiet,
    check_artifact_file,
    check_source_model,
    read_sidecar,
)
from recaptcha_tf.inference.outputs import output_kind

log = logging.getLogger("recaptcha_tf")


# --------------------------------------------------------------------------- runners


class Runner:
    """Runs an exported artifact on float32 images ``(B, h, w, C)`` (pixels 0-255) -> raw outputs.

    ``input_shape`` is the artifact's input: ``None`` entries are dynamic. With a
    fixed batch of 1 the runner feeds one image at a time; with a fixed image size
    it first resizes exactly like the Keras model does inside (same layer).
    """

    format = ""

    def __init__(self, path: str, meta: dict | None = None, threads: int | None = None):
        self.path = path
        self.meta = meta if meta is not None else read_sidecar(path)
        self.input_shape = tuple(self.meta["input"]["shape"])
        self.threads = threads
        self._resizer = None

    def _fit(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        height, width = self.input_shape[1:3]
        if height is not None and images.shape[1:3] != (height, width):
            if self._resizer is None:
                from recaptcha_tf.data.pipeline import resizing_layer

                self._resizer = resizing_layer((height, width), self.meta["resize"])
            images = np.asarray(self._resizer(images))
        return images

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = self._fit(images)
        if self.input_shape[0] == 1 and len(images) != 1:
            return np.concatenate([self._run(images[i : i + 1]) for i in range(len(images))])
        return self._run(images)

    def _run(self, images: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class SavedModelRunner(Runner):
    format = "savedmodel"

    def __init__(self, path, meta=None, threads=None):
        import tensorflow as tf

        super().__init__(path, meta, threads)
        self._loaded = tf.saved_model.load(path)
        self._fn = self._loaded.signatures["serving_default"]

    def _run(self, images):
        import tensorflow as tf

        outputs = self._fn(image=tf.constant(images))
        return next(iter(outputs.values())).numpy()


class TFLiteRunner(Runner):
    format = "tflite"

    def __init__(self, path, meta=None, threads=None):
        import tensorflow as tf

        super().__init__(path, meta, threads)
        with _quiet():
            self._interpreter = tf.lite.Interpreter(model_path=path, num_threads=threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._shape = None

    def _run(self, images):
        if images.shape != self._shape:
            self._interpreter.resize_tensor_input(self._input, images.shape, strict=False)
            self._interpreter.allocate_tensors()
            self._shape = images.shape
        self._interpreter.set_tensor(self._input, images)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output).copy()


class OnnxRunner(Runner):
    format = "onnx"

    def __init__(self, path, meta=None, threads=None):
        import onnxruntime as ort

        super().__init__(path, meta, threads)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self._session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self._name = self._session.get_inputs()[0].name

    def _run(self, images):
        return self._session.run(None, {self._name: images})[0]


class KerasRunner:
    """The Keras model behind the same interface (the parity and benchmark reference)."""

    format = "keras"

    def __init__(self, model):
        self.model = model

    def __call__(self, images):
        return np.asarray(self.model(np.asarray(images, dtype=np.float32), training=False))


RUNNERS = {"savedmodel": SavedModelRunner, "tflite": TFLiteRunner, "onnx": OnnxRunner}


def load_runner(artifact: str, threads: int | None = None) -> Runner:
    """A runner for an exported artifact; the format comes from its sidecar.

    Before a native runtime sees the file, :func:`~.artifacts.check_artifact_file` checks its bytes and
    :func:`~.artifacts.check_source_model` that it still matches its run folder's model: a damaged or stale
    artifact is an ``ExportError`` (one ``error:`` line), never a crash or an answer from an older model.
    """
    meta = read_sidecar(artifact)
    if meta["format"] not in RUNNERS:
        raise ExportError(f"The sidecar of {artifact} names an unknown format {meta['format']!r}.")
    check_artifact_file(artifact, meta["format"])
    check_source_model(artifact, meta)
    return RUNNERS[meta["format"]](artifact, meta, threads)


# --------------------------------------------------------------------------- decoding without Keras


def _probabilities(outputs: np.ndarray, kind: str) -> np.ndarray:
    """What the export parity compares for outputs of ``kind`` (probabilities for CTC logits)."""
    return output_kind(kind).comparable(outputs)


def decisions(outputs: np.ndarray, meta: dict) -> list:
    """What the application sees, per the output kind: top-1 index (softmax), label-index tuple (sigmoid), text
    (ctc/multihead), or a registered kind's own decision."""
    return output_kind(meta["kind"]).decide(outputs, meta["names"], meta["threshold"])


def load_images(sources: Sequence, meta: dict, batch_size: int = 64) -> np.ndarray:
    """Images at the model's size as float32 ``(N, H, W, C)``, resized by the package pipeline."""
    from recaptcha_tf.data.pipeline import make_dataset

    ds = make_dataset(
        list(sources),
        None,
        image_size=tuple(meta["image_size"]),
        channels=meta["channels"],
        resize=meta["resize"],
        batch_size=batch_size,
        cache=False,
    )
    return np.concatenate([b for b in ds.as_numpy_iterator()]).astype(np.float32)
