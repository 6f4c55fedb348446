"""Deprecated alias of :mod:`recaptcha_tf.data.text.fit` (moved in 0.2.0; this path goes in 0.3.0)."""

import importlib
import sys
import warnings

warnings.warn(
    "recaptcha_tf.data.text_fit moved to recaptcha_tf.data.text.fit; the old path goes in 0.3.0",
    FutureWarning,
    stacklevel=2,
)
sys.modules[__name__] = importlib.import_module("recaptcha_tf.data.text.fit")
