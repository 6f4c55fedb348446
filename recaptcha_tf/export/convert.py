"""Conversion: SavedModel / TFLite / ONNX artifacts and their sidecars."""

from __future__ import annotations

import logging
import os
import time

# EXTENSIONS, SIDECAR_SUFFIX, float32_model and read_sidecar lived here before 0.2.0: re-exported for old imports.
from recaptcha_tf.inference.artifacts import EXTENSIONS as EXTENSIONS
from recaptcha_tf.inference.artifacts import (
    FORMATS,
    QUANTIZE,
    ExportError,
    _info_dict,
    _quiet,
    default_out,
    inference_model,
    parity_path,
    sidecar_path,
)
from recaptcha_tf.inference.artifacts import SIDECAR_SUFFIX as SIDECAR_SUFFIX
from recaptcha_tf.inference.artifacts import float32_model as float32_model
from recaptcha_tf.inference.artifacts import read_sidecar as read_sidecar
from recaptcha_tf.inference.outputs import output_kind
from recaptcha_tf.utils.hashing import sha256_of
from recaptcha_tf.utils.run_folder import write_json

FLOAT_TOLERANCE = 1e-4  # parity: a float32 export's largest absolute difference to Keras
QUANTIZED_MIN_AGREEMENT = 0.9  # parity: the share of decisions a quantized export must agree on
ONNX_OPSET = 17

log = logging.getLogger("recaptcha_tf")


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
        "outputs": output_kind(info.kind).describe,
        "source_model": os.path.abspath(source),
        "source_sha256": sha256_of(source),  # an export answers only for this very model (check_source_model)
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
    return write_json(meta, sidecar_path(artifact))


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
        archive.write_out(out, verbose=False)  # a fresh temporary folder (export_model renames it)
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
    float_path = out if not quantize else out + ".float"  # ``out`` is a temporary name (export_model renames it)
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
    from recaptcha_tf.inference.loading import load_model, model_info, resolve_model_path

    if format not in FORMATS:
        raise ExportError(f"Unknown export format {format!r}; use one of {', '.join(FORMATS)}.")
    if quantize not in QUANTIZE:
        raise ExportError(f"Unknown quantization {quantize!r}; use 'dynamic' or leave it out.")
    if quantize and format == "savedmodel":
        raise ExportError("--quantize applies to tflite and onnx only; a SavedModel is exported in float32.")
    model = model if model is not None else load_model(model_path)
    info = model_info(model)
    out = (out or default_out(model_path, format, quantize)).rstrip("/" + os.sep)
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    net = inference_model(model)
    start = time.perf_counter()
    partial = os.path.join(parent, f"partial{os.getpid()}-{os.path.basename(out)}")
    _remove(partial)
    try:
        if format == "savedmodel":
            shape = _export_savedmodel(net, partial, info)
        elif format == "tflite":
            shape = _export_tflite(net, partial, info, quantize)
        else:
            shape = _export_onnx(net, partial, info.channels, quantize)
    except BaseException:
        _remove(partial)
        raise
    for stale in (sidecar_path(out), parity_path(out)):  # they describe the artifact about to be replaced
        _remove(stale)
    _replace(partial, out)
    write_sidecar(out, info, format, quantize, shape, resolve_model_path(model_path))
    log.info(
        "exported %s (%s%s) in %.1f s", out, format, f", {quantize}" if quantize else "", time.perf_counter() - start
    )
    return out


def _remove(path: str) -> None:
    import shutil

    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def _replace(partial: str, out: str) -> None:
    """Put the finished artifact ``partial`` at ``out``: a file by one rename; a SavedModel folder by renaming the
    old one aside first (a kill in between leaves it whole, as ``<out>.old<pid>``), then removing it."""
    if not os.path.isdir(partial) or not os.path.exists(out):
        if os.path.isdir(out) and not os.path.isdir(partial):
            _remove(out)
        os.replace(partial, out)
        return
    old = f"{out}.old{os.getpid()}"
    os.replace(out, old)
    os.replace(partial, out)
    _remove(old)


def artifact_size(path: str) -> int:
    """Bytes on disk (a SavedModel directory is summed)."""
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)
    return os.path.getsize(path)
