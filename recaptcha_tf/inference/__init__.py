"""Inference: load a saved model in safe mode and predict with it.

* :mod:`.loading`: ``.keras`` files in safe mode, and :class:`ModelInfo` (what a model expects and produces);
* :mod:`.predictor`: :class:`Inference`, one compiled predictor for a Keras model or an exported artifact;
* :mod:`.artifacts`: exported artifacts as the predictor sees them (sidecars, the float32 copy of a model);
* :mod:`.runtimes`: runners for SavedModel, TFLite and ONNX artifacts, without Keras;
* :mod:`.decoding`: CTC and per-position decoding of text outputs.
"""

from recaptcha_tf.data.images import CorruptImageError  # the old module exported it
from recaptcha_tf.inference.loading import (
    MODEL_FILE,
    ModelInfo,
    ModelLoadError,
    load_model,
    model_info,
    resolve_model_path,
)
from recaptcha_tf.inference.predictor import (
    RUNTIMES,
    TTA,
    Inference,
    InferenceOptionError,
    check_readable,
    check_tta,
    format_predictions,
    inference_for,
    load_inference,
    predict,
    predict_outputs,
    resolve_artifact,
    unreadable,
)

__all__ = [
    "InferenceOptionError",
    "CorruptImageError",
    "Inference",
    "MODEL_FILE",
    "ModelInfo",
    "ModelLoadError",
    "RUNTIMES",
    "TTA",
    "check_readable",
    "check_tta",
    "format_predictions",
    "inference_for",
    "load_inference",
    "load_model",
    "model_info",
    "predict",
    "predict_outputs",
    "resolve_artifact",
    "resolve_model_path",
    "unreadable",
]
