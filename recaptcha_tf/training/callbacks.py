"""Keras callbacks of the trainers, and :func:`standard_callbacks`, the set every run fits with.

The kill-safe state (backups, atomic checkpoints) is in :mod:`recaptcha_tf.training.checkpoints`, optimizers and
schedules in :mod:`recaptcha_tf.training.optimizers`; both are re-exported here. A run folder ``OUT`` receives::

    OUT/model.keras     best model (lowest monitored value), with preprocessing and label names
    OUT/backup/         BackupAndRestore state (latest and previous good epoch); re-running resumes here
    OUT/history.csv     CSVLogger, appended across resumed runs (one row per finished epoch)
    OUT/split.json      the data split (written by recaptcha_tf.training.classifier / text_data)

and TensorBoard logs go to ``LOGDIR/<run name>/{train,validation,samples}``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from recaptcha_tf.evaluation.metrics import character_error_rate
from recaptcha_tf.evaluation.plots import figure_to_array, prediction_grid
from recaptcha_tf.inference.decoding import decode_text_outputs
from recaptcha_tf.training.checkpoints import (  # noqa: F401  (re-exported: they lived here before)
    AtomicModelCheckpoint,
    SafeBackupAndRestore,
    _fsync,
    _jsonable_logs,
    best_logged_value,
    epochs_logged,
    read_history,
    save_atomically,
)
from recaptcha_tf.training.optimizers import build_optimizer, cosine_schedule, make_optimizer  # noqa: F401
from recaptcha_tf.utils.run_folder import RunFolder

BEST_MODEL = RunFolder.MODEL

log = logging.getLogger("recaptcha_tf")


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
