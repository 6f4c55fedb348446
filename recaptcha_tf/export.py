"""Export a trained model to SavedModel, TFLite or ONNX, and check that the export agrees with Keras.

    recaptcha-tf export --model models/tiles-cnn --format tflite [--quantize dynamic] [--out PATH]

What is exported
    The *inference* form of the saved model: the same raw-image input
    ``(B, H, W, C)`` float32 pixels 0-255 of any size (resizing inside), the
    same weights, computing in float32 with dropout and BatchNorm in inference
    mode. Models trained in mixed precision (``mixed_bfloat16`` /
    ``mixed_float16``) are exported in float32; the parity report gives the
    difference to the mixed-precision Keras model as ``keras_mixed_vs_float32``.

    * ``savedmodel``: a ``tf.saved_model`` directory for TF Serving; signature
      ``serving_default(image)`` with ``image`` float32 pixels of shape
      ``(None, None, None, C)``, and ``serving_bytes(image_bytes)`` taking encoded
      image files (string ``(None,)``), decoded and resized as in training.
    * ``tflite``: a ``.tflite`` flat buffer. Input ``(None, None, None, C)`` when
      the converter can do it; recurrent (CTC) models need static shapes in
      TFLite, so they get a batch of 1 ``(1, None, None, C)``; the runner then
      feeds one image at a time. If neither converts, the input is fixed at the
      model's training size and the runner resizes first with the model's own
      Keras resizing layer.
    * ``onnx``: via ``tf2onnx.convert.from_function`` (opset 17); input
      ``(None, None, None, C)``.
    * ``--quantize dynamic``: dynamic-range quantization (int8 weights, float
      activations): ``tf.lite.Optimize.DEFAULT`` for TFLite,
      ``onnxruntime.quantization.quantize_dynamic`` for ONNX. Not for SavedModel.

    A sidecar ``<artifact>.json`` holds the label names, kind, threshold, task,
    image size, channels, resize mode and input shape, so a deployed artifact is
    decoded without Keras (:func:`predict_artifact`).

Parity (:func:`check_parity`)
    Both the float32 Keras inference model and the export run on the same real
    images, resized by the package pipeline (:func:`recaptcha_tf.data.pipeline.make_dataset`)
    to the model's size, plus a few images at their original size through the
    export's own resizing. Outputs compared are probabilities (softmax of the
    logits for CTC models). A float32 export passes when the largest absolute
    difference is at most :data:`FLOAT_TOLERANCE` (1e-4) *and* every decision
    agrees (top-1 class, multi-label set, decoded text). A dynamically quantized
    export passes when the decisions agree on at least :data:`QUANTIZED_MIN_AGREEMENT`
    (0.9) of the images; its largest absolute difference is reported, not enforced.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import warnings
from collections.abc import Sequence

import numpy as np

from recaptcha_tf.data.images import is_image_file

log = logging.getLogger("recaptcha_tf")

FORMATS = ("savedmodel", "tflite", "onnx")
QUANTIZE = (None, "dynamic")
EXTENSIONS = {"savedmodel": "", "tflite": ".tflite", "onnx": ".onnx"}
FLOAT_TOLERANCE = 1e-4
QUANTIZED_MIN_AGREEMENT = 0.9
ONNX_OPSET = 17
SIDECAR_SUFFIX = ".json"


class ExportError(ValueError):
    """An export that cannot be made (unsupported format/option) or that failed its parity check."""


# --------------------------------------------------------------------------- the inference model


def _inference_config(obj):
    """Rewrite a serialised model config in place for inference in float32.

    * mixed-precision dtype policies become ``float32``;
    * RNN ``dropout`` / ``recurrent_dropout`` become 0 (no effect at inference; a
      dropout RNN carries a seed-state variable the TFLite converter rejects);
    * recorded ``training`` call arguments are dropped.
    """
    if isinstance(obj, dict):
        if obj.get("class_name") == "DTypePolicy" and isinstance(obj.get("config"), dict):
            if str(obj["config"].get("name", "")).startswith("mixed_"):
                obj["config"]["name"] = "float32"
        for key in ("dropout", "recurrent_dropout"):
            if isinstance(obj.get(key), (int, float)) and not isinstance(obj.get(key), bool):
                obj[key] = 0.0
        if isinstance(obj.get("kwargs"), dict):
            obj["kwargs"].pop("training", None)
        for value in obj.values():
            _inference_config(value)
    elif isinstance(obj, list):
        for value in obj:
            _inference_config(value)
    return obj


def inference_model(model):
    """A float32 copy of ``model`` (same weights) for export; see :func:`_inference_config`.

    Deserialised with ``safe_mode=True``, like every model this package loads.
    """
    import keras

    from recaptcha_tf.precision import precision_policy

    config = _inference_config(keras.saving.serialize_keras_object(model))
    with precision_policy("float32"):
        clone = keras.saving.deserialize_keras_object(config, safe_mode=True)
    source = model.weights
    target = clone.weights
    if [v.path for v in source] != [v.path for v in target]:
        by_path = {v.path: v for v in source}
        missing = [v.path for v in target if v.path not in by_path]
        if missing:
            raise ExportError(f"Cannot copy weights into the float32 inference model: missing {missing[:5]}.")
        for v in target:
            v.assign(by_path[v.path])
    else:
        clone.set_weights(model.get_weights())
    return clone


def _uses_mixed_precision(model) -> bool:
    import keras

    def policies(layer):
        yield layer.dtype_policy.name
        if isinstance(layer, keras.Model):
            for sub in layer.layers:
                yield from policies(sub)

    return any(name.startswith("mixed_") for name in policies(model))


def _is_recurrent(model) -> bool:
    import keras

    def walk(layer):
        yield layer
        for attr in ("layers", "forward_layer", "backward_layer"):
            value = getattr(layer, attr, None)
            for sub in value if isinstance(value, list) else [value] if value is not None else []:
                yield from walk(sub)

    return any(isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional)) for layer in walk(model))


def _serving_function(model, input_shape):
    import tensorflow as tf

    spec = tf.TensorSpec(input_shape, tf.float32, name="image")

    @tf.function(input_signature=[spec])
    def serve(image):
        return model(image, training=False)

    return serve


# --------------------------------------------------------------------------- sidecar


def sidecar_path(artifact: str) -> str:
    return artifact.rstrip("/" + os.sep) + SIDECAR_SUFFIX


def _info_dict(info) -> dict:
    return {
        "names": list(info.names),
        "kind": info.kind,
        "threshold": float(info.threshold),
        "task": info.task,
        "image_size": [int(s) for s in info.image_size],
        "channels": int(info.channels),
        "resize": info.resize,
    }


def write_sidecar(artifact: str, info, format: str, quantize: str | None, input_shape, source: str) -> str:
    """Write ``<artifact>.json``: everything needed to feed and decode the artifact without Keras."""
    import keras
    import tensorflow as tf

    meta = {
        **_info_dict(info),
        "format": format,
        "quantize": quantize,
        "input": {
            "name": "image",
            "dtype": "float32",
            "shape": [None if d is None else int(d) for d in input_shape],
            "pixels": "0-255, RGB or grayscale per 'channels'; resized inside unless the shape is fixed",
        },
        "outputs": {
            "softmax": "(B, C) class probabilities, names[i] for index i",
            "sigmoid": "(B, C) independent probabilities; labels with prob >= threshold",
            "ctc": "(B, T, C+1) per-frame logits; index 0 is the CTC blank, index i+1 is names[i]",
            "multihead": "(B, L, C+1) per-position probabilities; index 0 ends the text, i+1 is names[i]",
        }[info.kind],
        "source_model": os.path.abspath(source),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
    return _write_json(meta, sidecar_path(artifact))


def _write_json(obj, path: str) -> str:
    """Write ``obj`` as JSON to a temporary file beside ``path``, then rename it into place."""
    tmp = f"{path}.partial{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)
    return path


def read_sidecar(artifact: str) -> dict:
    path = sidecar_path(artifact)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No sidecar {path!r} next to {artifact!r}: export it with `recaptcha-tf export`.")
    with open(path) as f:
        return json.load(f)


# --------------------------------------------------------------------------- export


def default_out(model_path: str, format: str, quantize: str | None = None) -> str:
    """``RUN/export/model[_dynamic].{savedmodel/,tflite,onnx}``."""
    from recaptcha_tf.inference import resolve_model_path

    keras_file = resolve_model_path(model_path)
    stem = os.path.splitext(os.path.basename(keras_file))[0] + (f"_{quantize}" if quantize else "")
    suffix = "_savedmodel" if format == "savedmodel" else EXTENSIONS[format]
    return os.path.join(os.path.dirname(os.path.abspath(keras_file)), "export", stem + suffix)


@contextlib.contextmanager
def _quiet():
    """Silence converter chatter (absl/TF Python warnings) without hiding errors."""
    loggers = [logging.getLogger(name) for name in ("tensorflow", "tf2onnx", "")]  # "" = root (ORT quantizer)
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def _export_savedmodel(model, out: str, info):
    """Two signatures for TF Serving: ``serving_default(image)`` raw pixels, ``serving_bytes(image_bytes)`` files.

    ``image``: float32 ``(None, None, None, C)`` pixels 0-255 of any size,
    resized inside. ``image_bytes``: string ``(None,)``, one encoded PNG / JPEG /
    BMP / GIF per image, decoded and resized by the training pipeline's
    :func:`recaptcha_tf.data.pipeline.load_image` (REST: ``{"b64": ...}``).
    """
    import keras
    import tensorflow as tf

    from recaptcha_tf.data.pipeline import load_image, resizing_layer

    shape = (None, None, None, info.channels)
    height, width = info.image_size
    resizer = resizing_layer(info.image_size, info.resize)

    def from_bytes(image_bytes):
        images = tf.map_fn(
            lambda contents: load_image(contents, info.channels, resizer),
            image_bytes,
            fn_output_signature=tf.TensorSpec((height, width, info.channels), tf.uint8),
        )
        return model(tf.cast(images, tf.float32), training=False)

    archive = keras.export.ExportArchive()  # tracks every variable, seed-generator states included
    archive.track(model)
    # The first endpoint is also exported as "serving_default", the signature TF Serving uses by default.
    archive.add_endpoint(
        name="serve",
        fn=lambda image: model(image, training=False),
        input_signature=[tf.TensorSpec(shape, tf.float32, name="image")],
    )
    archive.add_endpoint(
        name="serving_bytes", fn=from_bytes, input_signature=[tf.TensorSpec((None,), tf.string, name="image_bytes")]
    )
    with _quiet():
        archive.write_out(out, verbose=False)
    return shape


def _export_tflite(model, out: str, info, quantize: str | None):
    import tensorflow as tf

    height, width = info.image_size
    shapes = [(None, None, None, info.channels), (1, None, None, info.channels), (1, height, width, info.channels)]
    if _is_recurrent(model):
        # Keras 3 RNNs lower to TensorList ops, which TFLite builtins accept only with a static batch.
        shapes = shapes[1:]
    errors = []
    for shape in shapes:
        converter = tf.lite.TFLiteConverter.from_concrete_functions(
            [_serving_function(model, shape).get_concrete_function()], model
        )
        if quantize == "dynamic":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        try:
            with _quiet():
                flat = converter.convert()
        except Exception as err:  # noqa: BLE001  ConverterError and friends; try the next, more static, input shape
            errors.append(f"{shape}: {str(err).strip().splitlines()[-1][:300]}")
            log.debug("TFLite conversion with input %s failed: %s", shape, err)
            continue
        if shape != shapes[0]:
            log.info("TFLite input shape is %s (a fully dynamic input did not convert).", shape)
        tmp = f"{out}.partial{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(flat)
        os.replace(tmp, out)
        return shape
    raise ExportError("TFLite conversion failed for every input shape tried: " + " | ".join(errors))


def _export_onnx(model, out: str, channels: int, quantize: str | None):
    try:
        import tf2onnx
    except ImportError as err:  # pragma: no cover - pinned in requirements
        raise ExportError(f"ONNX export needs tf2onnx (pip install tf2onnx): {err}") from err
    import tensorflow as tf

    shape = (None, None, None, channels)
    fn = _serving_function(model, shape)
    float_path = out if not quantize else out + ".float.tmp"
    with _quiet():
        tf2onnx.convert.from_function(
            fn,
            input_signature=[tf.TensorSpec(shape, tf.float32, name="image")],
            opset=ONNX_OPSET,
            output_path=float_path,
        )
    if quantize == "dynamic":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        try:
            with _quiet():
                quantize_dynamic(float_path, out, weight_type=QuantType.QUInt8)
        finally:
            os.remove(float_path)
    return shape


def export_model(model_path: str, format: str, out: str | None = None, quantize: str | None = None, model=None) -> str:
    """Export the saved model at ``model_path`` (run folder or ``.keras``) and write its sidecar.

    Args:
        model_path: run folder or ``.keras`` file (loaded with ``safe_mode=True``).
        format: ``"savedmodel"``, ``"tflite"`` or ``"onnx"``.
        out: artifact path; default ``RUN/export/model[_dynamic]{_savedmodel,.tflite,.onnx}``.
        quantize: ``None`` or ``"dynamic"`` (TFLite and ONNX).
        model: an already loaded Keras model from ``model_path`` (saves loading it again).

    Returns:
        The artifact path (a directory for SavedModel, a file otherwise).
    """
    from recaptcha_tf.inference import load_model, model_info

    if format not in FORMATS:
        raise ExportError(f"Unknown export format {format!r}; use one of {', '.join(FORMATS)}.")
    if quantize not in QUANTIZE:
        raise ExportError(f"Unknown quantization {quantize!r}; use 'dynamic' or leave it out.")
    if quantize and format == "savedmodel":
        raise ExportError("--quantize applies to tflite and onnx only; a SavedModel is exported in float32.")
    model = model if model is not None else load_model(model_path)
    info = model_info(model)
    out = out or default_out(model_path, format, quantize)
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    net = inference_model(model)
    start = time.perf_counter()
    if format == "savedmodel":
        shape = _export_savedmodel(net, out, info)
    elif format == "tflite":
        shape = _export_tflite(net, out, info, quantize)
    else:
        shape = _export_onnx(net, out, info.channels, quantize)
    write_sidecar(out, info, format, quantize, shape, model_path)
    log.info(
        "exported %s (%s%s) in %.1f s", out, format, f", {quantize}" if quantize else "", time.perf_counter() - start
    )
    return out


def artifact_size(path: str) -> int:
    """Bytes on disk (a SavedModel directory is summed)."""
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)
    return os.path.getsize(path)


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
    """A runner for an exported artifact; the format comes from its sidecar."""
    meta = read_sidecar(artifact)
    return RUNNERS[meta["format"]](artifact, meta, threads)


# --------------------------------------------------------------------------- decoding without Keras


def _probabilities(outputs: np.ndarray, kind: str) -> np.ndarray:
    from recaptcha_tf.decoding import softmax

    return softmax(outputs) if kind == "ctc" else outputs


def decisions(outputs: np.ndarray, meta: dict) -> list:
    """What the application sees: top-1 index (softmax), label-index tuple (sigmoid) or text (ctc/multihead)."""
    from recaptcha_tf.decoding import decode_text_outputs

    kind = meta["kind"]
    if kind in ("ctc", "multihead"):
        return [text for text, _ in decode_text_outputs(outputs, meta["names"], kind)]
    if kind == "sigmoid":
        return [tuple(np.flatnonzero(p >= meta["threshold"]).tolist()) for p in outputs]
    return [int(i) for i in np.argmax(outputs, axis=-1)]


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


def predict_artifact(artifact: str, sources: Sequence, top_k: int = 3) -> list[dict]:
    """Like :func:`recaptcha_tf.inference.predict`, but with an exported artifact and its sidecar.

    Runs through :meth:`recaptcha_tf.inference.Inference.from_artifact`: the same
    decoding and resizing as training, the artifact's runner for the model.
    """
    from recaptcha_tf.inference import Inference

    return Inference.from_artifact(artifact).predict(sources, top_k)


# --------------------------------------------------------------------------- parity


def list_images(paths: Sequence[str] | str) -> list[str]:
    """Image files under folders (recursively, sorted) or given directly."""
    out = []
    for path in [paths] if isinstance(paths, str) else paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                out += [os.path.join(root, f) for f in sorted(files) if is_image_file(f)]
        elif os.path.isfile(path):
            out.append(path)
        else:
            raise FileNotFoundError(f"No such image or folder: {path!r}.")
    return out


def run_images(model_path: str) -> list[str]:
    """The held-out test images of a training run (from ``RUN/split.json``), if they still exist."""
    from recaptcha_tf.data.splits import load_manifest
    from recaptcha_tf.inference import resolve_model_path

    split_file = os.path.join(os.path.dirname(resolve_model_path(model_path)), "split.json")
    if not os.path.exists(split_file):
        return []
    split = load_manifest(split_file)  # paths resolved against the manifest's root, from any working directory
    found = []
    for subset in ("test", "val", "train"):
        found = [p for p, _ in split.subset(subset) if os.path.isfile(p) and is_image_file(p)]
        if found:
            return found
    return found


def _readable(files: list[str], channels: int) -> list[str]:
    """``files`` without the unreadable ones (corrupt, truncated, over the pixel limit), named in one warning."""
    from recaptcha_tf.data.images import find_undecodable, warn_skipped

    bad = set(find_undecodable(files, channels))
    if bad:
        warn_skipped([files[i] for i in sorted(bad)], what="unreadable parity image(s)")
        files = [f for i, f in enumerate(files) if i not in bad]
    if not files:
        raise ExportError(f"None of the {len(bad)} parity image(s) could be read; pass --data with readable images.")
    return files


def _sample(items: list, limit: int | None, seed: int = 0) -> list:
    if limit is None or len(items) <= limit:
        return list(items)
    idx = np.random.default_rng(seed).choice(len(items), size=limit, replace=False)
    return [items[i] for i in sorted(idx)]


def check_parity(
    model_path: str,
    artifact: str,
    sources: Sequence[str] | None = None,
    limit: int | None = 64,
    raw_limit: int = 8,
    tolerance: float | None = None,
    min_agreement: float | None = None,
    model=None,
) -> dict:
    """Compare an exported artifact with the Keras model on real images.

    Args:
        model_path: the run folder or ``.keras`` file the artifact came from.
        artifact: the exported artifact (its sidecar says the format).
        sources: image files or folders; default the run's test split (``split.json``).
        limit: at most this many images (seeded sample).
        raw_limit: this many of them are also fed at their original size, one by
            one, through the artifact's own resizing (``0`` to skip).
        tolerance: max abs difference allowed on probabilities for a float32
            export (default :data:`FLOAT_TOLERANCE`).
        min_agreement: decision agreement needed by a quantized export (default
            :data:`QUANTIZED_MIN_AGREEMENT`).

    Returns:
        ``n``, ``max_abs_diff`` (probabilities; softmax of CTC logits),
        ``max_abs_diff_raw_size``, ``agreement`` (top-1 / label-set / decoded-text
        agreement rate), ``text_agreement`` (text models), ``disagreements``
        (a few examples), ``tolerance``, ``min_agreement``, ``passed``,
        ``keras_mixed_vs_float32`` (when the model was trained in mixed precision).
    """
    from recaptcha_tf.inference import load_model

    meta = read_sidecar(artifact)
    files = list_images(sources) if sources else run_images(model_path)
    if not files:
        raise ExportError(
            "No images for the parity check: the run's split.json images were not found; pass --data DIR."
        )
    files = _readable(_sample(files, limit), meta["channels"])
    model = model if model is not None else load_model(model_path)
    reference = KerasRunner(inference_model(model))
    runner = load_runner(artifact)
    kind = meta["kind"]
    images = load_images(files, meta)
    ref_out, exp_out = reference(images), runner(images)
    if ref_out.shape != exp_out.shape:
        raise ExportError(f"Output shapes differ: Keras {ref_out.shape}, export {exp_out.shape}.")
    ref_p, exp_p = _probabilities(ref_out, kind), _probabilities(exp_out, kind)
    diff = float(np.max(np.abs(ref_p - exp_p)))
    ref_d, exp_d = decisions(ref_out, meta), decisions(exp_out, meta)
    agree = [a == b for a, b in zip(ref_d, exp_d)]
    report = {
        "format": meta["format"],
        "quantize": meta["quantize"],
        "n": len(files),
        "kind": kind,
        "max_abs_diff": diff,
        "mean_abs_diff": float(np.mean(np.abs(ref_p - exp_p))),
        "agreement": float(np.mean(agree)),
    }
    if kind in ("ctc", "multihead"):
        report["text_agreement"] = report["agreement"]
    report["disagreements"] = [
        {"image": f, "keras": _jsonable(a), "export": _jsonable(b)}
        for f, a, b, ok in zip(files, ref_d, exp_d, agree)
        if not ok
    ][:10]
    raw_diffs = []
    if raw_limit:
        from recaptcha_tf.data.images import load_image_array

        for f in files[:raw_limit]:
            raw = load_image_array(f, meta["channels"]).astype(np.float32)[None]
            raw_diffs.append(np.max(np.abs(_probabilities(reference(raw), kind) - _probabilities(runner(raw), kind))))
        report["max_abs_diff_raw_size"] = float(np.max(raw_diffs))
    if _uses_mixed_precision(model):
        mixed = np.asarray(model.predict(images, verbose=0))
        report["keras_mixed_vs_float32"] = float(np.max(np.abs(_probabilities(mixed, kind) - ref_p)))
    if meta["quantize"]:
        report["min_agreement"] = QUANTIZED_MIN_AGREEMENT if min_agreement is None else min_agreement
        report["passed"] = report["agreement"] >= report["min_agreement"]
    else:
        report["tolerance"] = FLOAT_TOLERANCE if tolerance is None else tolerance
        worst = max([diff, *raw_diffs])
        report["passed"] = bool(worst <= report["tolerance"] and report["agreement"] == 1.0)
    return report


def _jsonable(decision):
    return list(decision) if isinstance(decision, tuple) else decision


def describe_parity(report: dict) -> str:
    """One human-readable line for the CLI."""
    what = (
        "text agreement"
        if "text_agreement" in report
        else ("label-set agreement" if report["kind"] == "sigmoid" else "top-1 agreement")
    )
    head = (
        f"parity on {report['n']} images: max |diff| {report['max_abs_diff']:.3g}"
        + (f" (original sizes {report['max_abs_diff_raw_size']:.3g})" if "max_abs_diff_raw_size" in report else "")
        + f", {what} {report['agreement']:.3f}"
    )
    if "tolerance" in report:
        rule = f"tolerance: max |diff| <= {report['tolerance']:g} on probabilities and full agreement"
    else:
        rule = f"quantized: {what} >= {report['min_agreement']:g} (max |diff| reported only)"
    verdict = "PASSED" if report["passed"] else "FAILED"
    extra = (
        f"; Keras mixed-precision vs float32 inference model: {report['keras_mixed_vs_float32']:.3g}"
        if "keras_mixed_vs_float32" in report
        else ""
    )
    return f"{head} -- {rule}: {verdict}{extra}"


def run_export(
    model_path: str,
    format: str,
    out: str | None = None,
    quantize: str | None = None,
    data: Sequence[str] | None = None,
    limit: int | None = 64,
    tolerance: float = FLOAT_TOLERANCE,
    min_agreement: float = QUANTIZED_MIN_AGREEMENT,
    parity: bool = True,
) -> int:
    """The ``export`` command: export, write the sidecar, check parity; returns the exit status.

    0: exported and parity passed (or skipped); 1: parity failed; 2: the export cannot be made.
    The parity report is written to ``<artifact>.parity.json``.
    """
    import sys

    from recaptcha_tf.inference import load_model

    try:
        model = load_model(model_path)
        artifact = export_model(model_path, format, out=out, quantize=quantize, model=model)
    except ExportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"exported {artifact} ({artifact_size(artifact) / 1e6:.2f} MB); sidecar {sidecar_path(artifact)}")
    if not parity:
        return 0
    try:
        report = check_parity(
            model_path,
            artifact,
            sources=data or None,
            limit=limit,
            tolerance=tolerance,
            min_agreement=min_agreement,
            model=model,
        )
    except ExportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    report_path = _write_json(report, artifact.rstrip("/" + os.sep) + ".parity.json")
    print(describe_parity(report))
    if not report["passed"]:
        print(
            f"error: the {format} export does not agree with the Keras model (details: {report_path}); "
            "do not deploy it.",
            file=sys.stderr,
        )
        for d in report["disagreements"][:5]:
            print(f"  {d['image']}: keras {d['keras']!r}, export {d['export']!r}", file=sys.stderr)
        return 1
    return 0
