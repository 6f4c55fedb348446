"""Compiling and fitting with Keras callbacks.

A run folder ``OUT`` receives::

    OUT/model.keras     best model (lowest monitored value), with preprocessing and label names
    OUT/backup/         BackupAndRestore state (latest and previous good epoch); re-running resumes here
    OUT/history.csv     CSVLogger, appended across resumed runs (one row per finished epoch)
    OUT/split.json      the data split (written by recaptcha_tf.training.classifier / text_data)

and TensorBoard logs go to ``LOGDIR/<run name>/{train,validation,samples}``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from recaptcha_tf.evaluation.metrics import character_error_rate
from recaptcha_tf.evaluation.plots import figure_to_array, prediction_grid
from recaptcha_tf.inference.decoding import decode_text_outputs
from recaptcha_tf.utils.run_folder import RunFolder

BEST_MODEL = RunFolder.MODEL

log = logging.getLogger("recaptcha_tf")


def make_optimizer(
    name: str = "adam",
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 1e-3,
    weight_decay: float | None = None,
) -> keras.optimizers.Optimizer:
    """``adam``, ``adamw``, ``nadam``, ``rmsprop`` or ``sgd`` (Nesterov momentum 0.9)."""
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay or 1e-4)
    if name == "nadam":
        return keras.optimizers.Nadam(learning_rate)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate)
    if name in ("sgd", "sgd+momentum"):
        return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True)
    raise ValueError(f"Unknown optimizer {name!r}; choose adam, adamw, nadam, rmsprop or sgd.")


def build_optimizer(model: keras.Model) -> None:
    """Create the compiled optimizer's slot variables now, for ``model.trainable_variables``.

    Keras on TensorFlow otherwise creates them while it traces the first train step, and a
    ``tf.function`` that creates variables is traced twice: on CPU a CRNN's train step takes
    seconds to trace. Call it after ``compile`` (and after each re-compile of a fine-tune phase).
    """
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def cosine_schedule(learning_rate: float, epochs: int, steps_per_epoch: int, warmup_epochs: float = 1):
    """Linear warm-up over ``warmup_epochs`` epochs' steps (a fraction of an epoch allowed), then cosine decay to 0
    over the remaining steps."""
    total = max(1, epochs * steps_per_epoch)
    warmup = min(total - 1, round(warmup_epochs * steps_per_epoch))
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else learning_rate,
        decay_steps=max(1, total - warmup),
        warmup_target=learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def cer_then_loss(cer: float, loss: float) -> float:
    """Validation CER with ties broken by the validation loss: ``cer + 1e-7 * min(loss, 10)``.

    Once a text model reads every validation image right, its CER stays at 0 while
    it keeps improving; monitoring CER alone would keep the first perfect epoch and
    stop early. The loss term (at most 1e-6, under one character in 100,000) only
    decides between equal CERs.
    """
    return float(cer) + 1e-7 * min(float(loss), 10.0)


class TextMetrics(keras.callbacks.Callback):
    """Adds ``val_exact_match``, ``val_cer``, ``val_blank_fraction`` (share of images read as
    empty text, the CTC all-blank plateau) and ``val_cer_then_loss`` (:func:`cer_then_loss`)
    to the epoch logs of a text model.

    Place it before TensorBoard, checkpoint and CSV callbacks so they see the values.
    """

    def __init__(self, dataset: tf.data.Dataset, references: Sequence[str], characters: Sequence[str], kind: str):
        super().__init__()
        self.dataset, self.references, self.characters, self.kind = dataset, list(references), characters, kind

    def on_epoch_end(self, epoch, logs=None):
        outputs = self.model.predict(self.dataset, verbose=0)
        texts = [t for t, _ in decode_text_outputs(outputs, self.characters, self.kind)]
        if logs is not None:
            logs["val_exact_match"] = float(np.mean([t == r for t, r in zip(texts, self.references)]))
            logs["val_cer"] = character_error_rate(self.references, texts)
            logs["val_blank_fraction"] = float(np.mean([t == "" for t in texts]))
            if "val_loss" in logs:
                logs["val_cer_then_loss"] = cer_then_loss(logs["val_cer"], logs["val_loss"])


class StartingPoint(keras.callbacks.Callback):
    """Makes the weights a run starts from the first candidate for its best checkpoint (``--weights`` a reader).

    Fine-tuning a trained reader on a handful of labels can leave it worse than it started: twenty images and a
    thousand steps overfit. Before the first step of a fresh run this scores the starting weights on the validation
    images (as :class:`TextMetrics` does), saves them as the run's best model (``OUT/model.keras``) and records the
    score in ``OUT/starting_point.json``; :class:`AtomicModelCheckpoint` reads that score as the value to beat, so an
    epoch replaces the starting weights only when it reads the validation images better: a lower CER, or the same
    CER at a lower validation loss (:func:`cer_then_loss`; with no ``validation`` dataset to take the start's loss
    from, it counts as the largest, and at an equal CER the epoch wins). A resumed run reads the file back; a run
    that already has epochs logged without it is left as it was.

    Place it after the :class:`TextMetrics` it scores with, before the checkpoint.
    """

    def __init__(self, metrics: TextMetrics, out_dir: str, validation: tf.data.Dataset | None = None):
        super().__init__()
        self.metrics, self.out_dir, self.validation = metrics, out_dir, validation

    def on_train_begin(self, logs=None):
        folder = RunFolder(self.out_dir)
        path = folder.file(RunFolder.STARTING_POINT)
        if os.path.isfile(path) or best_logged_value(folder.history, "val_cer_then_loss", "min") is not None:
            return
        scores: dict = {}
        self.metrics.set_model(self.model)
        self.metrics.on_epoch_end(-1, scores)
        loss = 10.0
        if self.validation is not None:
            loss = float(self.model.evaluate(self.validation, verbose=0, return_dict=True)["loss"])
        value = cer_then_loss(scores["val_cer"], loss)
        save_atomically(self.model, folder.model)
        folder.write_json(
            {"monitor": "val_cer_then_loss", "value": value, "val_cer": scores["val_cer"], "val_loss": loss,
             "val_exact_match": scores["val_exact_match"]},
            RunFolder.STARTING_POINT,
        )  # fmt: skip
        log.info(
            "the starting weights read %.3f of the validation images (CER %.4f): an epoch replaces them if better",
            scores["val_exact_match"],
            scores["val_cer"],
        )


BLANK_PLATEAU = 0.9  # a text model reading at least this share of validation images as empty is on the plateau


class BlankPlateauWarning(keras.callbacks.Callback):
    """Says once, in one line, when a text model still reads (nearly) every image as empty after ``steps``.

    Needs ``val_blank_fraction`` in the logs (:class:`TextMetrics`). ``on_plateau``
    records the state for the run summary: ``True`` while the last epoch is on
    the plateau after the check point.
    """

    def __init__(self, steps: int, steps_per_epoch: int, remedy: str):
        super().__init__()
        self.steps, self.steps_per_epoch, self.remedy = steps, steps_per_epoch, remedy
        self.warned = False
        self.on_plateau = False

    def on_epoch_end(self, epoch, logs=None):
        blank = (logs or {}).get("val_blank_fraction")
        if blank is None or (epoch + 1) * self.steps_per_epoch < self.steps:
            return
        self.on_plateau = blank >= BLANK_PLATEAU
        if self.on_plateau and not self.warned:
            self.warned = True
            logging.getLogger("recaptcha_tf").warning(
                "after %d steps the model still reads %.0f%% of the validation images as empty text (the CTC "
                "blank plateau); %s",
                (epoch + 1) * self.steps_per_epoch,
                100 * blank,
                self.remedy,
            )


class PlateauAwareEarlyStopping(keras.callbacks.EarlyStopping):
    """Early stopping that does not count epochs while a text model is still on the blank plateau.

    A CTC model's loss can sit flat for many epochs before it starts emitting
    characters; plain early stopping would end such a run and save a model that
    reads nothing. Epochs whose ``val_blank_fraction`` is at least ``blank`` reset
    the patience counter instead.
    """

    def __init__(self, blank: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.blank = blank

    def on_epoch_end(self, epoch, logs=None):
        if (logs or {}).get("val_blank_fraction", 0.0) >= self.blank:
            self.wait = 0
            return
        super().on_epoch_end(epoch, logs)


class EarlyStoppingReplay(keras.callbacks.Callback):
    """Gives a resumed phase's early stopping the state an unbroken run would have: when training begins (after
    :class:`SafeBackupAndRestore` has repaired ``history.csv``), the phase's logged epochs are replayed through
    ``stopper.on_epoch_end``, so ``best`` and ``wait`` count from the phase's start, not from the resume.

    Args:
        stopper: the phase's early-stopping callback (listed before this one).
        csv_path: the run's ``history.csv``.
        initial_epoch: the phase's first epoch.
    """

    def __init__(self, stopper: keras.callbacks.EarlyStopping, csv_path: str, initial_epoch: int = 0):
        super().__init__()
        self.stopper, self.csv_path, self.initial_epoch = stopper, csv_path, initial_epoch

    def on_train_begin(self, logs=None):
        for row in read_history(self.csv_path)[1]:
            if row.get("epoch") in (None, "") or int(row["epoch"]) < self.initial_epoch:
                continue
            values = {k: float(v) for k, v in row.items() if k != "epoch" and v not in (None, "")}
            self.stopper.on_epoch_end(int(row["epoch"]), values)
        if self.model is not None:  # a replay that ends the run stops it after one whole epoch, never mid-epoch
            self.model.stop_training = False


class TimeBudget(keras.callbacks.Callback):
    """Stops training at the end of an epoch when another epoch as long as the longest so far would end past
    ``minutes`` of training in this session (counted from the first ``fit`` it sees; one instance may serve
    both fine-tuning phases). The safety net under a step-time estimate (:mod:`recaptcha_tf.training.step_time`): the
    estimate plans the schedule, this keeps the budget when the estimate was short."""

    def __init__(self, minutes: float):
        super().__init__()
        self.seconds = minutes * 60
        self.start = None
        self.longest = 0.0
        self.stopped = False

    def on_train_begin(self, logs=None):
        if self.start is None:
            self.start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.longest = max(self.longest, now - self.epoch_start)
        last = epoch + 1 >= self.params.get("epochs", 0)
        if now - self.start + self.longest > self.seconds and not (last or self.model.stop_training):
            self.model.stop_training = self.stopped = True
            log.warning(
                "stopping after epoch %d: another would pass the time budget of %g minutes (%.1f used)",
                epoch + 1,
                self.seconds / 60,
                (now - self.start) / 60,
            )


class PredictionSamples(keras.callbacks.Callback):
    """Logs a grid of sample images with predictions to TensorBoard (``samples`` run).

    Args:
        images: ``uint8`` array ``(N, H, W, C)`` of raw images at the model's input size.
        truths: true labels as strings.
        describe: maps the model's outputs on ``images`` to ``(predictions, confidences)``.
        logdir: TensorBoard folder of the run.
        every: log every ``every`` epochs, and always at the end of training.
    """

    def __init__(self, images: np.ndarray, truths: Sequence[str], describe: Callable, logdir: str, every: int = 5):
        super().__init__()
        self.images, self.truths, self.describe, self.every = images, list(truths), describe, every
        self.writer = tf.summary.create_file_writer(os.path.join(logdir, "samples"))
        self.last_epoch = -1

    def log(self, step: int):
        outputs = self.model.predict(self.images, verbose=0)
        preds, confs = self.describe(outputs)
        fig = prediction_grid(self.images, self.truths, preds, confs, columns=4)
        with self.writer.as_default():
            tf.summary.image("predictions", figure_to_array(fig)[None], step=step)
        self.writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        self.last_epoch = epoch
        if (epoch + 1) % self.every == 0:
            self.log(epoch + 1)

    def on_train_end(self, logs=None):
        if self.last_epoch >= 0:
            self.log(self.last_epoch + 1)


def best_logged_value(csv_path: str, monitor: str, mode: str = "min") -> float | None:
    """Best value of ``monitor`` in an existing CSV log (so a resumed checkpoint keeps the true best)."""
    if not os.path.exists(csv_path):
        return None
    with open(csv_path) as f:
        values = [float(row[monitor]) for row in csv.DictReader(f) if row.get(monitor) not in (None, "", "nan")]
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return None
    return min(values) if mode == "min" else max(values)


def _fsync(path: str) -> None:
    """Flush ``path`` to disk before it is renamed into place."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_history(csv_path: str) -> tuple[list[str], list[dict]]:
    """``(field names, rows)`` of a CSVLogger file; empty when there is none."""
    if not os.path.exists(csv_path):
        return [], []
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def epochs_logged(csv_path: str) -> int:
    """How many distinct epochs ``history.csv`` records (every finished epoch of a run, resumed or not)."""
    return len({row["epoch"] for row in read_history(csv_path)[1] if row.get("epoch") not in (None, "")})


def _jsonable_logs(logs) -> dict:
    out = {}
    for key, value in (logs or {}).items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue
    return out


class SafeBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose state survives a kill at any instant.

    Every epoch end writes the weights (optimizer included), the epoch number and
    that epoch's logs into *one* file under a temporary name, then renames it:
    the last good file becomes ``previous.weights.h5`` and the new one
    ``latest.weights.h5``. A kill mid-write leaves only the temporary file behind.

    On restore ``latest`` is tried, then ``previous``; an unreadable one is
    skipped with a warning, and with neither readable the phase starts afresh at
    ``initial_epoch`` (warning). With ``delete_checkpoint=False`` the backup stays
    after training and records that it finished (``done.json``), so a run killed
    afterwards (while evaluating) does not train again: the caller removes it
    once its results are written. ``history.csv`` is then made to match the
    restored epoch: rows of epochs that will run again are dropped, and the
    restored epoch's own row is re-added from the backup when a kill fell
    between the backup and the CSV log.

    Place it after callbacks that add metrics to the logs and before the CSV log.
    """

    EPOCH_ATTR = "recaptcha_tf_epoch"
    LOGS_ATTR = "recaptcha_tf_logs"

    def __init__(
        self, backup_dir: str, csv_path: str | None = None, initial_epoch: int = 0, delete_checkpoint: bool = True
    ):
        super().__init__(backup_dir, delete_checkpoint=delete_checkpoint)
        self.csv_path = csv_path
        self.initial_epoch = initial_epoch
        self._previous_path = os.path.join(backup_dir, "previous.weights.h5")
        self._partial_path = os.path.join(backup_dir, "partial.weights.h5")
        self._done_path = os.path.join(backup_dir, "done.json")
        self.restored_epoch: int | None = None

    @classmethod
    def restorable_epoch(cls, backup_dir: str) -> int | None:
        """The epoch a resume from ``backup_dir`` would go on after (``latest``, else ``previous``), read before
        training without loading weights; ``None`` without a readable backup. ``history.csv`` may hold one row
        fewer or more until the restore repairs it."""
        import h5py

        for name in ("latest.weights.h5", "previous.weights.h5"):
            try:
                with h5py.File(os.path.join(backup_dir, name), "r") as f:
                    if cls.EPOCH_ATTR in f.attrs:
                        return int(f.attrs[cls.EPOCH_ATTR])
            except (OSError, ValueError):
                continue
        return None

    # ------------------------------------------------------------------ save
    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        self._save_model(logs)

    def _save_model(self, logs=None):
        import h5py

        os.makedirs(self.backup_dir, exist_ok=True)
        self.model.save_weights(self._partial_path, overwrite=True)
        with h5py.File(self._partial_path, "a") as f:
            f.attrs[self.EPOCH_ATTR] = int(self._current_epoch)
            f.attrs[self.LOGS_ATTR] = json.dumps(_jsonable_logs(logs))
        _fsync(self._partial_path)
        if os.path.exists(self._weights_path):
            os.replace(self._weights_path, self._previous_path)
        os.replace(self._partial_path, self._weights_path)

    # --------------------------------------------------------------- restore
    def _read_state(self, path: str) -> tuple[int, dict | None]:
        """``(epoch, logs)`` recorded in a backup file (older backups: epoch from the Keras metadata file)."""
        import h5py

        with h5py.File(path, "r") as f:
            if self.EPOCH_ATTR in f.attrs:
                return int(f.attrs[self.EPOCH_ATTR]), json.loads(f.attrs.get(self.LOGS_ATTR, "{}"))
        with open(self._training_metadata_path) as f:  # written by keras.callbacks.BackupAndRestore
            return int(json.load(f)["epoch"]), None

    def on_train_begin(self, logs=None):
        self.restored_epoch, self.finished = None, False
        self.model._initial_epoch = None  # never carry an epoch over from an earlier fit (phase 1)
        candidates = [p for p in (self._weights_path, self._previous_path) if os.path.exists(p)]
        if not candidates:
            return
        build_optimizer(self.model)
        variables = list(self.model.weights) + list(getattr(self.model.optimizer, "variables", []))
        snapshot = [v.numpy() for v in variables]
        for path in candidates:
            try:
                epoch, epoch_logs = self._read_state(path)
                self.model.load_weights(path)
            except (OSError, ValueError, KeyError) as err:
                log.warning(
                    "Backup %s is unreadable (%s); falling back to the previous one.",
                    path,
                    str(err).splitlines()[0] if str(err) else type(err).__name__,
                )
                continue
            self.restored_epoch = epoch
            self.model._initial_epoch = epoch
            self._repair_history(epoch, epoch_logs)
            if os.path.exists(self._done_path) and path == self._weights_path:
                self.finished = True
                self.model._initial_epoch = max(epoch, int(self.params.get("epochs") or epoch))
                log.info(
                    "Restored the training state from %s: resuming after epoch %d; training had finished.", path, epoch
                )
            else:
                log.info("Restored the training state from %s: resuming after epoch %d.", path, epoch)
            return
        for v, value in zip(variables, snapshot):
            v.assign(value)
        log.warning(
            "No readable backup in %s; this training phase starts afresh at epoch %d.",
            self.backup_dir,
            self.initial_epoch + 1,
        )
        self._repair_history(self.initial_epoch, None)

    def _repair_history(self, epoch: int, epoch_logs: dict | None) -> None:
        """Keep the CSV rows of epochs before ``epoch`` (the last one from the backup when missing)."""
        if not self.csv_path:
            return
        fields, rows = read_history(self.csv_path)
        kept = {}
        for row in rows:
            if row.get("epoch", "").isdigit() and int(row["epoch"]) < epoch:
                kept[int(row["epoch"])] = row
        if epoch_logs and epoch - 1 not in kept and epoch >= 1:
            fields = fields or ["epoch", *sorted(epoch_logs)]
            kept[epoch - 1] = {"epoch": str(epoch - 1), **{k: str(v) for k, v in epoch_logs.items()}}
            log.info("Re-added epoch %d to %s from the backup.", epoch, self.csv_path)
        new_rows = [kept[e] for e in sorted(kept)]
        if new_rows == rows:
            return
        tmp = f"{self.csv_path}.tmp{os.getpid()}"
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore", restval="")
            writer.writeheader()
            writer.writerows(new_rows)
        os.replace(tmp, self.csv_path)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and os.path.exists(self.backup_dir):
            import shutil

            shutil.rmtree(self.backup_dir)
        elif os.path.exists(self._weights_path):
            tmp = self._done_path + ".partial"
            with open(tmp, "w") as f:
                json.dump({"epoch": int(self._current_epoch)}, f)
            os.replace(tmp, self._done_path)


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """``ModelCheckpoint`` that writes to a temporary file and renames it, so a kill never leaves half a model.

    With ``csv_path``, the best value so far is re-read from the (repaired) CSV log
    when training begins, so a resumed run keeps the true best. With ``starting_point`` (the JSON
    :class:`StartingPoint` writes, when it exists) its value is the one to beat if it is better.

    With ``backup`` (the phase's :class:`SafeBackupAndRestore`, which runs first), a resumed phase whose restored
    epoch is the best one logged saves the restored weights as the best model: a kill between the backup and this
    checkpoint would otherwise keep an older model while the log names the restored epoch as the best. The save is
    idempotent (the restored weights are that epoch's weights).
    """

    def __init__(
        self,
        filepath: str,
        csv_path: str | None = None,
        starting_point: str | None = None,
        backup: SafeBackupAndRestore | None = None,
        **kwargs,
    ):
        super().__init__(filepath, **kwargs)
        self.csv_path, self.starting_point, self.backup = csv_path, starting_point, backup

    def on_train_begin(self, logs=None):
        if self.csv_path:
            best = best_logged_value(self.csv_path, self.monitor, self.mode)
            if best is not None:
                self.best = best
        if self.starting_point and os.path.isfile(self.starting_point):
            with open(self.starting_point) as f:
                start = json.load(f)
            if start.get("monitor") == self.monitor:
                better = min if self.mode == "min" else max
                self.best = start["value"] if self.best is None else better(self.best, start["value"])
        self._save_restored_best()

    def _save_restored_best(self) -> None:
        restored = self.backup.restored_epoch if self.backup is not None else None
        if not restored or self.backup.finished or not self.csv_path or self.best is None:
            return
        _, rows = read_history(self.csv_path)
        values = {}
        for row in rows:
            try:
                values[int(row["epoch"])] = float(row[self.monitor])
            except (KeyError, ValueError):
                continue
        earlier = [v for e, v in values.items() if e < restored - 1]
        if values.get(restored - 1) == self.best and self.best not in earlier:  # a tie kept the earlier model
            save_atomically(self.model, self.filepath, weights_only=self.save_weights_only)
            log.info("Saved the restored epoch %d as the best model (it is the best one logged).", restored)

    def _save_model(self, epoch, batch, logs):
        filepath = self._get_file_path(epoch, batch, logs)
        if not self._should_save_model(epoch, batch, logs, filepath):
            return
        save_atomically(self.model, filepath, weights_only=self.save_weights_only)


def save_atomically(model: keras.Model, filepath: str, weights_only: bool = False) -> str:
    """Save ``model`` (or only its weights) to ``filepath`` through ``partial-<name>`` beside it, synced, then
    renamed: a kill at any instant leaves the old file or the new one. Returns ``filepath``."""
    folder, name = os.path.split(filepath)
    os.makedirs(folder or ".", exist_ok=True)
    tmp = os.path.join(folder, "partial-" + name)
    if weights_only:
        model.save_weights(tmp, overwrite=True)
    else:
        model.save(tmp, overwrite=True)
    _fsync(tmp)
    os.replace(tmp, filepath)
    return filepath


def standard_callbacks(
    out_dir: str,
    logdir: str | None,
    monitor: str = "val_loss",
    mode: str = "min",
    patience: int | None = 8,
    first: Sequence[keras.callbacks.Callback] = (),
    last: Sequence[keras.callbacks.Callback] = (),
    backup: str = RunFolder.BACKUP,
    early_stopping: type[keras.callbacks.EarlyStopping] = keras.callbacks.EarlyStopping,
    initial_epoch: int = 0,
    delete_backup: bool = True,
) -> list[keras.callbacks.Callback]:
    """Metric callbacks, kill-safe BackupAndRestore, TensorBoard, best-model checkpoint, early stopping, CSV log.

    ``first`` callbacks run before the backup and the loggers (they may add metrics to the logs).
    ``backup`` names the BackupAndRestore folder inside ``out_dir`` (one per training phase);
    ``initial_epoch`` is the phase's first epoch; ``delete_backup=False`` keeps the
    backup after the phase ends (the caller removes it once it has saved what follows).
    ``early_stopping`` is the early-stopping class (e.g. :class:`PlateauAwareEarlyStopping`).
    """
    os.makedirs(out_dir, exist_ok=True)
    csv_path = RunFolder(out_dir).history
    restore = SafeBackupAndRestore(
        os.path.join(out_dir, backup), csv_path=csv_path, initial_epoch=initial_epoch, delete_checkpoint=delete_backup
    )
    callbacks: list[keras.callbacks.Callback] = [*first, restore]
    if logdir:
        callbacks.append(keras.callbacks.TensorBoard(logdir, write_graph=False, update_freq="epoch"))
    callbacks.append(
        AtomicModelCheckpoint(
            os.path.join(out_dir, BEST_MODEL),
            csv_path=csv_path,
            starting_point=RunFolder(out_dir).file(RunFolder.STARTING_POINT),
            backup=restore,
            monitor=monitor,
            mode=mode,
            save_best_only=True,
            initial_value_threshold=best_logged_value(csv_path, monitor, mode),
        )
    )
    if patience:
        stopper = early_stopping(monitor=monitor, mode=mode, patience=patience)
        callbacks += [stopper, EarlyStoppingReplay(stopper, csv_path, initial_epoch)]  # resumed: the phase's state
    callbacks.append(keras.callbacks.CSVLogger(csv_path, append=True))
    callbacks.append(keras.callbacks.TerminateOnNaN())
    callbacks.extend(last)
    return callbacks
