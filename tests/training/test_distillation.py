"""Knowledge distillation (train --teacher), temperature calibration, and abstention on 'other' (tiny data)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import make_class_folders

from recaptcha_tf.evaluation.calibration import (
    abstain,
    background_false_positive_rate,
    choose_min_confidence,
    fit_temperature,
    reliability,
    rescale,
)
from recaptcha_tf.evaluation.challenge import challenge_report, choose_challenge_threshold, pick_cells

TINY = dict(
    image_size=(24, 24), logdir=None, balance_per_class=0, model_kwargs=dict(conv_layers=1, filters=4, dense_units=8)
)


def test_the_distillation_loss_mixes_hard_labels_and_softened_teachers():
    import keras

    from recaptcha_tf.training.distillation import DistillationLoss, packed_targets

    one_hot = np.array([[1.0, 0.0, 0.0]], "float32")
    teacher = np.array([[0.6, 0.3, 0.1]], "float32")
    y_true = packed_targets(one_hot, teacher)
    student = np.array([[0.6, 0.3, 0.1]], "float32")
    hard = float(keras.losses.categorical_crossentropy(one_hot, student)[0])
    assert float(DistillationLoss(3, alpha=1.0)(y_true, student)) == pytest.approx(hard, rel=1e-5)
    assert float(DistillationLoss(3, alpha=0.0)(y_true, student)) == pytest.approx(0.0, abs=1e-6)  # matches teacher
    other = np.array([[0.1, 0.1, 0.8]], "float32")
    assert float(DistillationLoss(3, alpha=0.0)(y_true, other)) > 0.1
    restored = DistillationLoss.from_config(DistillationLoss(3, 0.2, 4.0).get_config())
    assert (restored.alpha, restored.temperature, restored.num_classes) == (0.2, 4.0, 3)


def test_temperature_scaling_calibrates_an_overconfident_model_without_moving_the_argmax():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 2000)
    logits = rng.normal(0, 1, (2000, 4))
    logits[np.arange(2000), labels] += 1.0  # right about 60% of the time ...
    probs = rescale(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 0.25)  # ... and overconfident
    temperature = fit_temperature(probs, labels)
    assert 3.0 < temperature < 5.0  # undoes the 0.25
    calibrated = rescale(probs, temperature)
    assert (calibrated.argmax(1) == probs.argmax(1)).all()
    assert reliability(calibrated, labels)["ece"] < reliability(probs, labels)["ece"] / 3


def test_abstention_answers_other_and_challenges_skip_unsure_tiles():
    names = ["bus", "car", "other"]
    probs = np.array([[0.5, 0.1, 0.4], [0.05, 0.9, 0.05], [0.1, 0.15, 0.75], [0.8, 0.1, 0.1]])
    labels = np.array([2, 1, 2, 2])
    assert abstain(probs, names, 0.6).tolist() == [2, 1, 2, 0]
    assert background_false_positive_rate(probs, labels, names) == pytest.approx(1 / 3)  # the 0.8 bus
    assert pick_cells(probs, 0) == [0, 3]
    assert pick_cells(probs, 0, min_confidence=0.6, background=2) == [3]
    choice = choose_min_confidence(probs, labels, names)
    assert choice["macro_f1"] >= choice["macro_f1_without"] and choice["min_confidence"] is not None
    assert choose_min_confidence(probs[:, :2], labels.clip(0, 1), names[:2])["min_confidence"] is None
    rng = np.random.default_rng(1)
    tiles = rng.dirichlet(np.ones(3), 60)
    tile_labels = tiles.argmax(1)
    plain = challenge_report(tiles, tile_labels, names, count=20)
    strict = challenge_report(tiles, tile_labels, names, count=20, min_confidence=0.99)
    assert plain["3x3"]["solved"] == 1.0 and strict["3x3"]["solved"] == 0.0  # nothing picked: every grid fails


def test_the_challenge_threshold_picks_targets_the_argmax_misses():
    # every bus and car tile's top class is "other" (0.6), but its own class scores 0.35 against 0.05 elsewhere:
    # arg-max picks nothing and fails every grid; a threshold between 0.05 and 0.35 solves them all
    names = ["bus", "car", "other"]
    bus, car, other = [0.35, 0.05, 0.6], [0.05, 0.35, 0.6], [0.02, 0.02, 0.96]
    probs = np.array([bus] * 20 + [car] * 20 + [other] * 20)
    labels = np.repeat([0, 1, 2], 20)
    chosen = choose_challenge_threshold(probs, labels, names, count=20, seeds=(0, 1))
    # the highest threshold whose four neighbours (0.31-0.35) solve every grid too
    assert chosen == {"challenge_threshold": 0.33, "solved": 1.0, "solved_argmax": 0.0}
    report = challenge_report(probs, labels, names, count=20, threshold=chosen["challenge_threshold"])
    assert report["3x3"]["solved"] == report["4x4"]["solved"] == 1.0
    assert choose_challenge_threshold(probs[:40, :2], labels[:40] * 0, names[:1] + ["x"])["challenge_threshold"] is None


def test_a_stored_challenge_threshold_survives_saving_and_drives_the_demo_grid():
    import keras

    from recaptcha_tf.inference.abstention import grid_rule
    from recaptcha_tf.inference.loading import ModelInfo
    from recaptcha_tf.layers import LabelNames

    layer = LabelNames(["bus", "other"], challenge_threshold=0.2)
    assert keras.layers.deserialize(keras.layers.serialize(layer)).challenge_threshold == 0.2
    assert "challenge_threshold" not in LabelNames(["bus", "other"]).get_config()  # older files' configs unchanged
    info = ModelInfo(["bus", "other"], "softmax", "tiles", (8, 8), 3, "stretch", 0.5, min_confidence=0.3)
    assert grid_rule(info)[:2] == (None, 0.3)  # arg-max, abstaining below the stored --min-confidence
    info.challenge_threshold = 0.2
    assert grid_rule(info)[:2] == (0.2, None)
    info.kind = "sigmoid"
    assert grid_rule(info)[:2] == (0.5, None)


@pytest.mark.slow
def test_a_student_learns_from_teachers_and_ships_calibrated(tmp_path):
    from recaptcha_tf.evaluation.workflow import evaluate
    from recaptcha_tf.inference.loading import load_model, model_info
    from recaptcha_tf.training.classifier import train_classifier

    data = str(tmp_path / "tiles")
    make_class_folders(data, classes=("bus", "car", "other"), per_class=12)
    teacher = str(tmp_path / "teacher")
    train_classifier(data, teacher, epochs=2, **TINY)
    student = str(tmp_path / "student")
    summary = train_classifier(data, student, epochs=1, teachers=[teacher], distill_temperature=3.0, **TINY)
    config = json.load(open(os.path.join(student, "config.json")))
    assert config["teachers"] == [os.path.abspath(teacher)] and config["distill_temperature"] == 3.0
    assert "test" in summary and summary["calibration"]["temperature"] > 0
    info = model_info(load_model(student))
    assert info.temperature == pytest.approx(summary["calibration"]["temperature"], rel=1e-3)
    report = evaluate(student, data, report=str(tmp_path / "report.json"))
    calibration = report["calibration"]
    assert calibration["temperature"] == pytest.approx(info.temperature)
    assert 0 <= calibration["ece"] <= 1 and calibration["background_false_positive_rate"] is not None
    assert os.path.isfile(tmp_path / "report_reliability.png")
    if info.min_confidence is not None:
        assert "challenge" in calibration["abstaining"]
    assert info.challenge_threshold == summary["calibration"]["challenge_threshold"]
    if info.challenge_threshold is not None:
        assert calibration["thresholded_challenge"]["3x3"]["challenges"] > 0
    other_classes = str(tmp_path / "other_classes")
    make_class_folders(other_classes, classes=("bus", "hydrant"), per_class=6)
    from recaptcha_tf.training.distillation import TeacherError

    with pytest.raises(TeacherError, match="classes"):
        train_classifier(other_classes, str(tmp_path / "bad"), epochs=1, teachers=[teacher], **TINY)
