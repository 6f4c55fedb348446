"""Exported artifacts answer only for the model they came from, and a damaged one is one error line, not a crash."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from conftest import make_class_folders, train_tiny_classifier

from recaptcha_tf.cli.main import main
from recaptcha_tf.export import export_model
from recaptcha_tf.inference.artifacts import (
    ExportError,
    check_artifact_file,
    check_source_model,
    read_sidecar,
    sidecar_path,
)
from recaptcha_tf.inference.loading import load_model
from recaptcha_tf.inference.predictor import load_inference, predict
from recaptcha_tf.utils.run_folder import RunFolder

# ------------------------------------------------------------------ sidecars and bytes (no model needed)

GOOD_META = {
    "names": ["a", "b"],
    "kind": "softmax",
    "threshold": 0.5,
    "task": "tiles",
    "image_size": [24, 24],
    "channels": 3,
    "resize": "stretch",
    "format": "onnx",
    "input": {"shape": [None, None, None, 3]},
}


def _artifact(tmp_path, data: bytes, meta) -> str:
    path = str(tmp_path / "model.onnx")
    with open(path, "wb") as f:
        f.write(data)
    with open(sidecar_path(path), "w") as f:
        f.write(meta if isinstance(meta, str) else json.dumps(meta))
    return path


def test_a_corrupt_or_incomplete_sidecar_is_an_export_error(tmp_path):
    with pytest.raises(ExportError, match="damaged"):
        read_sidecar(_artifact(tmp_path, b"x", '{"names": ["a"'))
    with pytest.raises(ExportError, match="lacks kind, format"):
        read_sidecar(_artifact(tmp_path, b"x", {k: v for k, v in GOOD_META.items() if k not in ("kind", "format")}))
    with pytest.raises(ExportError, match="damaged"):
        read_sidecar(_artifact(tmp_path, b"x", b"\xff\xfe not utf-8".decode("latin-1")))
    assert read_sidecar(_artifact(tmp_path, b"x", GOOD_META))["kind"] == "softmax"


@pytest.mark.parametrize(
    "fmt, data, message",
    [
        ("tflite", b"", "empty"),
        ("tflite", b"\x00" * 64, "no TFL3 identifier"),
        ("tflite", b"\x18\x00\x00\x00TFL3\x00\x00\x0e\x00" + b"\x07" * 40, "damaged"),
        ("onnx", b"", "empty"),
        ("onnx", b"\x08\x07\x12\x05ab", "damaged"),
    ],
)
def test_damaged_artifact_bytes_are_refused_before_a_runtime_loads_them(tmp_path, fmt, data, message):
    path = str(tmp_path / f"m.{fmt}")
    with open(path, "wb") as f:
        f.write(data)
    with pytest.raises(ExportError, match=message):
        check_artifact_file(path, fmt)


def test_a_savedmodel_folder_needs_its_graph(tmp_path):
    with pytest.raises(ExportError, match="saved_model.pb"):
        check_artifact_file(str(tmp_path), "savedmodel")


# ------------------------------------------------------------------ real exports of a tiny model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny tile run with an ONNX and a TFLite export, in its own folder."""
    run, data = train_tiny_classifier(tmp_path_factory.mktemp("artifacts"))
    model = load_model(run)
    return run, data, {fmt: export_model(run, fmt, model=model) for fmt in ("onnx", "tflite")}


def _retrain_in_place(run):
    """What `train --overwrite` does to an exported run: a different model.keras in the same folder."""
    model = load_model(run)
    for variable in model.trainable_variables:
        variable.assign(np.random.default_rng(1).normal(size=variable.shape).astype(variable.dtype))
    model.save(RunFolder(run).model)


@pytest.mark.slow
def test_an_export_answers_only_for_the_model_of_its_run_folder(exported, tmp_path):
    run, data, artifacts = exported
    image = os.path.join(data, sorted(os.listdir(data))[0])
    image = os.path.join(image, sorted(os.listdir(image))[0])
    meta = read_sidecar(artifacts["onnx"])
    assert meta["source_model"] == os.path.abspath(RunFolder(run).model) and len(meta["source_sha256"]) == 64
    before = predict(load_inference(run, "onnx"), [image])[0]["label"]

    away = tmp_path / "deployed"
    away.mkdir()
    for path in (artifacts["onnx"], sidecar_path(artifacts["onnx"])):
        shutil.copy(path, away)
    _retrain_in_place(run)
    for runtime in ("onnx", "tflite"):
        with pytest.raises(ExportError, match="trained again"):
            load_inference(run, runtime)
    assert main(["predict", "--model", run, "--runtime", "tflite", image]) == 2
    # a copy away from its run folder stands on its own and still answers for the model it came from
    assert predict(load_inference(str(away / "model.onnx"), "onnx"), [image])[0]["label"] == before
    # exporting again ties the export to the new model
    export_model(run, "onnx")
    assert predict(load_inference(run, "onnx"), [image])[0]["label"] == predict(load_model(run), [image])[0]["label"]


@pytest.mark.slow
def test_an_old_sidecar_without_a_hash_is_stale_when_the_model_is_newer(exported):
    run, _, artifacts = exported
    export_model(run, "tflite")
    meta = read_sidecar(artifacts["tflite"])
    del meta["source_sha256"]
    meta["source_model"] = os.path.abspath(run)  # sidecars before 0.2.0 named the run folder
    with open(sidecar_path(artifacts["tflite"]), "w") as f:
        json.dump(meta, f)
    check_source_model(artifacts["tflite"], meta)  # the model is older than the sidecar: fine
    later = os.path.getmtime(sidecar_path(artifacts["tflite"])) + 10
    os.utime(RunFolder(run).model, (later, later))
    with pytest.raises(ExportError, match="trained again"):
        check_source_model(artifacts["tflite"], meta)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_a_truncated_artifact_is_one_error_line_not_a_crash(exported, tmp_path, capsys, fmt):
    _, data, artifacts = exported
    folder = tmp_path / "cut"
    folder.mkdir()
    cut = str(folder / os.path.basename(artifacts[fmt]))
    with open(artifacts[fmt], "rb") as f:
        payload = f.read()
    with open(cut, "wb") as f:
        f.write(payload[: len(payload) // 2])
    shutil.copy(sidecar_path(artifacts[fmt]), sidecar_path(cut))
    make_class_folders(str(tmp_path / "img"), per_class=1)
    image = str(next((tmp_path / "img").rglob("*.png")))
    capsys.readouterr()
    assert main(["predict", "--model", cut, "--runtime", fmt, image]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "damaged" in err[0]


@pytest.mark.slow
def test_an_export_keeps_the_stored_decision_thresholds(tmp_path):
    from recaptcha_tf.models import label_names_layer

    run, _ = train_tiny_classifier(tmp_path)
    model = load_model(run)
    layer = label_names_layer(model)
    layer.min_confidence, layer.challenge_threshold, layer.temperature = 0.3, 0.12, 2.0
    model.save(RunFolder(run).model)
    artifact = export_model(run, "onnx")
    meta = read_sidecar(artifact)
    assert (meta["min_confidence"], meta["challenge_threshold"], meta["temperature"]) == (0.3, 0.12, 2.0)
    info = load_inference(artifact, "onnx").info  # so an exported tile model abstains and picks grids as its source
    assert (info.min_confidence, info.challenge_threshold, info.temperature) == (0.3, 0.12, 2.0)
    old = {k: v for k, v in meta.items() if k not in ("min_confidence", "challenge_threshold", "temperature")}
    with open(sidecar_path(artifact), "w") as f:  # a sidecar written before the thresholds were kept
        json.dump(old, f)
    info = load_inference(artifact, "onnx").info
    assert (info.min_confidence, info.challenge_threshold, info.temperature) == (None, None, 1.0)
