"""Deprecated alias of :mod:`recaptcha_tf.training.classifier` (moved in 0.2.0; this path goes in 0.3.0)."""

import importlib
import sys
import warnings

warnings.warn(
    "recaptcha_tf.train_classifier moved to recaptcha_tf.training.classifier; the old path goes in 0.3.0",
    FutureWarning,
    stacklevel=2,
)
sys.modules[__name__] = importlib.import_module("recaptcha_tf.training.classifier")
