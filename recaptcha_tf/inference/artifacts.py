"""Exported artifacts as the predictor sees them: formats, sidecars, and the float32 inference copy of a model."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings

from recaptcha_tf.utils.hashing import sha256_of
from recaptcha_tf.utils.run_folder import RunFolder

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


def parity_path(artifact: str) -> str:
    """Where ``export`` writes the artifact's parity report (``<artifact>.parity.json``)."""
    return artifact.rstrip("/" + os.sep) + ".parity.json"


def _info_dict(info) -> dict:
    return {
        "names": list(info.names),
        "kind": info.kind,
        "threshold": float(info.threshold),
        "task": info.task,
        "image_size": [int(s) for s in info.image_size],
        "channels": int(info.channels),
        "resize": info.resize,
        # the stored decision thresholds (None when the model stores none): abstention and grid challenges
        "min_confidence": getattr(info, "min_confidence", None),
        "challenge_threshold": getattr(info, "challenge_threshold", None),
        # the calibration temperature the exported graph already applies (a record: never applied again)
        "temperature": float(getattr(info, "temperature", 1.0)),
    }


# What a sidecar must hold for an artifact to be fed and decoded without Keras.
SIDECAR_KEYS = ("names", "kind", "threshold", "task", "image_size", "channels", "resize", "format", "input")


def read_sidecar(artifact: str) -> dict:
    """The sidecar of ``artifact``; :class:`ExportError` when it is not JSON or lacks a key a runner needs."""
    path = sidecar_path(artifact)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No sidecar {path!r} next to {artifact!r}: export it with `recaptcha-tf export`.")
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ExportError(f"The sidecar {path} is damaged ({err}); export the model again.") from err
    missing = [key for key in SIDECAR_KEYS if key not in meta] if isinstance(meta, dict) else list(SIDECAR_KEYS)
    if missing:
        raise ExportError(f"The sidecar {path} lacks {', '.join(missing)}; export the model again.")
    return meta


def check_source_model(artifact: str, meta: dict) -> None:
    """Refuse an export that no longer matches the model of the run folder it sits in.

    ``RUN/export/model.onnx`` answers for ``RUN/model.keras``: when that file has changed since the export (a run
    trained again with ``--overwrite``), the export would answer for the old model, so this raises
    :class:`ExportError` that says to export again. The sidecar's ``source_sha256`` is compared with the file's
    hash; a sidecar written before it was recorded is stale when the model is newer than the sidecar. An artifact
    away from its run folder (copied elsewhere, or its run gone) stands on its own and is not checked.
    """
    source = meta.get("source_model")
    if source and os.path.isdir(source):  # sidecars before 0.2.0 may name the run folder
        source = RunFolder(source).model
    if not source or not os.path.isfile(source):
        return
    run = os.path.dirname(os.path.abspath(source))
    if os.path.commonpath([run, os.path.abspath(artifact)]) != run:
        return
    recorded = meta.get("source_sha256")
    stale = (
        sha256_of(source) != recorded
        if recorded
        else os.path.getmtime(source) > os.path.getmtime(sidecar_path(artifact))
    )
    if stale:
        raise ExportError(
            f"{artifact} was exported from an earlier {source}: the run has been trained again since. Export it "
            f"again: recaptcha-tf export --model {run} --format {meta.get('format', '...')}"
        )


def check_artifact_file(artifact: str, format: str) -> None:
    """Check an artifact's bytes before a native runtime loads it: a damaged file is an :class:`ExportError`,
    never a crash inside TFLite or ONNX Runtime.

    * ``tflite``: not empty, the ``TFL3`` file identifier, and a full parse of the flat buffer in Python;
    * ``onnx``: a full parse of the protobuf with ``onnx.load``;
    * ``savedmodel``: a folder holding ``saved_model.pb``.
    """
    if format == "savedmodel":
        if not os.path.isfile(os.path.join(artifact, "saved_model.pb")):
            raise ExportError(f"{artifact} is not a SavedModel folder (no saved_model.pb); export the model again.")
        return
    if not os.path.isfile(artifact) or os.path.getsize(artifact) == 0:
        raise ExportError(f"{artifact} is empty or not a file; export the model again.")
    if format == "tflite":
        with open(artifact, "rb") as f:
            data = bytearray(f.read())
        if data[4:8] != b"TFL3":
            raise ExportError(f"{artifact} is not a TFLite flat buffer (no TFL3 identifier); export the model again.")
        from tensorflow.lite.tools import flatbuffer_utils

        try:
            flatbuffer_utils.read_model_from_bytearray(data)
        except Exception as err:
            raise ExportError(
                f"{artifact} is damaged (truncated or altered: {type(err).__name__}); export the model again."
            ) from err
    elif format == "onnx":
        import onnx

        try:
            onnx.load(artifact, load_external_data=False)
        except Exception as err:
            raise ExportError(
                f"{artifact} is damaged (truncated or altered: {type(err).__name__}); export the model again."
            ) from err


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
