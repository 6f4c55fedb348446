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

    from recaptcha_tf import runs

    data = str(tmp_path / "d")
    make_class_folders(data, per_class=6)
    out = str(tmp_path / "run")
    kwargs = dict(image_size=(24, 24), epochs=epochs, logdir=None, model_kwargs=TINY, patience=0, balance_per_class=0)
    with pytest.raises(KeyboardInterrupt):
        runs.train_classifier(data, out, callbacks=[Interrupt(after=after)], **kwargs)
    return data, out, kwargs


# ---------------------------------------------------------------------------------------- 1. kill-safe backups


def test_backup_keeps_latest_and_previous_and_a_truncated_latest_falls_back(tmp_path, caplog):
    from recaptcha_tf import runs

    data, out, kwargs = _interrupted_run(tmp_path)
    backup = os.path.join(out, "backup")
    assert sorted(os.listdir(backup)) == ["latest.weights.h5", "previous.weights.h5"]
    latest = os.path.join(backup, "latest.weights.h5")
    with open(latest, "r+b") as f:  # what a SIGKILL in the middle of the write would leave
        f.truncate(os.path.getsize(latest) // 3)
    with caplog.at_level(logging.INFO, logger="recaptcha_tf"):
        summary = runs.train_classifier(data, out, **kwargs)
    assert "latest.weights.h5 is unreadable" in caplog.text
    assert "resuming after epoch 2" in caplog.text  # the previous good state
    assert _epochs(out) == [0, 1, 2, 3, 4]  # epoch 3 (index 2) runs again; no duplicate row
    assert summary["epochs_run"] == 5 and summary["epochs_this_session"] == 3
    assert not os.path.exists(backup)


def test_no_readable_backup_starts_the_phase_afresh_with_a_warning(tmp_path, caplog):
    from recaptcha_tf import runs

    data, out, kwargs = _interrupted_run(tmp_path, after=2, epochs=3)
    for name in ("latest.weights.h5", "previous.weights.h5"):
        with open(os.path.join(out, "backup", name), "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n garbage")
    with caplog.at_level(logging.WARNING, logger="recaptcha_tf"):
        summary = runs.train_classifier(data, out, **kwargs)
    assert "starts afresh at epoch 1" in caplog.text
    assert _epochs(out) == [0, 1, 2] and summary["epochs_run"] == 3


def test_epoch_backed_up_but_not_logged_is_re_added_to_history(tmp_path):
    """A kill between the backup and the CSV log must not lose the epoch's row."""
    from recaptcha_tf import runs

    data, out, kwargs = _interrupted_run(tmp_path, after=2, epochs=3)
    path = os.path.join(out, "history.csv")
    lines = open(path).read().splitlines(keepends=True)
    open(path, "w").write("".join(lines[:-1]))  # drop epoch index 1
    assert _epochs(out) == [0]
    summary = runs.train_classifier(data, out, **kwargs)
    assert _epochs(out) == [0, 1, 2] and summary["epochs_run"] == 3
    with open(path) as f:
        row = list(csv.DictReader(f))[1]
    assert float(row["val_loss"]) > 0 and row["accuracy"] != ""


def test_best_model_checkpoint_is_written_atomically(tmp_path, monkeypatch):
    import keras
    import numpy as np

    from recaptcha_tf.training import AtomicModelCheckpoint

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
    from recaptcha_tf.cli import main

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

    from recaptcha_tf.data import text

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
