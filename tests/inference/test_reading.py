"""Reading with no training (read, recaptcha_tf.read), abstention (--min-confidence), the coverage-precision
table, case-insensitive scoring of the reading, and starting a text run from a shipped reader (--weights NAME)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import train_tiny_crnn

from recaptcha_tf.evaluation.metrics import coverage_precision
from recaptcha_tf.inference.abstention import (
    abstaining_argmax,
    apply_min_confidence,
    background_index,
    text_confidence,
)


def test_coverage_precision_finds_the_lowest_threshold_that_is_right_99_percent_of_the_time():
    correct = [True] * 90 + [False] * 10
    confidence = list(np.linspace(0.5, 1.0, 90)) + list(np.linspace(0.1, 0.6, 10))
    table = coverage_precision(correct, confidence)
    assert table["rows"][0] == {"threshold": 0.0, "coverage": 1.0, "precision": 0.9, "accepted": 100}
    threshold = table["threshold_for_target"]
    accepted = np.asarray(confidence) >= threshold
    assert np.asarray(correct)[accepted].mean() >= 0.99
    assert not (np.asarray(confidence) >= threshold - 1e-3)[~np.asarray(correct)].all()  # lower would let more in
    assert table["coverage_at_target"] == pytest.approx(accepted.mean())
    assert coverage_precision([False, False], [0.9, 0.8])["threshold_for_target"] is None


def test_min_confidence_marks_text_and_sends_unsure_tiles_to_other():
    text = [{"text": "ab", "confidence": [0.9, 0.5]}, {"text": "cd", "confidence": [0.99, 0.99]}]
    apply_min_confidence(text, 0.6, "abcd")
    assert [r["accepted"] for r in text] == [False, True] and text[0]["text_confidence"] == pytest.approx(0.45)
    assert text_confidence([]) == 0.0
    names = ["car", "bus", "other"]
    tiles = [
        {"label": "car", "confidence": 0.55, "top_k": [("car", 0.55), ("other", 0.3), ("bus", 0.15)]},
        {"label": "other", "confidence": 0.5, "top_k": [("other", 0.5), ("bus", 0.45), ("car", 0.05)]},
        {"label": "bus", "confidence": 0.9, "top_k": [("bus", 0.9), ("car", 0.05), ("other", 0.05)]},
    ]
    apply_min_confidence(tiles, 0.6, names)
    assert [r["label"] for r in tiles] == ["other", "other", "bus"]
    assert [r["abstained"] for r in tiles] == [True, True, False]
    assert [r["confidence"] for r in tiles] == [0.3, 0.5, 0.9]  # an abstained tile reports the background's
    tiles = [{"label": "other", "confidence": 0.5, "top_k": [("other", 0.5), ("bus", 0.45), ("car", 0.05)]}]
    apply_min_confidence(tiles, 0.4, names)  # the best object class clears the threshold: it is the answer
    assert tiles[0]["label"] == "bus" and tiles[0]["confidence"] == pytest.approx(0.45)


def test_one_abstention_rule_for_predictions_reports_and_challenges():
    from recaptcha_tf.evaluation.calibration import abstain
    from recaptcha_tf.evaluation.challenge import pick_cells

    assert background_index(["car", "Other"]) == 1 and background_index(["a", "None"]) == 1
    assert background_index(["car", "bus"]) is None
    probs = np.array([[0.55, 0.15, 0.30], [0.05, 0.45, 0.50], [0.05, 0.90, 0.05]])  # car, bus, other
    np.testing.assert_array_equal(abstaining_argmax(probs, 2, 0.6), [2, 2, 1])
    np.testing.assert_array_equal(abstaining_argmax(probs, 2, 0.4), [0, 1, 1])  # bus clears 0.4 over other
    np.testing.assert_array_equal(abstaining_argmax(probs, 2, None), [0, 2, 1])
    np.testing.assert_array_equal(abstaining_argmax(probs[:, :2], None, 0.6), [-1, -1, 1])
    names = ["car", "bus", "other"]
    np.testing.assert_array_equal(abstain(probs, names, 0.6), abstaining_argmax(probs, 2, 0.6))
    assert pick_cells(probs, 1, min_confidence=0.6, background=2) == [2]
    assert pick_cells(probs, 1, min_confidence=0.4, background=2) == [1, 2]
    rows = [{"label": names[int(np.argmax(p))], "top_k": sorted(zip(names, p), key=lambda t: -t[1])} for p in probs]
    apply_min_confidence(rows, 0.6, names)
    assert [r["label"] for r in rows] == [names[i] for i in abstaining_argmax(probs, 2, 0.6)]


@pytest.fixture(scope="module")
def shipped_reader(tmp_path_factory):
    """A tiny trained CRNN over 'abc', shipped as 'universal' in a temporary pretrained folder."""
    from recaptcha_tf.utils.shipped import write_manifest_entry

    root = tmp_path_factory.mktemp("reader")
    run, data = train_tiny_crnn(root, count=48)
    pretrained = root / "pretrained"
    (pretrained / "universal").mkdir(parents=True)
    shutil.copy(os.path.join(run, "model.keras"), pretrained / "universal" / "model.keras")
    (pretrained / "universal" / "MODEL_CARD.md").write_text("# tiny\n")
    write_manifest_entry("universal", pretrained / "universal" / "model.keras", task="text", folder=pretrained)
    return pretrained, data


@pytest.mark.slow
def test_read_prints_text_and_confidence_per_image_and_python_agrees(shipped_reader, monkeypatch):
    pretrained, data = shipped_reader
    images = sorted(os.path.join(data, f) for f in os.listdir(data))[:3]
    env = {**os.environ, "RECAPTCHA_TF_PRETRAINED_DIR": str(pretrained), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-m", "recaptcha_tf", "read", *images, "--json"], capture_output=True, text=True, env=env,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["image"] for r in rows] == images
    assert all(set(r["text"]) <= set("abc") and 0 <= r["text_confidence"] <= 1 for r in rows)
    monkeypatch.setenv("RECAPTCHA_TF_PRETRAINED_DIR", str(pretrained))
    import recaptcha_tf

    python = recaptcha_tf.read(images, min_confidence=1.01 - 1e-9)
    assert [r["text"] for r in python] == [r["text"] for r in rows]
    assert not any(r["accepted"] for r in python)  # nothing is that sure
    refused = subprocess.run(
        [sys.executable, "-m", "recaptcha_tf", "read", images[0], "--model", "nosuchreader"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert refused.returncode == 2 and refused.stderr.strip().startswith("error:")
    assert len(refused.stderr.strip().splitlines()) == 1 and "universal" in refused.stderr


@pytest.mark.slow
def test_evaluate_case_lower_folds_the_reading_too(shipped_reader, tmp_path):
    from recaptcha_tf.evaluation.workflow import evaluate
    from recaptcha_tf.utils.shipped import resolve_shipped

    pretrained, data = shipped_reader
    upper = tmp_path / "upper"
    upper.mkdir()
    for name in sorted(os.listdir(data))[:12]:
        shutil.copy(os.path.join(data, name), upper / name.upper().replace(".PNG", ".png"))
    model = str(resolve_shipped("universal", pretrained))
    kept = evaluate(model, str(upper), subset="all", case="keep")
    folded = evaluate(model, str(upper), subset="all", case="lower")
    assert kept["exact_match"] == 0.0  # upper-case truth, lower-case readings
    assert folded["n"] == 12 and folded["case"] == "lower"
    lower = evaluate(model, data, subset="all", case="keep")
    names = sorted(os.listdir(data))[:12]
    assert folded["exact_match"] <= 1.0 and "abstention" in folded
    assert lower["abstention"]["rows"][0]["coverage"] == 1.0
    assert len(names) == 12


def test_a_new_charset_starts_from_the_trained_reader_row_by_row(tmp_path):
    import keras

    from recaptcha_tf.models import build_text_model, network_of
    from recaptcha_tf.models.text_transfer import transfer_text_weights

    kwargs = dict(channels=3, resize="stretch", max_length=4, colour="ink", rnn_units=8, filters=[4, 4, 8, 8])
    source = build_text_model("crnn", "abc0", (32, 64), **kwargs)
    for w in source.weights:
        w.assign(np.random.default_rng(0).normal(size=w.shape).astype("float32"))
    path = str(tmp_path / "source.keras")
    source.save(path)
    target = build_text_model("crnn", "0AbZ", (32, 64), **kwargs)
    done = transfer_text_weights(target, path, "0AbZ")
    ours, theirs = network_of(target), network_of(keras.saving.load_model(path, safe_mode=True, compile=False))
    for name in ("bilstm1", "bilstm2"):
        assert name in done["layers"]
        for a, b in zip(ours.get_layer(name).get_weights(), theirs.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    kernel, _ = theirs.get_layer("logits").get_weights()
    new, _ = ours.get_layer("logits").get_weights()
    for j, i in ((0, 0), (1, 4), (2, 1), (3, 2)):  # blank, '0', 'A' from 'a', 'b'
        np.testing.assert_array_equal(new[:, j], kernel[:, i])
    assert done["output_rows"] == 4 and done["output_rows_new"] == 1  # 'Z': no 'z' or 'Z' in the source

    # upper-case labels and a vocabulary with both cases: only 'B' starts from the reader's 'b', or the two rows
    # would tie and every B would be read as b
    both = build_text_model("crnn", "abAB", (32, 64), **kwargs)
    fresh = network_of(both).get_layer("logits").get_weights()[0].copy()
    done = transfer_text_weights(both, path, "abAB", used="AB1")
    new, _ = network_of(both).get_layer("logits").get_weights()
    for j, i in ((3, 1), (4, 2)):  # 'A' from 'a', 'B' from 'b'
        np.testing.assert_array_equal(new[:, j], kernel[:, i])
    for j in (1, 2):  # 'a', 'b': unused by the labels, their other case is used: as initialised
        np.testing.assert_array_equal(new[:, j], fresh[:, j])
    assert done["output_rows_new"] == 2


@pytest.mark.slow
def test_train_text_weights_takes_a_shipped_reader_and_its_input(shipped_reader, tmp_path, monkeypatch, caplog):
    from recaptcha_tf.data.generator import generate_captchas
    from recaptcha_tf.training.text import train_text

    pretrained, _ = shipped_reader
    monkeypatch.setenv("RECAPTCHA_TF_PRETRAINED_DIR", str(pretrained))
    data = str(tmp_path / "set")
    generate_captchas(data, count=30, length=(3, 3), charset="ab", size=(96, 32), seed=5)
    out = str(tmp_path / "run")
    tiny = {"rnn_units": 8, "filters": [4, 4, 8, 8]}  # the shipped reader's architecture
    with caplog.at_level("INFO", logger="recaptcha_tf"):
        summary = train_text(
            data, out, weights="universal", charset="ab", epochs=1, batch_size=8, logdir=None, model_kwargs=tiny
        )
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["weights"].endswith(os.path.join("universal", "model.keras"))
    assert summary["image_size"] == [32, 64]  # the reader's own input, not a fitted one
    assert config["characters"] == "ab"
    started = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Started from")]
    assert started and "bilstm1" in started[0] and "3 of 3 output rows" in started[0]
    start = json.load(open(os.path.join(out, "starting_point.json")))  # the reader was the first candidate
    assert start["monitor"] == "val_cer_then_loss" and 0 <= start["val_cer"] <= start["value"]
    assert start["value"] == pytest.approx(start["val_cer"] + 1e-7 * min(start["val_loss"], 10.0))  # its own loss
    assert any(r.getMessage().startswith("the starting weights read") for r in caplog.records)


def test_abstention_does_not_depend_on_top_k(tmp_path):
    """``predict --top-k 1``: the best object class is decided on two or more classes, then the list is cut, so the
    answer is the one every other top-k (and the report's ``abstaining_argmax``) gives."""
    from recaptcha_tf.inference.abstention import abstention_top_k

    names = ["bus", "cat", "other"]
    probs = np.array([[0.05, 0.40, 0.55], [0.10, 0.15, 0.75], [0.70, 0.20, 0.10]])
    expected = [names[i] for i in abstaining_argmax(probs, 2, 0.25)]
    assert expected == ["cat", "other", "bus"]
    for top_k in (1, 2, 3):
        k = abstention_top_k(top_k, 0.25)
        rows = [
            {"label": names[int(np.argmax(p))], "confidence": float(p.max()),
             "top_k": sorted(zip(names, p), key=lambda t: -t[1])[:k]}
            for p in probs
        ]  # fmt: skip
        apply_min_confidence(rows, 0.25, names, top_k)
        assert [r["label"] for r in rows] == expected
        assert all(len(r["top_k"]) == top_k for r in rows)
    assert abstention_top_k(1, None) == 1 and abstention_top_k(5, 0.3) == 5


def test_beam_readings_get_confidences_whose_product_is_the_beam_probability():
    """Where beam search reads other text than the greedy path, the greedy path's confidences belong to other
    characters: each character gets ``p ** (1 / n)`` of the beam's probability ``p``."""
    from recaptcha_tf.inference.decoding import ctc_beam_search_decode, ctc_greedy_decode, decode_text_outputs, softmax

    probs = np.array([[[0.5, 0.45, 0.05], [0.5, 0.45, 0.05], [0.4, 0.05, 0.55], [0.4, 0.05, 0.55]]])
    logits = np.log(probs)  # characters "ab", the last column the CTC blank
    ((greedy_text, _),) = ctc_greedy_decode(softmax(logits), "ab")
    ((beam_text, p),) = ctc_beam_search_decode(logits, "ab", beam_width=8)
    assert greedy_text != beam_text  # the case that mattered
    ((text, confidences),) = decode_text_outputs(logits, "ab", "ctc", beam_width=8)
    assert text == beam_text and len(confidences) == len(text)
    assert text_confidence(confidences) == pytest.approx(p, rel=1e-6)
    ((text, confidences),) = decode_text_outputs(logits, "ab", "ctc", beam_width=0)
    assert text == greedy_text


def test_text_confidence_is_the_unrounded_product_so_report_thresholds_reproduce():
    """A threshold the evaluation report chose is some image's unrounded confidence: the same image must pass it in
    ``read``/``predict`` (the product was taken over confidences rounded to 4 decimals)."""
    from recaptcha_tf.inference.outputs import output_kind

    rng = np.random.default_rng(1)
    logits = rng.normal(size=(3, 12, 4)) * 3
    format_text = output_kind("ctc").format
    results = format_text(logits, "abc", 0.5)
    from recaptcha_tf.inference.decoding import decode_text_outputs

    for r, (text, confidences) in zip(results, decode_text_outputs(logits, "abc", "ctc")):
        exact = float(np.prod(confidences)) if confidences else 0.0
        assert r["text"] == text and r["text_confidence"] == exact
        apply_min_confidence([r], exact, "abc")
        assert r["accepted"]  # at its own threshold


@pytest.mark.slow
def test_a_text_run_is_scored_in_the_case_it_was_trained_in(tmp_path):
    """A run trained with ``--case lower`` on mixed-case labels: its own test report and ``evaluate`` without
    ``--case`` both fold the labels (and readings) to lower case; ``--case keep`` asked for is kept."""
    from recaptcha_tf.data.generator import generate_captchas
    from recaptcha_tf.evaluation.workflow import evaluate, trained_case
    from recaptcha_tf.training.text import train_text

    data = str(tmp_path / "captchas")
    generate_captchas(data, count=24, length=(3, 3), charset="aB", size=(96, 32), seed=0)
    run = str(tmp_path / "run")
    train_text(
        data, run, model="crnn", charset="ab", case="lower", image_size=(32, 64), epochs=1, batch_size=8,
        logdir=None, model_kwargs={"rnn_units": 8, "filters": [4, 4, 8, 8]},
    )  # fmt: skip
    assert trained_case(run) == "lower" and trained_case(str(tmp_path / "nothing")) == "keep"
    with open(os.path.join(run, "test_report.json")) as f:
        own = json.load(f)
    assert own["case"] == "lower"
    again = evaluate(run, data)
    assert again["case"] == "lower" and again["exact_match"] == own["exact_match"] and again["n"] == own["n"]
    assert evaluate(run, data, case="keep")["case"] == "keep"


@pytest.mark.slow
def test_read_loads_a_run_again_once_it_is_trained_again(shipped_reader, tmp_path):
    """``read(model=RUN)`` keeps one loaded reader per model file and modification time, not per name: after the
    run folder's ``model.keras`` is written again, the next call reads with the new file."""
    import recaptcha_tf
    from recaptcha_tf import api

    pretrained, data = shipped_reader
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(pretrained / "universal" / "model.keras", run / "model.keras")
    image = sorted(os.path.join(data, f) for f in os.listdir(data))[0]
    first = recaptcha_tf.read(image, model=str(run))
    assert recaptcha_tf.read(image, model=str(run)) == first
    loaded = len(api._readers)
    later = os.path.getmtime(run / "model.keras") + 60
    os.utime(run / "model.keras", (later, later))  # as a run trained again into the same folder leaves it
    assert recaptcha_tf.read(image, model=str(run))["text"] == first["text"]
    assert len(api._readers) == loaded + 1
