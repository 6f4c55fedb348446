"""The predictor: one loaded model (Keras or an exported artifact) behind one compiled function."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
import tensorflow as tf

import recaptcha_tf.layers  # noqa: F401  (registers custom layers before loading)
from recaptcha_tf.data.images import (
    CorruptImageError,
    check_image_size,
    find_undecodable,
    header_not_in_graph,
    load_image_array,
)
from recaptcha_tf.data.images import max_pixels as pixel_limit
from recaptcha_tf.inference.loading import ModelInfo, load_model, model_info
from recaptcha_tf.inference.outputs import output_kind
from recaptcha_tf.utils.progress import progress

RUNTIMES = ("keras", "onnx", "tflite")


class Inference:
    """One loaded model behind one compiled predictor: encoded images in, outputs and predictions out.

    Shared by :func:`predict`, ``evaluate``, ``serve`` (with micro-batching on
    top), the grid challenge and :func:`predict_artifact`;
    build it once per model (:func:`inference_for` caches one per Keras model).

    * :meth:`preprocess`: one image file or bytes -> ``uint8`` ``(H, W, C)`` at
      the model's size, by :func:`recaptcha_tf.data.pipeline.load_image`, the
      decode-and-resize of the training pipeline, as a ``tf.function`` on a
      scalar string, traced once, for every runtime (the network of an exported
      artifact runs in its own runtime, not in TensorFlow).
    * :meth:`run`: ``uint8`` ``(B, H, W, C)`` -> raw outputs ``(B, ...)`` float32:
      a ``tf.function`` with the fixed input signature ``(None, H, W, C)``,
      traced once (Keras), or the artifact's runner (ONNX Runtime, TFLite).
    * :meth:`outputs`: many images, decoded on a small thread pool while the
      previous batch runs.

    Args:
        info: what the model expects and produces.
        run: the batch function behind :meth:`run`.
        threads: decoding threads (default ``min(4, CPUs)``).
        thread_safe: ``False`` serialises :meth:`run` (a TFLite interpreter is not re-entrant).
        runtime: ``keras``, ``onnx``, ``tflite`` or ``savedmodel`` (reported, not used).
    """

    def __init__(
        self,
        info: ModelInfo,
        run,
        threads: int | None = None,
        thread_safe: bool = True,
        runtime: str = "keras",
    ):
        from recaptcha_tf.data.pipeline import fit_image, load_image, resizing_layer

        self.info = info
        self.runtime = runtime
        self._run = run
        self._run_lock = None if thread_safe else threading.Lock()
        self._threads = threads or min(4, os.cpu_count() or 1)
        self._pool = None
        self._pool_lock = threading.Lock()
        resizer = resizing_layer(info.image_size, info.resize)
        channels = info.channels

        # Traced once: run eagerly, the decode costs about 4 ms a tile against 0.6 ms, and holds the GIL.
        @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="contents")])
        def load(contents):
            return load_image(contents, channels, resizer)

        @tf.function(input_signature=[tf.TensorSpec([None, None, channels], tf.uint8, name="image")])
        def fit(image):
            return fit_image(image, resizer)

        self._load, self._fit = load, fit
        # Build the (weightless) resizer now, so that first calls from several threads do not race to build it.
        resizer.build((None, None, None, channels))

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_model(cls, model: keras.Model, precision: str = "float32", threads: int | None = None) -> Inference:
        """A compiled predictor for a Keras model built by this package.

        ``precision="float32"`` (default) runs a model trained in mixed precision
        as a float32 copy of it (weights copied now, see
        :func:`recaptcha_tf.inference.artifacts.inference_model`): much faster on CPUs without
        bfloat16 instructions, and within float tolerance. ``"model"`` keeps the
        saved dtype policy.
        """
        from recaptcha_tf.inference.artifacts import float32_model

        info = model_info(model)
        net = float32_model(model) if precision == "float32" else model
        height, width = info.image_size
        spec = tf.TensorSpec([None, height, width, info.channels], tf.uint8, name="image")

        @tf.function(input_signature=[spec])
        def serve(images):
            return tf.cast(net(tf.cast(images, tf.float32), training=False), tf.float32)

        def run(images):
            return serve(tf.convert_to_tensor(images, tf.uint8)).numpy()

        self = cls(info, run, threads=threads, runtime="keras")
        self.model = net
        run(np.zeros((1, height, width, info.channels), np.uint8))  # trace now
        return self

    @classmethod
    def from_artifact(cls, artifact: str, threads: int | None = None) -> Inference:
        """A predictor for an exported artifact (``.onnx``, ``.tflite``, SavedModel folder) and its sidecar."""
        from recaptcha_tf.inference.runtimes import load_runner

        runner = load_runner(artifact, threads=threads)
        meta = runner.meta
        info = ModelInfo(
            names=list(meta["names"]),
            kind=meta["kind"],
            task=meta["task"],
            image_size=tuple(meta["image_size"]),
            channels=int(meta["channels"]),
            resize=meta["resize"],
            threshold=float(meta["threshold"]),
            min_confidence=meta.get("min_confidence"),  # absent from sidecars written before the thresholds were kept
            challenge_threshold=meta.get("challenge_threshold"),
            temperature=float(meta.get("temperature", 1.0)),  # applied inside the exported graph; reported here
        )

        def run(images):
            return np.asarray(runner(np.asarray(images, dtype=np.float32)), dtype=np.float32)

        self = cls(info, run, threads=threads, thread_safe=runner.format != "tflite", runtime=runner.format)
        self.runner = runner
        return self

    # ------------------------------------------------------------------ steps

    def preprocess(self, source) -> np.ndarray:
        """One image file (path) or encoded bytes -> ``uint8`` ``(H, W, C)`` at the model's size.

        Raises:
            CorruptImageError: naming the file, when it cannot be read or decoded.
        """
        name = source if isinstance(source, str) else "<bytes>"
        try:
            data = _read(source)
            if pixel_limit() and header_not_in_graph(data):  # a GIF's frame, a WebP under .png: Pillow's header
                check_image_size(data, pixel_limit(), name)
            return self._load(tf.constant(data)).numpy()
        except (OSError, tf.errors.OpError, ValueError) as err:
            check_readable([source], self.info.channels)  # raises CorruptImageError with the shared message
            raise CorruptImageError(f"Could not read {name}: {str(err).splitlines()[0][:200]}") from err

    def preprocess_array(self, image: np.ndarray) -> np.ndarray:
        """Decoded pixels ``(h, w, C)`` (e.g. a grid cell) -> ``uint8`` ``(H, W, C)``, resized as in training."""
        return self._fit(tf.convert_to_tensor(np.asarray(image, dtype=np.uint8))).numpy()

    def run(self, images: np.ndarray) -> np.ndarray:
        """``uint8`` ``(B, H, W, C)`` at the model's size -> raw outputs ``(B, ...)`` float32."""
        if self._run_lock is None:
            return self._run(images)
        with self._run_lock:
            return self._run(images)

    def run_tta(self, images: np.ndarray, tta: str = "none") -> np.ndarray:
        """:meth:`run` with test-time augmentation: ``"flip"`` averages the outputs of the images
        and of their mirror images (left-right), for tile classifiers; ``"none"`` is :meth:`run`."""
        if tta == "none":
            return self.run(images)
        check_tta(tta, self.info)
        return (self.run(images) + self.run(np.ascontiguousarray(images[:, :, ::-1]))) / 2

    def outputs(self, sources: Sequence, batch_size: int = 64, tta: str = "none") -> np.ndarray:
        """Raw outputs for image files or bytes, in order; the next batch decodes while this one runs.
        ``tta="flip"``: see :meth:`run_tta`."""
        sources = list(sources)
        if not sources:
            raise ValueError("No images to predict.")
        check_tta(tta, self.info)
        pool = self.pool()
        chunks = [sources[i : i + batch_size] for i in range(0, len(sources), batch_size)]
        pending = [pool.submit(self.preprocess, s) for s in chunks[0]]
        parts = []
        bar = progress(total=len(sources), desc="predict", unit="img", minimum=2 * batch_size)  # more than a batch
        try:
            for k in range(len(chunks)):
                current = pending
                pending = [pool.submit(self.preprocess, s) for s in chunks[k + 1]] if k + 1 < len(chunks) else []
                parts.append(self.run_tta(np.stack([f.result() for f in current]), tta))
                bar.update(len(chunks[k]))
        finally:
            bar.close()
            for f in pending:
                f.cancel()
        return np.concatenate(parts)

    def predict(self, sources: Sequence, top_k: int = 3, beam_width: int = 0, tta: str = "none") -> list[dict]:
        """One dict per image, as :func:`predict` describes."""
        return format_predictions(self.outputs(sources, tta=tta), self.info, top_k, beam_width)

    def pool(self) -> ThreadPoolExecutor:
        """The decoding thread pool (created on first use)."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="decode")
            return self._pool


def _read(source) -> bytes:
    if isinstance(source, str):
        with open(source, "rb") as f:
            return f.read()
    return bytes(source)


_CACHE: weakref.WeakKeyDictionary[keras.Model, Inference] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def inference_for(model) -> Inference:
    """The :class:`Inference` of a loaded Keras model, built on first use and kept with the model.

    An :class:`Inference` passes through. A model trained in mixed precision is
    copied to float32 once, on first use: train it further and build a new one
    with :meth:`Inference.from_model`.
    """
    if isinstance(model, Inference):
        return model
    with _CACHE_LOCK:
        found = _CACHE.get(model)
        if found is None:
            found = _CACHE[model] = Inference.from_model(model)
        return found


def resolve_artifact(path: str, runtime: str) -> str:
    """The exported artifact for ``runtime`` (``onnx`` / ``tflite``): the file itself, or ``RUN/export/model.*``."""
    from recaptcha_tf.inference.artifacts import EXTENSIONS, default_out

    if runtime not in ("onnx", "tflite"):
        raise ValueError(f"No exported artifact for runtime {runtime!r}.")
    if os.path.isfile(path) and path.endswith(EXTENSIONS[runtime]):
        return path
    artifact = default_out(path, runtime)
    if not os.path.exists(artifact):
        raise FileNotFoundError(
            f"No {runtime} export at {artifact!r}: run `recaptcha-tf export --model {path} --format {runtime}` "
            f"first, or pass the {EXTENSIONS[runtime]} file as --model."
        )
    return artifact


def load_inference(path: str, runtime: str = "keras", threads: int | None = None) -> Inference:
    """Load a model for prediction: ``keras`` (run folder or ``.keras``), ``onnx`` or ``tflite`` (its export)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"Unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}.")
    if runtime == "keras":
        return inference_for(load_model(path))
    return Inference.from_artifact(resolve_artifact(path, runtime), threads=threads)


TTA = ("none", "flip")


class InferenceOptionError(ValueError):
    """An inference option the model cannot take, such as ``--tta flip`` on a text model (a user error)."""


def check_tta(tta: str, info: ModelInfo) -> None:
    """Flip averaging is for tile classifiers: a mirrored glyph or text is another label."""
    if tta not in TTA:
        raise InferenceOptionError(f"--tta must be one of {TTA}, not {tta!r}.")
    if tta != "none" and info.task != "tiles":
        raise InferenceOptionError(f"--tta {tta} is for tile models (a mirrored {info.task} image reads differently).")


def predict_outputs(model, sources: Sequence, batch_size: int = 64, tta: str = "none") -> np.ndarray:
    """Raw model outputs for image files or bytes, resized exactly as in training.

    ``model`` is a Keras model (its cached :class:`Inference` is used) or an :class:`Inference`;
    ``tta="flip"`` averages each image's outputs with its mirror image's (tile models).
    """
    return inference_for(model).outputs(sources, batch_size, tta=tta)


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


def predict(
    model, sources: Sequence, top_k: int = 3, beam_width: int = 0, errors: str = "raise", tta: str = "none"
) -> list[dict]:
    """Predictions for image files (or bytes), one dict per image.

    ``model`` is a Keras model or an :class:`Inference` (e.g. of an ONNX export).
    Classifiers give ``label``, ``confidence`` and ``top_k`` ``(name, prob)`` pairs
    (multi-label: every label over the threshold in ``labels``); text models give
    ``text`` and per-character ``confidence``.

    An unreadable image (missing, corrupt, over the pixel limit): with ``errors="raise"``
    a :class:`CorruptImageError` naming the first one; with ``errors="report"`` its
    entry is ``{"error": reason}`` and every other image is still predicted.
    ``tta="flip"`` averages each tile's outputs with its mirror image's.
    """
    inference = inference_for(model)
    sources = list(sources)
    try:
        return inference.predict(sources, top_k, beam_width, tta=tta)
    except CorruptImageError:
        if errors == "raise":
            raise
    bad = unreadable(sources, inference.info.channels)
    good = [s for i, s in enumerate(sources) if i not in bad]
    results = inference.predict(good, top_k, beam_width, tta=tta) if good else []
    for i in sorted(bad):
        results.insert(i, {"error": bad[i]})
    return results


def format_predictions(outputs: np.ndarray, info: ModelInfo, top_k: int = 3, beam_width: int = 0) -> list[dict]:
    """Raw outputs ``(B, ...)`` -> the dicts of :func:`predict`, as the model's output kind reads them
    (:mod:`.outputs`: classes with ``top_k``, text through :mod:`.decoding`, or a registered kind's own)."""
    return output_kind(info.kind).format(outputs, info.names, info.threshold, top_k=top_k, beam_width=beam_width)


def predict_artifact(artifact: str, sources: Sequence, top_k: int = 3) -> list[dict]:
    """Like :func:`recaptcha_tf.inference.predict`, but with an exported artifact and its sidecar.

    Runs through :meth:`recaptcha_tf.inference.Inference.from_artifact`: the same
    decoding and resizing as training, the artifact's runner for the model.
    """
    return Inference.from_artifact(artifact).predict(sources, top_k)
