"""benchmarks/label_curve.py on tiny data: one fixed test split, nested label counts, both starts, JSON/PNG/table."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil

import pytest
from conftest import train_tiny_crnn

pytestmark = pytest.mark.slow  # trains several tiny runs

SCRIPT = os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks", "label_curve.py")
TINY = '{"rnn_units": 8, "filters": [4, 4, 8, 8]}'


def test_the_label_curve_scores_every_count_from_both_starts_on_one_test_split(tmp_path, monkeypatch):
    from recaptcha_tf.utils.shipped import write_manifest_entry

    run, data = train_tiny_crnn(tmp_path / "reader", count=40)
    pretrained = tmp_path / "pretrained"
    (pretrained / "universal").mkdir(parents=True)
    shutil.copy(os.path.join(run, "model.keras"), pretrained / "universal" / "model.keras")
    (pretrained / "universal" / "MODEL_CARD.md").write_text("# tiny\n")
    write_manifest_entry("universal", pretrained / "universal" / "model.keras", task="text", folder=pretrained)
    monkeypatch.setenv("RECAPTCHA_TF_PRETRAINED_DIR", str(pretrained))
    spec = importlib.util.spec_from_file_location("label_curve", SCRIPT)
    label_curve = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(label_curve)
    results = tmp_path / "results"
    argv = ["--data", data, "--name", "tiny", "--counts", "0,8,all", "--steps", "4", "--model-arg", TINY,
            "--work", str(tmp_path / "work"), "--results", str(results)]  # fmt: skip
    assert label_curve.main(argv) == 0
    payload = json.load(open(results / "label_curve_tiny.json"))
    rows = payload["rows"]
    assert [(r["labels"], r["start"]) for r in rows] == [
        (0, "scratch"), (0, "universal"), (8, "scratch"), (8, "universal"),
        (payload["pool_images"], "scratch"), (payload["pool_images"], "universal"),
    ]  # fmt: skip
    assert payload["test_images"] + payload["pool_images"] == 40
    assert rows[0]["exact_match"] == 0.0 and all(0 <= r["exact_match"] <= 1 for r in rows)
    assert all(r["train_seconds"] > 0 for r in rows if r["labels"])
    kept = [r["kept_at_99"] for r in rows if r["start"] == "universal" or r["labels"]]
    assert all(0 <= k <= 1 for k in kept)  # the share kept at 99% precision, from each point's test report
    assert "kept_at_99" in payload["table"]
    splits = [json.load(open(tmp_path / "work" / "tiny" / f"split-{n}.json")) for n in (8, payload["pool_images"])]
    assert splits[0]["test"] == splits[1]["test"]  # one fixed test split for every point
    small = {p for p, _ in splits[0]["train"] + splits[0]["val"]}
    assert small <= {p for p, _ in splits[1]["train"] + splits[1]["val"]}  # nested: the 8 are in "all"
    assert len(small) == 8
    assert (results / "label_curve_tiny.png").stat().st_size > 0
    assert "| labels | start |" in payload["table"]

    def no_training(*args, **kwargs):
        raise AssertionError("a finished point was trained again")

    import recaptcha_tf

    real_train = recaptcha_tf.train
    monkeypatch.setattr(recaptcha_tf, "train", no_training)
    assert label_curve.main(argv) == 0  # a second call reads every finished point back
    with pytest.raises(SystemExit, match="other settings \\(seed: 0\\)"):  # another test split: refused
        label_curve.main([*argv, "--seed", "1"])
    again = json.load(open(results / "label_curve_tiny.json"))["rows"]
    assert [(r["labels"], r["start"], r["exact_match"]) for r in again] == [
        (r["labels"], r["start"], r["exact_match"]) for r in rows
    ]

    # a new version of the shipped reader: its finished points train again, the scratch ones are read back
    import keras
    import numpy as np

    path = pretrained / "universal" / "model.keras"
    reader = keras.saving.load_model(path, safe_mode=True)
    reader.set_weights([w + np.float32(0.01) for w in reader.get_weights()])
    reader.save(path)
    write_manifest_entry("universal", path, task="text", version="2", folder=pretrained)
    trained = []
    monkeypatch.setattr(recaptcha_tf, "train", lambda **kw: trained.append(kw["out"]) or real_train(**kw))
    assert label_curve.main(argv) == 0
    assert sorted(os.path.basename(o) for o in trained) == sorted(
        ["universal-8", f"universal-{payload['pool_images']}"]
    )
    assert json.load(open(results / "label_curve_tiny.json"))["universal_version"] == "2"


def test_train_arg_reaches_every_trained_point_and_is_part_of_the_settings(tmp_path, monkeypatch):
    import recaptcha_tf
    from recaptcha_tf.data.generator import generate_captchas

    spec = importlib.util.spec_from_file_location("label_curve", SCRIPT)
    label_curve = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(label_curve)
    data = tmp_path / "data"
    generate_captchas(str(data), count=24, length=(3, 4), charset="abc", size=(96, 32), seed=0)
    work, results = tmp_path / "work", tmp_path / "results"
    argv = ["--data", str(data), "--name", "tiny", "--counts", "8", "--starts", "scratch", "--steps", "2",
            "--model-arg", TINY, "--work", str(work), "--results", str(results)]  # fmt: skip
    calls, real_train = [], recaptcha_tf.train
    monkeypatch.setattr(recaptcha_tf, "train", lambda **kw: calls.append(kw) or real_train(**kw))
    assert label_curve.main([*argv, "--train-arg", '{"patience": 0, "batch_size": 4}']) == 0
    assert [(kw["patience"], kw["batch_size"]) for kw in calls] == [(0, 4)]
    assert json.load(open(work / "tiny" / "scratch-8" / "config.json"))["batch_size"] == 4  # the run trained so
    assert json.load(open(results / "label_curve_tiny.json"))["train_arg"] == {"patience": 0, "batch_size": 4}
    with pytest.raises(SystemExit, match="other settings \\(train_arg"):  # the defaults' points are others
        label_curve.main(argv)
    with pytest.raises(SystemExit, match="may not set seed"):
        label_curve.main([*argv, "--work", str(tmp_path / "w2"), "--train-arg", '{"seed": 3}'])
