"""Issue #12: kills never cost a run, inputs are never destroyed, limits everywhere, one-line errors."""

import csv
import logging
import os

import pytest
from conftest import make_class_folders

TINY = dict(conv_layers=1, filters=4, dense_units=8)


def _epochs(out):
    with open(os.path.join(out, "history.csv")) as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


def _interrupted_run(tmp_path, after=3, epochs=5):
    from test_training import Interrupt

    from recaptcha_tf.training.classifier import train_classifier

    data = str(tmp_path / "d")
    make_class_folders(data, per_class=6)
    out = str(tmp_path / "run")
    kwargs = dict(image_size=(24, 24), epochs=epochs, logdir=None, model_kwargs=TINY, patience=0, balance_per_class=0)
    with pytest.raises(KeyboardInterrupt):
        train_classifier(data, out, callbacks=[Interrupt(after=after)], **kwargs)
    return data, out, kwargs


# ---------------------------------------------------------------------------------------- 1. kill-safe backups


@pytest.mark.slow
def test_backup_keeps_latest_and_previous_and_a_truncated_latest_falls_back(tmp_path, caplog):
    from recaptcha_tf.training.classifier import train_classifier

    data, out, kwargs = _interrupted_run(tmp_path)
    backup = os.path.join(out, "backup")
    assert sorted(os.listdir(backup)) == ["latest.weights.h5", "previous.weights.h5"]
    latest = os.path.join(backup, "latest.weights.h5")
    with open(latest, "r+b") as f:  # what a SIGKILL in the middle of the write would leave
        f.truncate(os.path.getsize(latest) // 3)
    with caplog.at_level(logging.INFO, logger="recaptcha_tf"):
        summary = train_classifier(data, out, **kwargs)
    assert "latest.weights.h5 is unreadable" in caplog.text
    assert "resuming after epoch 2" in caplog.text  # the previous good state
    assert _epochs(out) == [0, 1, 2, 3, 4]  # epoch 3 (index 2) runs again; no duplicate row
    assert summary["epochs_run"] == 5 and summary["epochs_this_session"] == 3
    assert not os.path.exists(backup)


@pytest.mark.slow
def test_no_readable_backup_starts_the_phase_afresh_with_a_warning(tmp_path, caplog):
    from recaptcha_tf.training.classifier import train_classifier

    data, out, kwargs = _interrupted_run(tmp_path, after=2, epochs=3)
    for name in ("latest.weights.h5", "previous.weights.h5"):
        with open(os.path.join(out, "backup", name), "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n garbage")
    with caplog.at_level(logging.WARNING, logger="recaptcha_tf"):
        summary = train_classifier(data, out, **kwargs)
    assert "starts afresh at epoch 1" in caplog.text
    assert _epochs(out) == [0, 1, 2] and summary["epochs_run"] == 3


@pytest.mark.slow
def test_epoch_backed_up_but_not_logged_is_re_added_to_history(tmp_path):
    """A kill between the backup and the CSV log must not lose the epoch's row."""
    from recaptcha_tf.training.classifier import train_classifier

    data, out, kwargs = _interrupted_run(tmp_path, after=2, epochs=3)
    path = os.path.join(out, "history.csv")
    lines = open(path).read().splitlines(keepends=True)
    open(path, "w").write("".join(lines[:-1]))  # drop epoch index 1
    assert _epochs(out) == [0]
    summary = train_classifier(data, out, **kwargs)
    assert _epochs(out) == [0, 1, 2] and summary["epochs_run"] == 3
    with open(path) as f:
        row = list(csv.DictReader(f))[1]
    assert float(row["val_loss"]) > 0 and row["accuracy"] != ""


def test_best_model_checkpoint_is_written_atomically(tmp_path, monkeypatch):
    import keras
    import numpy as np

    from recaptcha_tf.training.callbacks import AtomicModelCheckpoint

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    path = str(tmp_path / "model.keras")
    cb = AtomicModelCheckpoint(path, monitor="loss", save_best_only=True)
    cb.set_model(model)
    cb.on_epoch_end(0, {"loss": 1.0})
    good = open(path, "rb").read()

    def killed_mid_write(self, filepath, **kwargs):
        open(filepath, "wb").write(b"PK half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "save", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        cb.on_epoch_end(1, {"loss": 0.5})
    assert open(path, "rb").read() == good
    monkeypatch.undo()
    assert keras.saving.load_model(path).predict(np.zeros((1, 2)), verbose=0).shape == (1, 1)


# ------------------------------------------------------------------------- 2. merge-parquet never destroys an input


def _parquet(path, labels):
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    blobs = []
    for i, _ in enumerate(labels):
        buf = io.BytesIO()
        Image.new("RGB", (24, 12), (i * 40, 0, 0)).save(buf, format="PNG")
        blobs.append(buf.getvalue())
    pq.write_table(pa.table({"image": pa.array(blobs, pa.binary()), "text": pa.array(labels)}), path)
    return path


def test_merge_parquet_refuses_a_link_to_an_input_and_leaves_it_intact(tmp_path, capsys):
    from recaptcha_tf.cli.main import main

    a = _parquet(str(tmp_path / "a.parquet"), ["ab1", "cd2"])
    b = _parquet(str(tmp_path / "b.parquet"), ["ef3"])
    before = open(a, "rb").read()
    link = str(tmp_path / "link.parquet")
    os.symlink(a, link)
    assert main(["merge-parquet", a, b, "--out", link]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "also an input" in err and "Traceback" not in err
    assert open(a, "rb").read() == before
    hard = str(tmp_path / "hard.parquet")
    os.link(b, hard)
    assert main(["merge-parquet", a, b, "--out", hard]) == 2
    assert open(b, "rb").read() == open(hard, "rb").read()


def test_merge_parquet_writes_a_temporary_file_and_renames_it(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from recaptcha_tf.data.text import parquet as text

    a = _parquet(str(tmp_path / "a.parquet"), ["ab1", "cd2"])
    out = str(tmp_path / "out.parquet")
    _parquet(out, ["old"])
    old = open(out, "rb").read()
    real = text._normalised_table

    def failing(*args):
        raise KeyboardInterrupt  # killed mid-merge

    monkeypatch.setattr(text, "_normalised_table", failing)
    with pytest.raises(KeyboardInterrupt):
        text.merge_parquet([a], out)
    assert open(out, "rb").read() == old  # the previous output is untouched
    assert sorted(os.listdir(tmp_path)) == ["a.parquet", "out.parquet"]  # no temporary file left behind
    monkeypatch.setattr(text, "_normalised_table", real)
    assert text.merge_parquet([a], out) == 2
    assert pq.read_table(out).column("text").to_pylist() == ["ab1", "cd2"]


# --------------------------------------------------------------------- a tiny run trained with a relative --data

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


# ------------------------------------------------------------------------ 5. manifests from any working directory


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


# ---------------------------------------------------------------------------------- 6. multi-label CSV paths


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


# ------------------------------------------------------------------------------------ 7. one-line errors


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


# --------------------------------------------------------------------------------- 8. silent wrong values


def test_one_class_folder_is_an_error(tmp_path, capsys):
    from recaptcha_tf.cli.main import main

    data = str(tmp_path / "one")
    make_class_folders(data, classes=("bus",), per_class=6)
    assert main(["train", "--data", data, "--out", str(tmp_path / "run"), *TRAIN_ARGS]) == 2
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


# ---------------------------------------------------------------------------------- 9. advice that points somewhere


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
    assert _epochs(out) == [0] and not os.path.exists(os.path.join(out, "backup"))


def test_parquet_column_advice_names_real_options(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from recaptcha_tf.cli.main import main

    odd = str(tmp_path / "odd.parquet")
    blob = open(_parquet(str(tmp_path / "a.parquet"), ["x"]), "rb").read()  # any bytes will do for the schema
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


# ------------------------------------------------------------------------- 3 and 10. pixel limits, predict


def _fake_bomb(width=20000, height=20000) -> bytes:
    """A PNG header declaring ``width x height`` (a decompression bomb's calling card) with a tiny body."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
    )


def test_the_decoder_refuses_an_over_limit_header_before_decoding_even_in_tf_data():
    import tensorflow as tf

    from recaptcha_tf.data.images import CorruptImageError, load_image_array, set_max_pixels
    from recaptcha_tf.data.pipeline import make_dataset

    with pytest.raises(CorruptImageError, match="over the limit"):
        load_image_array(_fake_bomb())
    with pytest.raises(tf.errors.InvalidArgumentError, match="pixel limit"):
        list(make_dataset([_fake_bomb()], None, image_size=(24, 24)))
    previous = set_max_pixels(100)  # a 24x24 tile is over a limit of 100 pixels
    try:
        with pytest.raises(CorruptImageError, match="576 pixels, over the limit of 100"):
            import io

            from PIL import Image

            buf = io.BytesIO()
            Image.new("RGB", (24, 24)).save(buf, format="JPEG")
            load_image_array(buf.getvalue())
    finally:
        set_max_pixels(previous)


def test_training_skips_an_over_limit_image_and_names_it(tmp_path, caplog):
    from recaptcha_tf.data.balance import _read_rgb
    from recaptcha_tf.data.folders import scan_class_folders

    data = tmp_path / "d"
    make_class_folders(str(data), per_class=3)
    bomb = data / "bus" / "bomb.png"
    bomb.write_bytes(_fake_bomb())
    with caplog.at_level(logging.WARNING, logger="recaptcha_tf"):
        ds = scan_class_folders(str(data))
    assert str(bomb) not in ds.paths and len(ds.paths) == 9
    assert "over the pixel limit" in caplog.text and "bomb.png" in caplog.text
    assert _read_rgb(str(bomb)) is None  # balance never decodes it either


@pytest.mark.slow
def test_predict_prints_the_good_images_and_reports_the_bad_ones(relative_run, tmp_path):
    """Run as a user would: a subprocess, whose stderr must also be free of TensorFlow start-up lines."""
    import subprocess
    import sys

    run, data = relative_run
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_fake_bomb())
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


@pytest.mark.slow
def test_re_running_a_finished_run_keeps_it_and_a_changed_one_trains(tmp_path, caplog):
    """A kill after the end (the backup already removed) or a plain re-run must not retrain the same run."""
    import logging

    from conftest import make_class_folders

    from recaptcha_tf.training.classifier import train_classifier

    data = str(tmp_path / "tiles")
    make_class_folders(data, per_class=6)
    out = str(tmp_path / "run")
    kwargs = dict(
        image_size=(24, 24),
        epochs=1,
        logdir=None,
        balance_per_class=0,
        model_kwargs=dict(conv_layers=1, filters=4, dense_units=8),
    )
    first = train_classifier(data, out, **kwargs)
    model_time = os.path.getmtime(os.path.join(out, "model.keras"))
    with caplog.at_level(logging.INFO, logger="recaptcha_tf"):
        again = train_classifier(data, out, **kwargs)
    assert again["epochs_this_session"] == 0 and again["test"] == first["test"]
    assert os.path.getmtime(os.path.join(out, "model.keras")) == model_time
    assert "training had finished, nothing to do" in caplog.text
    changed = train_classifier(data, out, **{**kwargs, "learning_rate": 5e-3})
    assert changed["epochs_this_session"] == 1
