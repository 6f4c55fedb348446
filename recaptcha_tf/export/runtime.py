"""Deprecated: the runners moved to :mod:`recaptcha_tf.inference.runtimes` and ``predict_artifact`` to
:mod:`recaptcha_tf.inference.predictor` in 0.2.0; this path goes in 0.3.0."""

import warnings

from recaptcha_tf.inference.predictor import predict_artifact
from recaptcha_tf.inference.runtimes import (
    RUNNERS,
    KerasRunner,
    OnnxRunner,
    Runner,
    SavedModelRunner,
    TFLiteRunner,
    decisions,
    load_images,
    load_runner,
)

warnings.warn(
    "recaptcha_tf.export.runtime moved to recaptcha_tf.inference.runtimes; the old path goes in 0.3.0",
    FutureWarning,
    stacklevel=2,
)

__all__ = [
    "RUNNERS",
    "KerasRunner",
    "OnnxRunner",
    "Runner",
    "SavedModelRunner",
    "TFLiteRunner",
    "decisions",
    "load_images",
    "load_runner",
    "predict_artifact",
]
