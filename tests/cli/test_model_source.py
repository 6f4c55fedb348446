"""``--model``: one meaning per command family. evaluate/predict/export/serve take a run folder, a model file or a
shipped model's name; train/tune take an architecture of the registry, checked before TensorFlow starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from recaptcha_tf.cli.main import main
from recaptcha_tf.utils import shipped


@pytest.fixture
def pretrained(tmp_path, monkeypatch):
    from recaptcha_tf.models import build_classifier

    folder = tmp_path / "pretrained"
    model = build_classifier("cnn", ["bus", "palm"], image_size=(16, 16), conv_layers=1, filters=4, dense_units=8)
    (folder / "tiny").mkdir(parents=True)
    model.save(folder / "tiny" / "model.keras")
    (folder / "tiny" / "MODEL_CARD.md").write_text("# tiny\n")
    monkeypatch.setenv(shipped.ENV_VAR, str(folder))
    shipped.write_manifest_entry("tiny", folder / "tiny" / "model.keras", "tiles", "2", "two untrained classes")
    return folder


def _image(tmp_path):
    from PIL import Image

    path = str(tmp_path / "x.png")
    Image.new("RGB", (20, 20), "red").save(path)
    return path


def test_predict_takes_a_shipped_name(pretrained, tmp_path, capsys):
    assert main(["predict", "--model", "tiny", _image(tmp_path), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["label"] in ("bus", "palm")


def test_an_unknown_name_is_one_line_naming_the_shipped_models(pretrained, tmp_path, capsys):
    for argv in (
        ["predict", "--model", "tinny", _image(tmp_path)],
        ["evaluate", "--model", "tinny", "--data", str(tmp_path)],
        ["export", "--model", "tinny", "--format", "onnx"],
        ["serve", "--model", "tinny", "--port", "0"],
        ["evaluate", "--model", "tiny", "--data", str(tmp_path), "--ensemble", "tinny"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert "'tinny' is neither a file nor a run folder" in err and "shipped models are: tiny" in err, err


def test_export_of_a_shipped_model_writes_to_the_working_folder(pretrained, tmp_path, monkeypatch):
    from recaptcha_tf.cli.commands import export
    from recaptcha_tf.cli.main import build_parser

    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["export", "--model", "tiny", "--format", "tflite", "--quantize", "dynamic"])
    export.check(args)
    assert args.model == str(pretrained / "tiny" / "model.keras")
    assert args.out == os.path.join("export", "tiny", "model_dynamic.tflite")


def test_models_lists_the_registry_and_the_shipped_models(pretrained, capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    registry, shipped_part = out.split("shipped (")
    assert "cnn " in registry and "tiny" in shipped_part and "two untrained classes" in shipped_part
    assert main(["models", "--task", "text", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["section"] for r in rows} == {"registry"}  # tiny is a tiles model
    assert main(["models", "--task", "tiles", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (row,) = [r for r in rows if r["section"] == "shipped"]
    assert row["model"] == "tiny" and row["version"] == "2" and row["task"] == "tiles"


def test_models_says_when_none_are_shipped(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(shipped.ENV_VAR, str(tmp_path))
    assert main(["models", "--task", "chars"]) == 0
    assert "shipped (evaluate/predict/export/serve --model NAME): none yet" in capsys.readouterr().out


def test_the_name_list_is_the_registrys():
    """The pre-TensorFlow name list matches the registry's built-in models (plug-ins registered by other tests
    in this process are left out: they come from modules outside the package)."""
    from recaptcha_tf.cli.errors import BUILT_IN_MODELS
    from recaptcha_tf.models.registry import _MODELS, list_models, model_head

    built_in = {n: model_head(n) for n in list_models() if _MODELS[n].__module__.startswith("recaptcha_tf.")}
    assert built_in == BUILT_IN_MODELS


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--model", "nosuchmodel"], "Unknown model 'nosuchmodel'"),
        (["tune", "--model", "nosuchmodel", "--dry-run"], "Unknown model 'nosuchmodel'"),
        (["train", "--task", "text", "--model", "cnn"], "has a classifier head, which task 'text' does not take"),
    ],
)
def test_train_and_tune_check_the_architecture(tiles_dir, tmp_path, argv, message, capsys):
    assert main([*argv, "--data", tiles_dir, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


@pytest.mark.slow
def test_bad_model_names_fail_before_tensorflow(tiles_dir, tmp_path):
    """In a fresh process: the one-line error comes without TensorFlow ever being imported."""
    code = textwrap.dedent(
        """
        import sys
        from recaptcha_tf.cli.main import main
        status = main(sys.argv[1:])
        print(status, "tensorflow" in sys.modules, "keras" in sys.modules)
        """
    )
    env = {**os.environ, shipped.ENV_VAR: str(tmp_path)}
    for argv in (
        ["train", "--task", "tiles", "--data", tiles_dir, "--model", "nosuchmodel", "--out", str(tmp_path / "r")],
        ["predict", "--model", "nosuchmodel", tiles_dir],
    ):
        done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, timeout=120)
        assert done.stdout.split() == ["2", "False", "False"], done.stderr
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
