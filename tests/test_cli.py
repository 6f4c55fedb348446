import json
import os
import subprocess
import sys

import pytest
from conftest import make_class_folders
from PIL import Image

from recaptcha_tf.cli.main import build_parser, main

COMMANDS = ["balance", "train", "evaluate", "predict", "generate", "merge-parquet", "demo"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_defaults(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "usage: recaptcha-tf " + command in text
    assert "(default:" in text


def test_python_dash_m_matches_the_console_script():
    out = subprocess.run([sys.executable, "-m", "recaptcha_tf", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for command in COMMANDS:
        assert command in out.stdout
    assert build_parser().prog == "recaptcha-tf"


def test_balance_command(tmp_path, capsys):
    data = str(tmp_path / "d")
    make_class_folders(data, per_class=8, layout="kaggle")
    out = str(tmp_path / "bal")
    assert main(["balance", "--data", data, "--out", out, "--balance", "10", "--seed", "1"]) == 0
    split = json.load(open(os.path.join(out, "split.json")))
    assert len(split["train"]) == 30
    assert all(os.path.dirname(p).startswith(out) for p, _ in split["train"])
    assert not any(p.startswith(out) for p, _ in split["val"] + split["test"])
    assert "traffic_light" in capsys.readouterr().out


@pytest.mark.slow
def test_a_run_on_balanced_data_is_scored_on_its_test_split_in_the_original_folder(tmp_path, capsys):
    """``balance`` then ``train --data BALANCED``: ``evaluate --data ORIGINAL`` reads the run's test split (those
    files are in the original folder), not every image, most of which the run trained on."""
    data = str(tmp_path / "d")
    make_class_folders(data, per_class=8)
    balanced, run = str(tmp_path / "bal"), str(tmp_path / "run")
    assert main(["balance", "--data", data, "--out", balanced, "--balance", "10"]) == 0
    assert main(["train", "--data", balanced, "--out", run, "--epochs", "1", "--logdir", "", "--image-size", "16x16",
                 "--model-arg", "conv_layers=1", "--model-arg", "filters=4"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["evaluate", "--model", run, "--data", data]) == 0
    report = json.loads(capsys.readouterr().out)
    test = json.load(open(os.path.join(run, "split.json")))["test"]
    assert report["subset"] == "test" and report["n"] == len(test) < 24


def test_user_errors_are_one_line_not_tracebacks(tmp_path, capsys):
    assert main(["evaluate", "--model", str(tmp_path / "missing"), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    empty = tmp_path / "data"
    make_class_folders(str(empty), per_class=3)
    os.makedirs(empty / "stair")
    assert main(["train", "--data", str(empty), "--out", str(tmp_path / "run"), "--epochs", "1"]) == 2
    assert "Empty class folder" in capsys.readouterr().err


@pytest.mark.slow
def test_train_evaluate_predict_from_the_command_line(tmp_path, capsys):
    data = str(tmp_path / "d")
    make_class_folders(data, per_class=10)
    out = str(tmp_path / "run")
    assert (
        main(
            [
                "train",
                "--data",
                data,
                "--out",
                out,
                "--epochs",
                "1",
                "--image-size",
                "24",
                "--logdir",
                "",
                "--model-arg",
                "conv_layers=2",
                "--model-arg",
                "filters=8",
                "--model-arg",
                "dense_units=8",
            ]
        )
        == 0
    )
    capsys.readouterr()
    report = str(tmp_path / "report.json")
    assert main(["evaluate", "--model", out, "--data", data, "--report", report]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["subset"] == "test" and printed["n"] == json.load(open(report))["n"] == 6
    image = os.path.join(data, "bus", "0001.png")
    assert main(["predict", "--model", out, image, "--json"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert line["image"] == image and line["label"] in ("bus", "hydrant", "traffic_light")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    assert main(["predict", "--model", out, str(bad)]) == 2
    assert "bad.png" in capsys.readouterr().err


def test_generate_command(tmp_path, capsys):
    out = str(tmp_path / "g")
    preview = str(tmp_path / "p.png")
    assert main(["generate", "--out", out, "--count", "12", "--length", "5", "--seed", "2", "--preview", preview]) == 0
    files = os.listdir(out)
    assert len(files) == 12 and all(len(f.split(".")[0].split("-")[0]) == 5 for f in files)
    assert Image.open(preview).format == "PNG"
