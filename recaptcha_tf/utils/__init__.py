"""Utilities below every other layer: the run folder's file names and atomic file writes (no TensorFlow)."""

from recaptcha_tf.utils.run_folder import RunFolder, write_json

__all__ = ["RunFolder", "write_json"]
