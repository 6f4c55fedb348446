"""``benchmarks/tile_other_bias.py``: a bias on the `other` logit after calibration, scored on both splits, and the
biases picked on the validation split alone; end to end on a tiny classifier."""

import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))


def test_the_bias_moves_mass_to_other_and_keeps_the_other_classes_ratios():
    from tile_other_bias import shift_towards

    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    same = shift_towards(probs, 2, 0.0)
    np.testing.assert_allclose(same, probs, rtol=1e-6)
    shifted = shift_towards(probs, 2, 1.0)
    np.testing.assert_allclose(shifted.sum(axis=1), 1.0, rtol=1e-6)
    assert (shifted[:, 2] > probs[:, 2]).all()
    np.testing.assert_allclose(shifted[:, 0] / shifted[:, 1], probs[:, 0] / probs[:, 1], rtol=1e-6)
    np.testing.assert_allclose(shifted[0, 2] / shifted[0, 0], np.e * probs[0, 2] / probs[0, 0], rtol=1e-5)


def test_the_sweep_lowers_the_background_rate_and_picks_on_validation_only():
    from tile_other_bias import picked, sweep

    names = ["car", "bus", "other"]
    rng = np.random.default_rng(0)
    labels = np.array([0, 1, 2] * 40)
    logits = rng.normal(size=(120, 3))
    logits[np.arange(120), labels] += 1.5
    logits[labels == 2, 0] += 2.5  # background tiles confidently read as cars
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    temperature, rows = sweep((probs, labels), (probs[::-1], labels[::-1]), names, [0.0, 1.0, 2.0, 4.0])
    assert temperature > 0
    rates = [r["background_fpr"] for r in rows]
    assert rates[0] > 0.05 and rates == sorted(rates, reverse=True) and rates[-1] < rates[0]
    choice = picked(rows)
    best = max(rows, key=lambda r: r["val_macro_f1"])["val_macro_f1"]
    assert [r["val_macro_f1"] for r in rows if r["bias"] == choice["best_val_macro_f1"]] == [best]
    low = choice["val_background_fpr_at_most_5pct"]
    assert low is None or min(r["bias"] for r in rows if r["val_background_fpr"] <= 0.05) == low
    assert picked([{**r, "val_background_fpr": 0.5} for r in rows])["val_background_fpr_at_most_5pct"] is None


@pytest.mark.slow
def test_the_benchmark_writes_every_bias_for_both_views_of_a_tiny_classifier(tmp_path):
    from conftest import make_class_folders

    from recaptcha_tf.training.classifier import train_classifier

    data = str(tmp_path / "tiles")
    make_class_folders(data, per_class=10, classes=("car", "bus", "other"))
    out = str(tmp_path / "run")
    train_classifier(data, out, image_size=(24, 24), epochs=1, logdir=None,
                     model_kwargs=dict(conv_layers=1, filters=4, dense_units=8))  # fmt: skip
    import tile_other_bias

    results = tmp_path / "results"
    argv = ["--model", os.path.join(out, "model.keras"), "--data", data, "--split", os.path.join(out, "split.json"),
            "--biases", "0,1", "--results", str(results)]  # fmt: skip
    assert tile_other_bias.main(argv) == 0
    payload = json.load(open(results / "tile_other_bias.json"))
    assert [(r["tta"], r["bias"]) for r in payload["rows"]] == [
        ("none", 0.0),
        ("none", 1.0),
        ("flip", 0.0),
        ("flip", 1.0),
    ]
    split = json.load(open(os.path.join(out, "split.json")))
    assert payload["test_tiles"] == len(split["test"]) and payload["val_tiles"] == len(split["val"])
    assert all(0 <= r["top1"] <= 1 and 0 <= r["background_fpr"] <= 1 for r in payload["rows"])
    assert set(payload["picked_on_validation"]) == {"none", "flip"}
