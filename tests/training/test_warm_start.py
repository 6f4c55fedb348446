"""Fine-tuning from a trained (shipped) classifier: `train --task tiles --weights tiles`, new classes allowed."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from conftest import make_class_folders

pytestmark = pytest.mark.slow  # trains tiny runs

TINY = dict(logdir=None, balance_per_class=0, model_kwargs=dict(conv_layers=1, filters=4, dense_units=8))


@pytest.fixture(scope="module")
def shipped_tiles(tmp_path_factory):
    """A tiny tile classifier of bus, car and other at 24x24, shipped as 'tiles' in a temporary folder."""
    from recaptcha_tf.training.classifier import train_classifier
    from recaptcha_tf.utils.shipped import write_manifest_entry

    root = tmp_path_factory.mktemp("tiles")
    data = str(root / "data")
    make_class_folders(data, classes=("bus", "car", "other"), per_class=10)
    train_classifier(data, str(root / "run"), image_size=(24, 24), epochs=2, **TINY)
    pretrained = root / "pretrained"
    (pretrained / "tiles").mkdir(parents=True)
    shutil.copy(root / "run" / "model.keras", pretrained / "tiles" / "model.keras")
    (pretrained / "tiles" / "MODEL_CARD.md").write_text("# tiny\n")
    write_manifest_entry("tiles", pretrained / "tiles" / "model.keras", task="tiles", folder=pretrained)
    return pretrained


def test_weights_tiles_fine_tunes_the_shipped_model_with_a_new_class(shipped_tiles, tmp_path, monkeypatch, caplog):
    from recaptcha_tf.inference.loading import load_model, model_info
    from recaptcha_tf.models import network_of
    from recaptcha_tf.models.warm_start import classifier_from
    from recaptcha_tf.training.classifier import train_classifier

    monkeypatch.setenv("RECAPTCHA_TF_PRETRAINED_DIR", str(shipped_tiles))
    source = str(shipped_tiles / "tiles" / "model.keras")
    started = classifier_from(source, ["car", "hydrant", "bus"], "tiles")  # before training: columns by class
    old = network_of(load_model(source)).get_layer("predictions").get_weights()[0]
    new = network_of(started).get_layer("predictions").get_weights()[0]
    np.testing.assert_array_equal(new[:, 0], old[:, 1])  # car
    np.testing.assert_array_equal(new[:, 2], old[:, 0])  # bus
    data = str(tmp_path / "data")
    make_class_folders(data, classes=("bus", "car", "hydrant"), per_class=8, sizes=(40,))
    out = str(tmp_path / "run")
    with caplog.at_level("INFO", logger="recaptcha_tf"):
        summary = train_classifier(data, out, weights="tiles", epochs=1, **TINY)
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["weights"].endswith(os.path.join("tiles", "model.keras")) and config["freeze_epochs"] == 0
    info = model_info(load_model(out))
    assert info.names == ["bus", "car", "hydrant"] and info.image_size == (24, 24)  # the shipped model's input
    assert "2 of 3 classes keep their trained output column" in caplog.text
    assert "test" in summary
