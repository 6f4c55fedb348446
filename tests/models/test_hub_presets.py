"""A local keras-hub preset's image converter sets the input normalisation; a damaged one is one error line."""

from __future__ import annotations

import json
import os

import pytest

from recaptcha_tf.cli.errors import is_user_error
from recaptcha_tf.models.hub import preset_normalisation
from recaptcha_tf.models.weights import WeightsError

DEFAULT = (1.0, 0.0)


def test_the_converter_of_a_local_preset_sets_the_normalisation_and_a_non_class_is_refused(tmp_path):
    import keras_hub

    preset = str(tmp_path / "preset")
    os.makedirs(preset)
    # the files keras-hub looks for in a preset folder (the backbone itself is never built here)
    with open(os.path.join(preset, "config.json"), "w") as f:
        json.dump(
            {
                "module": "keras_hub.models",
                "class_name": "ResNetBackbone",
                "registered_name": "keras_hub>ResNetBackbone",
            },
            f,
        )
    with open(os.path.join(preset, "metadata.json"), "w") as f:
        json.dump({"keras_version": "3.15.1", "keras_hub_version": keras_hub.__version__}, f)
    assert preset_normalisation(preset, DEFAULT) == DEFAULT  # no converter saved: the model's own default
    keras_hub.layers.ImageConverter(scale=1 / 255.0, offset=-0.5).save_to_preset(preset)
    scale, offset = preset_normalisation(preset, DEFAULT)
    assert scale == pytest.approx(1 / 255.0) and offset == pytest.approx(-0.5)
    path = os.path.join(preset, "image_converter.json")
    with open(path) as f:
        converter = json.load(f)
    converter["class_name"] = "NoSuchConverter"
    converter["registered_name"] = "keras_hub>NoSuchConverter"
    with open(path, "w") as f:
        json.dump(converter, f)
    with pytest.raises(WeightsError, match="image_converter.json is not a keras-hub image converter") as raised:
        preset_normalisation(preset, DEFAULT)
    assert is_user_error(raised.value) and "\n" not in str(raised.value)
