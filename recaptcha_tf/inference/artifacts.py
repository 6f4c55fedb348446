"""Exported artifacts as the predictor sees them: formats, sidecars, and the float32 inference copy of a model."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings

log = logging.getLogger("recaptcha_tf")

FORMATS = ("savedmodel", "tflite", "onnx")
QUANTIZE = (None, "dynamic")
EXTENSIONS = {"savedmodel": "", "tflite": ".tflite", "onnx": ".onnx"}
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

    from recaptcha_tf.models.precision import precision_policy

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


def float32_model(model):
    """``model`` when it already runs in float32, else its float32 copy (:func:`inference_model`): what the
    predictor and the exports run for a model trained in mixed precision."""
    return inference_model(model) if _uses_mixed_precision(model) else model


def _uses_mixed_precision(model) -> bool:
    import keras

    def policies(layer):
        yield layer.dtype_policy.name
        if isinstance(layer, keras.Model):
            for sub in layer.layers:
                yield from policies(sub)

    return any(name.startswith("mixed_") for name in policies(model))


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


def read_sidecar(artifact: str) -> dict:
    path = sidecar_path(artifact)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No sidecar {path!r} next to {artifact!r}: export it with `recaptcha-tf export`.")
    with open(path) as f:
        return json.load(f)


# --------------------------------------------------------------------------- export


def default_out(model_path: str, format: str, quantize: str | None = None) -> str:
    """``RUN/export/model[_dynamic].{savedmodel/,tflite,onnx}``."""
    from recaptcha_tf.inference.loading import resolve_model_path

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
