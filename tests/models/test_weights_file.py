"""A weights file of another architecture is one clear error, without Keras's per-layer warnings before it."""

from __future__ import annotations

import warnings

import keras
import pytest

from recaptcha_tf.models.weights import WeightsError, _load_weights_file, load_weights_file


def _nets():
    inner = keras.Sequential([keras.Input((6, 6, 4)), keras.layers.Conv2D(6, 3)], name="inner")
    saved = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), inner])
    other = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(5, 3), keras.layers.Conv2D(6, 3)])
    return saved, other


def test_a_mismatched_weights_file_is_one_error_and_no_warnings(tmp_path):
    saved, other = _nets()
    path = str(tmp_path / "saved.weights.h5")
    saved.save_weights(path)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(WeightsError):
            _load_weights_file(other, path, "other")
    assert seen, "Keras warns per unmatched layer (what load_weights_file keeps from the user)"
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(WeightsError, match="does not fit the other backbone"):
            load_weights_file(other, path, "other")
    assert seen == []
