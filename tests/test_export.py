"""Export to SavedModel / TFLite / ONNX with parity checks, on tiny models trained for one epoch."""

import json
import os

import numpy as np
import pytest
from conftest import tiny_ink_crnn, train_tiny_classifier, train_tiny_crnn

from recaptcha_tf import export as E
from recaptcha_tf.cli.main import main
from recaptcha_tf.inference.loading import load_model, model_info
from recaptcha_tf.inference.predictor import predict

pytestmark = pytest.mark.slow  # trains, converts, or starts servers, notebooks or processes

CHARS = "abc"


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    return train_tiny_classifier(tmp_path_factory.mktemp("export_cls"), sizes=(24, 31))


@pytest.fixture(scope="module")
def crnn(tmp_path_factory):
    return train_tiny_crnn(tmp_path_factory.mktemp("export_text"), count=20, charset=CHARS)


def _images(folder):
    return E.list_images(folder)


@pytest.mark.parametrize("fmt", ["savedmodel", "tflite", "onnx"])
def test_classifier_export_matches_keras(classifier, tmp_path, fmt):
    run, data = classifier
    model = load_model(run)
    artifact = E.export_model(run, fmt, out=str(tmp_path / f"m.{fmt}"), model=model)
    assert os.path.exists(artifact) and E.artifact_size(artifact) > 0
    meta = json.load(open(E.sidecar_path(artifact)))
    info = model_info(model)
    assert meta["names"] == info.names and meta["kind"] == "softmax" and meta["task"] == "tiles"
    assert meta["image_size"] == [24, 24] and meta["channels"] == 3 and meta["resize"] == info.resize
    assert meta["format"] == fmt and meta["input"]["shape"] == [None, None, None, 3]

    report = E.check_parity(run, artifact, sources=[data], limit=12, raw_limit=4, model=model)
    assert report["n"] == 12
    assert report["max_abs_diff"] <= E.FLOAT_TOLERANCE and report["max_abs_diff_raw_size"] <= E.FLOAT_TOLERANCE
    assert report["agreement"] == 1.0 and report["passed"]

    # Raw images of any size go straight into the artifact, as into the Keras model.
    raw = np.random.default_rng(0).integers(0, 256, (2, 41, 57, 3)).astype(np.float32)
    expected = model.predict(raw, verbose=0)
    got = E.load_runner(artifact)(raw)
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got, expected, atol=2e-3)  # the Keras model may compute in bfloat16
    # Predictions from the artifact alone (sidecar decoding) match Keras predict.
    files = _images(data)[:3]
    assert [r["label"] for r in E.predict_artifact(artifact, files)] == [r["label"] for r in predict(model, files)]


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_ctc_export_decodes_the_same_text(crnn, fmt, tmp_path):
    run, data = crnn
    model = load_model(run)
    artifact = E.export_model(run, fmt, out=str(tmp_path / f"text.{fmt}"), model=model)
    meta = E.read_sidecar(artifact)
    # Text models take raw RGB by default (their ink map reads any colour), so the artifacts do too.
    assert meta["kind"] == "ctc" and meta["names"] == list(CHARS) and meta["channels"] == 3
    if fmt == "tflite":
        assert meta["input"]["shape"] == [1, None, None, 3]  # RNNs need a static batch in TFLite
    report = E.check_parity(run, artifact, sources=[data], limit=8, raw_limit=2, model=model)
    assert report["text_agreement"] == 1.0 and report["disagreements"] == []
    assert report["max_abs_diff"] <= E.FLOAT_TOLERANCE and report["passed"]
    files = _images(data)[:3]
    assert [r["text"] for r in E.predict_artifact(artifact, files)] == [r["text"] for r in predict(model, files)]


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_dynamic_quantization_reports_agreement(classifier, fmt, tmp_path):
    run, data = classifier
    artifact = E.export_model(run, fmt, out=str(tmp_path / f"q.{fmt}"), quantize="dynamic")
    assert E.read_sidecar(artifact)["quantize"] == "dynamic"
    report = E.check_parity(run, artifact, sources=[data], limit=12, raw_limit=0)
    assert report["min_agreement"] == E.QUANTIZED_MIN_AGREEMENT and "tolerance" not in report
    assert report["passed"] == (report["agreement"] >= E.QUANTIZED_MIN_AGREEMENT)
    assert report["agreement"] >= 0.9 and report["max_abs_diff"] < 0.05


def test_cli_export_runs_parity_and_fails_loudly(classifier, tmp_path, capsys):
    run, data = classifier
    out = str(tmp_path / "cli.onnx")
    assert main(["export", "--model", run, "--format", "onnx", "--out", out, "--data", data]) == 0
    printed = capsys.readouterr().out
    assert "tolerance: max |diff| <= 0.0001" in printed and "PASSED" in printed
    assert json.load(open(out + ".parity.json"))["passed"] is True
    # An impossible tolerance makes the parity check fail: non-zero exit and a clear message.
    assert main(["export", "--model", run, "--format", "onnx", "--out", out, "--data", data, "--tolerance", "-1"]) == 1
    assert "does not agree with the Keras model" in capsys.readouterr().err
    assert main(["export", "--model", run, "--format", "savedmodel", "--quantize", "dynamic"]) == 2
    assert "tflite and onnx only" in capsys.readouterr().err
    # Default: parity on the run's own test split, artifact under RUN/export/.
    assert main(["export", "--model", run, "--format", "tflite"]) == 0
    assert os.path.exists(os.path.join(run, "export", "model.tflite.json"))


def test_export_help_lists_defaults(capsys):
    for command in ("export", "serve"):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0
        assert "usage: recaptcha-tf " + command in capsys.readouterr().out


def test_inference_config_makes_float32_without_rnn_dropout():
    cfg = {
        "dtype": {"class_name": "DTypePolicy", "config": {"name": "mixed_bfloat16"}},
        "layer": {"config": {"dropout": 0.25, "recurrent_dropout": 0.1, "rate": 0.3}},
        "inbound_nodes": [{"args": [], "kwargs": {"training": True, "mask": None}}],
    }
    out = E._inference_config(cfg)
    assert out["dtype"]["config"]["name"] == "float32"
    assert out["layer"]["config"] == {"dropout": 0.0, "recurrent_dropout": 0.0, "rate": 0.3}
    assert out["inbound_nodes"][0]["kwargs"] == {"mask": None}


def test_savedmodel_has_tf_serving_signatures(classifier, tmp_path):
    import tensorflow as tf

    from recaptcha_tf.inference.predictor import inference_for

    run, data = classifier
    model = load_model(run)
    artifact = E.export_model(run, "savedmodel", out=str(tmp_path / "sm"), model=model)
    loaded = tf.saved_model.load(artifact)
    default = loaded.signatures["serving_default"]
    spec = default.structured_input_signature[1]
    assert list(spec) == ["image"] and spec["image"].dtype == tf.float32
    assert spec["image"].shape.as_list() == [None, None, None, 3]
    raw = np.random.default_rng(1).integers(0, 256, (2, 37, 29, 3)).astype(np.float32)
    out = next(iter(default(image=tf.constant(raw)).values())).numpy()
    # The export is the float32 inference model (a tiny run trains in bfloat16 on CPUs with bf16 instructions).
    np.testing.assert_allclose(out, E.float32_model(model).predict(raw, verbose=0), atol=1e-4)
    # Encoded files in, as over TF Serving's REST API with {"b64": ...}: decoded and resized as in training.
    by_bytes = loaded.signatures["serving_bytes"]
    assert list(by_bytes.structured_input_signature[1]) == ["image_bytes"]
    files = _images(data)[:5]
    contents = tf.constant([open(f, "rb").read() for f in files])
    out = next(iter(by_bytes(image_bytes=contents).values())).numpy()
    np.testing.assert_allclose(out, inference_for(model).outputs(files), atol=1e-5)


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_each_runtime_gives_the_keras_top1(classifier, crnn, fmt, capsys):
    from recaptcha_tf.inference.predictor import load_inference
    from recaptcha_tf.serving.app import Predictor

    run, data = classifier
    files = _images(data)[:8]
    model = load_model(run)
    keras_results = predict(model, files)
    E.export_model(run, fmt, model=model)  # RUN/export/model.<fmt>, where --runtime looks
    inference = load_inference(run, fmt)
    assert inference.runtime == fmt and not hasattr(inference, "model")
    results = predict(inference, files)
    assert [r["label"] for r in results] == [r["label"] for r in keras_results]
    assert results[0]["confidence"] == pytest.approx(keras_results[0]["confidence"], abs=1e-4)
    served = Predictor(run, runtime=fmt, inference=inference)
    assert served.tile(files[0])[1].startswith(keras_results[0]["label"])
    served.close()
    assert main(["predict", "--model", run, "--runtime", fmt, "--json", *files[:3]]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["label"] for p in printed] == [r["label"] for r in keras_results[:3]]

    text_run, text_data = crnn
    text_files = _images(text_data)[:6]
    text_model = load_model(text_run)
    E.export_model(text_run, fmt, model=text_model)
    texts = [r["text"] for r in predict(load_inference(text_run, fmt), text_files)]
    assert texts == [r["text"] for r in predict(text_model, text_files)]


def test_missing_export_for_a_runtime_is_a_clear_error(classifier, tmp_path, capsys):
    import shutil

    run, data = classifier
    copy = shutil.copy(os.path.join(run, "model.keras"), str(tmp_path / "m.keras"))  # no export/ beside it
    assert main(["predict", "--model", copy, "--runtime", "onnx", _images(data)[0]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: No onnx export at") and f"recaptcha-tf export --model {copy} --format onnx" in err


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_per_image_text_crop_exports_with_parity(fmt, tmp_path):
    """ContentCrop (text that moves inside a large canvas) is made of ops every runtime has; the model's own
    augmentation (after the crop) leaves no trace in the exported graph."""
    from PIL import Image

    from recaptcha_tf.data.pipeline import text_augmentation

    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        pixels = np.full((120, 200, 3), 230, np.uint8)
        y, x = rng.integers(10, 80), rng.integers(10, 100)
        pixels[y : y + 25, x : x + 80] = 20
        Image.fromarray(pixels).save(data / f"ab{i}.png")
    model = tiny_ink_crnn((0.1, 0.05, 0.9, 0.95), region=(80, 128), augmentation=text_augmentation(0))
    path = str(tmp_path / "m.keras")
    model.save(path)
    artifact = E.export_model(path, fmt, out=str(tmp_path / f"m.{fmt}"))
    report = E.check_parity(path, artifact, sources=[str(data)], limit=3, raw_limit=2)
    assert report["max_abs_diff"] <= E.FLOAT_TOLERANCE and report["passed"]


@pytest.mark.parametrize("fmt", ["savedmodel", "onnx"])
def test_an_export_replaces_the_old_artifact_whole_and_never_keeps_its_parity_report(classifier, tmp_path, fmt):
    """A conversion killed midway leaves the earlier artifact and its sidecar as they were; a finished re-export
    replaces the artifact whole (no file of the old SavedModel left) and drops the old parity report."""
    import keras

    run, _ = classifier
    out = str(tmp_path / ("model_savedmodel" if fmt == "savedmodel" else "model.onnx"))
    E.export_model(run, fmt, out=out)
    sidecar = open(E.sidecar_path(out)).read()
    before = E.artifact_size(out)

    def killed(*args, **kwargs):
        target = kwargs.get("output_path") or args[0]
        os.makedirs(target, exist_ok=True) if fmt == "savedmodel" else open(target, "wb").write(b"half")
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        if fmt == "savedmodel":
            archive = type(keras.export.ExportArchive())  # the backend's class
            patch.setattr(archive, "write_out", lambda self, path, **kw: killed(path))
        else:
            import tf2onnx

            patch.setattr(tf2onnx.convert, "from_function", killed)
        with pytest.raises(KeyboardInterrupt):
            E.export_model(run, fmt, out=out)
    assert E.artifact_size(out) == before and open(E.sidecar_path(out)).read() == sidecar
    assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(out), os.path.basename(E.sidecar_path(out))])

    open(E.parity_path(out), "w").write('{"passed": true}')  # the report of the artifact about to be replaced
    if fmt == "savedmodel":
        open(os.path.join(out, "stale.txt"), "w").write("a file of the old export")
    E.export_model(run, fmt, out=out)
    assert not os.path.exists(E.parity_path(out))
    assert fmt != "savedmodel" or not os.path.exists(os.path.join(out, "stale.txt"))
    assert E.read_sidecar(out)["format"] == fmt
