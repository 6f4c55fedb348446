"""Test-time flip averaging and run ensembles in evaluate / predict."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import train_tiny_classifier

pytestmark = pytest.mark.slow  # trains, converts, or starts servers, notebooks or processes


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return train_tiny_classifier(tmp_path_factory.mktemp("tta"))


def test_flip_tta_averages_each_tile_with_its_mirror_image(tiny_run):
    from recaptcha_tf.inference.loading import load_model
    from recaptcha_tf.inference.predictor import inference_for

    run, data = tiny_run
    inference = inference_for(load_model(run))
    paths = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(data) for f in fs)[:5]
    images = np.stack([inference.preprocess(p) for p in paths])
    expected = (inference.run(images) + inference.run(images[:, :, ::-1].copy())) / 2
    plain = inference.outputs(paths)
    flipped = inference.outputs(paths, tta="flip")
    np.testing.assert_allclose(flipped, expected, atol=1e-6)
    np.testing.assert_allclose(flipped.sum(1), 1.0, atol=1e-5)
    assert not np.allclose(flipped, plain)  # the mirror images are other inputs


def test_evaluate_with_tta_and_an_ensemble(tiny_run, tmp_path):
    from recaptcha_tf.evaluation.workflow import evaluate

    run, data = tiny_run
    single = evaluate(run, data, subset="all", challenges=0)
    twice = evaluate(run, data, subset="all", challenges=0, ensemble=[run])
    assert twice["top1"] == single["top1"] and twice["ensemble"] == [os.path.abspath(run)]
    calibration = twice["calibration"]  # averaged probabilities: no temperature to undo, no stored thresholds
    assert calibration["temperature"] == 1.0 and calibration["ece_uncalibrated"] == calibration["ece"]
    assert calibration["min_confidence"] is None and "abstaining" not in calibration
    tta = evaluate(run, data, subset="all", challenges=0, tta="flip")
    assert tta["tta"] == "flip" and 0.0 <= tta["top1"] <= 1.0


def test_tta_is_refused_for_chars_and_ensembles_need_the_same_classes(tiny_run, tmp_path):
    from recaptcha_tf.data.folders import DatasetError
    from recaptcha_tf.evaluation.workflow import evaluate
    from recaptcha_tf.inference.loading import load_model, model_info
    from recaptcha_tf.inference.predictor import check_tta

    run, data = tiny_run
    info = model_info(load_model(run))
    with pytest.raises(ValueError, match="tile models"):
        check_tta("flip", info.__class__(**{**info.__dict__, "task": "chars"}))
    other_data = str(tmp_path / "two")
    shutil.copytree(data, other_data)
    shutil.rmtree(os.path.join(other_data, sorted(os.listdir(other_data))[0]))
    other_run, _ = train_tiny_classifier(tmp_path / "other")
    # the other run has the same three classes, so it is accepted; a model with other classes is not
    assert evaluate(run, data, subset="all", challenges=0, ensemble=[other_run])["n"] > 0
    from recaptcha_tf.training.classifier import train_classifier

    narrow = str(tmp_path / "narrow")
    train_classifier(
        other_data,
        narrow,
        image_size=(24, 24),
        epochs=1,
        logdir=None,
        balance_per_class=0,
        model_kwargs=dict(conv_layers=1, filters=4, dense_units=8),
    )
    with pytest.raises(DatasetError, match="differ"):
        evaluate(run, data, subset="all", challenges=0, ensemble=[narrow])


def test_cli_predict_with_tta(tiny_run):
    run, data = tiny_run
    image = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(data) for f in fs)[0]
    done = subprocess.run(
        [sys.executable, "-m", "recaptcha_tf", "predict", "--model", run, "--tta", "flip", image, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert '"label"' in done.stdout
