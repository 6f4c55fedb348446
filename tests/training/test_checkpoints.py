"""Kill-safe training state: backups that survive a kill at any instant, atomic checkpoints, re-runs of a
finished run."""

import csv
import logging
import os

import pytest
from conftest import logged_epochs, make_class_folders

TINY = dict(conv_layers=1, filters=4, dense_units=8)


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
    assert logged_epochs(out) == [0, 1, 2, 3, 4]  # epoch 3 (index 2) runs again; no duplicate row
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
    assert logged_epochs(out) == [0, 1, 2] and summary["epochs_run"] == 3


@pytest.mark.slow
def test_epoch_backed_up_but_not_logged_is_re_added_to_history(tmp_path):
    """A kill between the backup and the CSV log must not lose the epoch's row."""
    from recaptcha_tf.training.classifier import train_classifier

    data, out, kwargs = _interrupted_run(tmp_path, after=2, epochs=3)
    path = os.path.join(out, "history.csv")
    lines = open(path).read().splitlines(keepends=True)
    open(path, "w").write("".join(lines[:-1]))  # drop epoch index 1
    assert logged_epochs(out) == [0]
    summary = train_classifier(data, out, **kwargs)
    assert logged_epochs(out) == [0, 1, 2] and summary["epochs_run"] == 3
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


@pytest.mark.slow
def test_re_running_a_finished_run_keeps_it_and_a_changed_one_is_refused(tmp_path, caplog):
    """A kill after the end (the backup already removed) or a plain re-run must not retrain the same run; one with
    other settings is refused (it would resume, or keep the old best model) until ``--overwrite``."""
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
    from recaptcha_tf.training.phases import TrainingConfigError
    from recaptcha_tf.training.run_folder import clear_run_state

    with pytest.raises(TrainingConfigError, match=r"other settings \(.*\blearning_rate\)"):  # never mixed with it
        train_classifier(data, out, **{**kwargs, "learning_rate": 5e-3})
    assert os.path.getmtime(os.path.join(out, "model.keras")) == model_time
    clear_run_state(out)  # train --overwrite
    changed = train_classifier(data, out, **{**kwargs, "learning_rate": 5e-3})
    assert changed["epochs_this_session"] == 1


def test_a_reader_it_starts_from_stays_the_best_model_until_an_epoch_reads_better(tmp_path):
    """StartingPoint saves the starting weights as the best model and records their score; the checkpoint replaces
    them only with an epoch that reads the validation images better, also after a resume."""
    import json

    import keras
    import numpy as np

    from recaptcha_tf.training.callbacks import AtomicModelCheckpoint, StartingPoint, cer_then_loss
    from recaptcha_tf.utils.run_folder import RunFolder

    class Scores(keras.callbacks.Callback):  # TextMetrics as the starting weights would score: CER 0.2
        def on_epoch_end(self, epoch, logs=None):
            logs.update(val_cer=0.2, val_exact_match=0.5)

    def model(value):
        net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer="zeros")])
        net.layers[-1].set_weights([np.full((2, 1), value, "float32"), np.zeros(1, "float32")])
        return net

    folder = RunFolder(str(tmp_path / "run"))
    start = StartingPoint(Scores(), folder.path)
    start.set_model(model(1.0))
    start.on_train_begin()
    recorded = json.load(open(folder.file(RunFolder.STARTING_POINT)))
    assert recorded["value"] == cer_then_loss(0.2, 10.0) and recorded["val_exact_match"] == 0.5

    def checkpoint(weights_value):
        callback = AtomicModelCheckpoint(
            folder.model,
            csv_path=folder.history,
            starting_point=folder.file(RunFolder.STARTING_POINT),
            monitor="val_cer_then_loss",
            mode="min",
            save_best_only=True,
        )
        callback.set_model(model(weights_value))
        callback.on_train_begin()
        return callback

    def saved_kernel():
        return float(keras.saving.load_model(folder.model, safe_mode=True).layers[-1].get_weights()[0][0, 0])

    assert saved_kernel() == 1.0  # the starting weights are the best model before any epoch
    worse = checkpoint(2.0)
    worse.on_epoch_end(0, {"val_cer_then_loss": cer_then_loss(0.3, 1.0)})
    assert saved_kernel() == 1.0  # a worse epoch does not replace them
    tied = checkpoint(3.0)  # a resumed run: the value to beat is read back from the file
    assert tied.best == recorded["value"]
    tied.on_epoch_end(1, {"val_cer_then_loss": cer_then_loss(0.2, 1.0)})
    assert saved_kernel() == 3.0  # an equal CER: the epoch, which has seen the labels, wins

    start.on_train_begin()  # a second call (a resume) keeps the record as it is
    assert json.load(open(folder.file(RunFolder.STARTING_POINT))) == recorded


@pytest.mark.parametrize("kind", ["plain", "plateau"])
def test_a_resumed_phase_keeps_its_early_stopping_state(tmp_path, kind):
    """Killed after epoch 2 of ``val_loss`` 1.0, 0.5, 0.6 (patience 2), the resumed phase stops after epoch 3 as
    the unbroken run does, not after epoch 4; rows of an earlier phase do not count."""
    import csv

    import keras

    from recaptcha_tf.training.callbacks import EarlyStoppingReplay, PlateauAwareEarlyStopping

    path = str(tmp_path / "history.csv")
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["epoch", "val_loss", "val_blank_fraction"])
        writer.writeheader()
        writer.writerow({"epoch": 0, "val_loss": 0.01, "val_blank_fraction": 0})  # phase 1: not this phase's
        for epoch, loss in ((1, 1.0), (2, 0.5), (3, 0.6)):
            writer.writerow({"epoch": epoch, "val_loss": loss, "val_blank_fraction": 0})
    cls = keras.callbacks.EarlyStopping if kind == "plain" else PlateauAwareEarlyStopping
    stopper = cls(monitor="val_loss", mode="min", patience=2)
    replay = EarlyStoppingReplay(stopper, path, initial_epoch=1)

    class Model:
        stop_training = False

    for callback in (stopper, replay):
        callback.set_model(Model())
    stopper.on_train_begin()
    replay.on_train_begin()
    assert stopper.best == 0.5 and stopper.wait == 1 and not replay.model.stop_training
    stopper.on_epoch_end(4, {"val_loss": 0.7})
    assert stopper.model.stop_training  # patience 2 after epoch 2's best, as without the kill


def test_a_kill_between_the_backup_and_the_best_model_save_keeps_the_restored_best(tmp_path):
    """Epoch 2 is the best one and its backup is written, but a kill comes before the checkpoint saves it: the
    resumed run must save the restored weights as the best model (the log names epoch 2 as the best)."""
    import keras
    import numpy as np

    from recaptcha_tf.training.callbacks import standard_callbacks

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    def model():
        keras.utils.set_random_seed(0)
        net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        net.compile(keras.optimizers.SGD(0.05), "mse")
        return net

    x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    y = x @ np.array([[1.0], [-2.0]], "float32")
    out = str(tmp_path / "run")
    callbacks = standard_callbacks(out, None, monitor="loss", patience=0)
    callbacks.insert(1, Kill())  # right after the backup, before the checkpoint and the CSV log
    with pytest.raises(KeyboardInterrupt):
        model().fit(x, y, epochs=3, callbacks=callbacks, verbose=0)
    restored = model()
    restored.load_weights(os.path.join(out, "backup", "latest.weights.h5"))
    stale = keras.saving.load_model(os.path.join(out, "model.keras"), safe_mode=True)
    assert not np.allclose(stale.get_weights()[0], restored.get_weights()[0])  # the kill left epoch 1's model

    model().fit(x, y, epochs=2, callbacks=standard_callbacks(out, None, monitor="loss", patience=0), verbose=0)
    best = keras.saving.load_model(os.path.join(out, "model.keras"), safe_mode=True)
    np.testing.assert_allclose(best.get_weights()[0], restored.get_weights()[0])
    assert logged_epochs(out) == [0, 1]
