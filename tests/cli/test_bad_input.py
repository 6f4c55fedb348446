"""Bad input through the command line: one error line each, manifests from any working directory, advice that
points at real options (on one tiny run trained with a relative --data)."""

import logging
import os

import pytest
from conftest import fake_png_bomb, logged_epochs, make_class_folders, parquet_of_labels

TINY = dict(conv_layers=1, filters=4, dense_units=8)


MODEL_ARGS = ["--model-arg", "conv_layers=1", "--model-arg", "filters=4", "--model-arg", "dense_units=8"]


TRAIN_ARGS = ["--epochs", "1", "--image-size", "24", "--logdir", "", "--balance", "0", *MODEL_ARGS]


@pytest.fixture(scope="module")
def relative_run(tmp_path_factory):
    """``recaptcha-tf train --data clean --out run`` run from ``base`` (relative paths, as in the issue)."""
    from recaptcha_tf.cli.main import main

    base = tmp_path_factory.mktemp("base")
    make_class_folders(str(base / "clean"), per_class=8)
    cwd = os.getcwd()
    os.chdir(base)
    try:
        assert main(["train", "--data", "clean", "--out", "run", *TRAIN_ARGS]) == 0
    finally:
        os.chdir(cwd)
    return str(base / "run"), str(base / "clean")


def _err(capsys):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert lines and "Traceback" not in err, err
    return lines[0]


def test_manifest_stores_an_absolute_root_and_relative_paths(relative_run):
    import json

    run, data = relative_run
    saved = json.load(open(os.path.join(run, "split.json")))
    assert saved["version"] == 2 and saved["root"] in (data, os.path.realpath(data))
    assert all(not os.path.isabs(p) and not p.startswith("clean") for p, _ in saved["train"] + saved["test"])


def test_evaluate_from_another_directory(relative_run, tmp_path, monkeypatch, capsys):
    import json

    from recaptcha_tf.cli.main import main

    run, data = relative_run
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--model", run, "--data", data, "--challenges", "0"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["subset"] == "test" and printed["n"] == 3


def test_split_of_another_run_from_another_directory(relative_run, tmp_path, monkeypatch):
    import json

    from recaptcha_tf.cli.main import main
    from recaptcha_tf.data.splits import load_manifest

    run, data = relative_run
    monkeypatch.chdir(tmp_path)
    assert (
        main(["train", "--data", data, "--out", "again", "--split", os.path.join(run, "split.json"), *TRAIN_ARGS]) == 0
    )
    assert load_manifest("again").test == load_manifest(run).test
    assert json.load(open("again/summary.json"))["test"]["n"] == 3


def test_export_parity_uses_the_split_from_another_directory(relative_run, tmp_path, monkeypatch, capsys):
    from recaptcha_tf.cli.main import main

    run, _ = relative_run
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--model", run, "--format", "tflite", "--out", "m.tflite"]) == 0
    assert "parity on 3 images" in capsys.readouterr().out


def test_version_1_manifest_with_a_relative_root_still_loads(tmp_path, monkeypatch):
    import json

    from recaptcha_tf.data.splits import load_manifest

    make_class_folders(str(tmp_path / "clean"), per_class=3)
    old = {
        "class_names": ["bus", "hydrant", "traffic_light"],
        "root": "clean",
        "seed": 0,
        "extra": {"data": str(tmp_path / "clean")},
        "train": [["clean/bus/0000.png", 0]],
        "val": [["clean/hydrant/0001.png", 1]],
        "test": [],
    }
    path = tmp_path / "split.json"
    path.write_text(json.dumps(old))
    monkeypatch.chdir("/")
    split = load_manifest(str(path))
    assert split.train == [(str(tmp_path / "clean" / "bus" / "0000.png"), 0)]
    assert all(os.path.isfile(p) for p, _ in split.train + split.val)


def test_label_csv_refuses_paths_outside_the_data_folder_unless_allowed(tmp_path):
    from recaptcha_tf.data.folders import DatasetError
    from recaptcha_tf.data.multilabel import read_label_csv

    data = tmp_path / "data"
    make_class_folders(str(data), classes=("bus",), per_class=2)
    make_class_folders(str(tmp_path / "elsewhere"), classes=("car",), per_class=1)
    for outside in ("../elsewhere/car/0000.png", str(tmp_path / "elsewhere" / "car" / "0000.png")):
        csv_path = tmp_path / "labels.csv"
        csv_path.write_text(f"path,labels\nbus/0000.png,bus\n{outside},car\n")
        with pytest.raises(DatasetError, match="points outside the data folder.*--allow-outside-data"):
            read_label_csv(str(csv_path), root=str(data), validate=False)
        paths, _, names = read_label_csv(str(csv_path), root=str(data), validate=False, allow_outside=True)
        assert len(paths) == 2 and names == ["bus", "car"]


@pytest.fixture(scope="module")
def unsafe_model(tmp_path_factory):
    """A .keras file with a Python lambda: Keras safe mode refuses to load it."""
    import keras

    path = str(tmp_path_factory.mktemp("unsafe") / "unsafe.keras")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2)])
    model.save(path)
    return path


@pytest.mark.parametrize("command", ["predict", "evaluate", "export", "serve"])
def test_a_model_that_safe_mode_refuses_is_one_line(unsafe_model, tmp_path, command, capsys):
    from recaptcha_tf.cli.main import main

    image = str(tmp_path / "x.png")
    make_class_folders(str(tmp_path / "d"), per_class=2)
    argv = {
        "predict": ["predict", "--model", unsafe_model, image],
        "evaluate": ["evaluate", "--model", unsafe_model, "--data", str(tmp_path / "d")],
        "export": ["export", "--model", unsafe_model, "--format", "tflite", "--out", str(tmp_path / "m.tflite")],
        "serve": ["serve", "--model", unsafe_model, "--port", "0"],
    }[command]
    assert main(argv) == 2
    assert "safe mode does not load" in _err(capsys)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "nosuchmodel"], "Unknown model 'nosuchmodel'"),
        (["--model-arg", "conv_layers=banana"], "conv_layers='banana' is not a valid value"),
        (["--task", "text", "--charset", "z-a"], "Reversed range z-a"),  # --charset is a text option
        (["--epochs", "0"], "--epochs: must be at least 1"),
        (["--batch-size", "0"], "--batch-size: must be at least 1"),
        (["--time-budget", "-1"], "--time-budget: must be 0 or more, got -1"),
        (["--learning-rate", "0"], "--learning-rate: must be positive, got 0"),
        (["--split", "50/60"], "adds up to 110"),
        (["--class-weight", "other=-1"], "--class-weight: takes none, balanced or NAME=WEIGHT"),
    ],
)
def test_train_argument_errors_are_one_line(tiles_dir, tmp_path, argv, message, capsys):
    from recaptcha_tf.cli.main import main

    out = str(tmp_path / "run")
    assert main(["train", "--data", tiles_dir, "--out", out, "--epochs", "1", "--logdir", "", *argv]) == 2
    assert message in _err(capsys)
    assert not os.path.exists(os.path.join(out, "split.json"))  # refused before any work


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--count", "-5"], "--count: must be at least 1"),
        (["--size", "0x0"], "too small"),
        (["--length", "9-3"], "1 <= min <= max"),
        (["--charset", "9-0"], "Reversed range"),
    ],
)
def test_generate_argument_errors_are_one_line(tmp_path, argv, message, capsys):
    from recaptcha_tf.cli.main import main

    assert main(["generate", "--out", str(tmp_path / "g"), "--count", "2", *argv]) == 2
    assert message in _err(capsys)


def test_paths_that_cannot_be_written_are_one_line(relative_run, tiles_dir, tmp_path, capsys):
    from recaptcha_tf.cli.main import main

    run, data = relative_run
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["export", "--model", run, "--format", "tflite", "--out", str(afile / "m.tflite")]) == 2
    assert "is a file, not a folder" in _err(capsys)
    assert main(["evaluate", "--model", run, "--data", data, "--report", str(afile / "r.json")]) == 2
    assert "is a file, not a folder" in _err(capsys)
    assert main(["balance", "--data", tiles_dir, "--out", tiles_dir]) == 2
    assert "overlap" in _err(capsys)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_folder_without_permission_is_one_line(relative_run, tmp_path, capsys):
    from recaptcha_tf.cli.main import main

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert (
            main(["export", "--model", relative_run[0], "--format", "tflite", "--out", str(locked / "m.tflite")]) == 2
        )
        assert "no permission" in _err(capsys)
    finally:
        locked.chmod(0o700)


def test_the_boundary_catches_expected_os_errors_but_not_bugs(monkeypatch, tmp_path, capsys):
    import importlib

    cli = importlib.import_module("recaptcha_tf.cli.main")  # the module: the package's `main` is the function

    def denied(args):
        raise PermissionError(13, "Permission denied", "/srv/models/m.tflite")

    monkeypatch.setattr(cli, "dispatch", denied)
    assert cli.main(["generate", "--out", str(tmp_path / "g"), "--count", "1"]) == 2
    assert _err(capsys) == "error: Permission denied: '/srv/models/m.tflite'"

    def bug(args):
        return {}["missing"]

    monkeypatch.setattr(cli, "dispatch", bug)
    with pytest.raises(KeyError):  # a real bug keeps its traceback
        cli.main(["generate", "--out", str(tmp_path / "g"), "--count", "1"])


def test_serve_on_a_port_in_use_is_one_line(relative_run, capsys):
    import socket

    from recaptcha_tf.cli.main import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert main(["serve", "--model", relative_run[0], "--port", str(port)]) == 2
    assert "already in use" in _err(capsys)


def test_export_with_a_truncated_parity_image_skips_it(relative_run, tmp_path, capsys, caplog):
    from recaptcha_tf.cli.main import main

    run, data = relative_run
    images = tmp_path / "parity"
    images.mkdir()
    for name in ("0000.png", "0001.png"):
        (images / name).write_bytes(open(os.path.join(data, "bus", name), "rb").read())
    full = open(os.path.join(data, "hydrant", "0000.png"), "rb").read()
    (images / "truncated.png").write_bytes(full[: len(full) // 2])
    with caplog.at_level(logging.WARNING, logger="recaptcha_tf"):
        assert (
            main(
                [
                    "export",
                    "--model",
                    run,
                    "--format",
                    "tflite",
                    "--out",
                    str(tmp_path / "m.tflite"),
                    "--data",
                    str(images),
                ]
            )
            == 0
        )
    assert "parity on 2 images" in capsys.readouterr().out
    assert "truncated.png" in caplog.text


def test_one_class_folder_is_an_error(tmp_path, capsys):
    from recaptcha_tf.cli.main import main

    data = str(tmp_path / "one")
    make_class_folders(data, classes=("bus",), per_class=6)
    # one folder of images reads as text named by label when --task is left out (data/detect.py); tiles says so
    assert main(["train", "--data", data, "--out", str(tmp_path / "run"), "--task", "tiles", *TRAIN_ARGS]) == 2
    assert "needs at least two" in _err(capsys)


def test_a_split_without_test_part_is_stated(tiles_dir, tmp_path, caplog, capsys):
    from recaptcha_tf.cli.main import main

    with caplog.at_level(logging.WARNING, logger="recaptcha_tf"):
        main(
            ["train", "--data", tiles_dir, "--out", str(tmp_path / "run"), "--split", "70/30", "--model-arg", "=1"]
        )  # stops at the argument check, after the split's warning
    assert "has no test part" in caplog.text


def test_library_rejects_zero_epochs_and_batch_size(tiles_dir, tmp_path):
    from recaptcha_tf.training.classifier import train_classifier

    for bad in (dict(epochs=0), dict(batch_size=0), dict(learning_rate=-1.0)):
        with pytest.raises(ValueError, match="must be positive"):
            train_classifier(tiles_dir, str(tmp_path / "run"), logdir=None, **bad)


def test_train_overwrite_removes_only_the_run_state(relative_run, tmp_path, capsys):
    import shutil

    from recaptcha_tf.cli.main import main

    run, data = relative_run
    out = str(tmp_path / "copy")
    shutil.copytree(run, out)
    os.makedirs(os.path.join(out, "backup"))
    open(os.path.join(out, "backup", "latest.weights.h5"), "wb").write(b"garbage")
    open(os.path.join(out, "notes.txt"), "w").write("mine")
    other = tmp_path / "other"
    make_class_folders(str(other), per_class=6, seed=1)
    assert main(["train", "--data", str(other), "--out", out, *TRAIN_ARGS]) == 2
    assert "--overwrite" in _err(capsys)  # the advice names an option train accepts ...
    assert main(["train", "--data", str(other), "--out", out, "--overwrite", *TRAIN_ARGS]) == 0  # ... that works
    assert open(os.path.join(out, "notes.txt")).read() == "mine"
    assert logged_epochs(out) == [0] and not os.path.exists(os.path.join(out, "backup"))


def test_parquet_column_advice_names_real_options(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from recaptcha_tf.cli.main import main

    odd = str(tmp_path / "odd.parquet")
    blob = open(parquet_of_labels(str(tmp_path / "a.parquet"), ["x"]), "rb").read()  # any bytes will do for the schema
    pq.write_table(pa.table({"picture": pa.array([blob], pa.binary()), "caption": pa.array(["ab1"])}), odd)
    assert main(["merge-parquet", odd, "--out", str(tmp_path / "m.parquet")]) == 2
    assert "--image-column" in _err(capsys)
    assert (
        main(
            [
                "merge-parquet",
                odd,
                "--out",
                str(tmp_path / "m.parquet"),
                "--image-column",
                "picture",
                "--label-column",
                "caption",
            ]
        )
        == 0
    )


@pytest.mark.slow
def test_predict_prints_the_good_images_and_reports_the_bad_ones(relative_run, tmp_path):
    """Run as a user would: a subprocess, whose stderr must also be free of TensorFlow start-up lines."""
    import subprocess
    import sys

    run, data = relative_run
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(fake_png_bomb())
    good = [os.path.join(data, "bus", "0000.png"), os.path.join(data, "hydrant", "0000.png")]
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",)}
    done = subprocess.run(
        [sys.executable, "-m", "recaptcha_tf", "predict", "--model", run, good[0], str(bomb), good[1]],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 2
    printed = [line.split("\t")[0] for line in done.stdout.splitlines()]
    assert printed == good
    err = done.stderr.splitlines()
    assert any("bomb.png" in line and "over the limit" in line for line in err)
    assert all(line.startswith("error: ") for line in err), done.stderr  # no cuInit / absl / cudart lines


def test_argument_errors_come_before_tensorflow(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; from recaptcha_tf.cli import main; rc = main(sys.argv[1:]); "
        "print('tensorflow' in sys.modules); sys.exit(rc)"
    )
    for argv in (
        ["train", "--data", str(tmp_path / "nope")],
        ["predict", "--model", str(tmp_path), "x.png"],
        ["generate", "--out", str(tmp_path / "g"), "--length", "9-3"],
    ):
        done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and done.stdout.strip() == "False", (argv, done.stdout, done.stderr)
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
