"""Compiling and fitting with Keras callbacks.

A run folder ``OUT`` receives::

    OUT/model.keras     best model (lowest monitored value), with preprocessing and label names
    OUT/backup/         BackupAndRestore state; re-running the same command resumes here
    OUT/history.csv     CSVLogger, appended across resumed runs
    OUT/split.json      the data split (written by recaptcha_tf.runs)

and TensorBoard logs go to ``LOGDIR/<run name>/{train,validation,samples}``.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from recaptcha_tf.decoding import decode_text_outputs
from recaptcha_tf.evaluation import character_error_rate
from recaptcha_tf.plots import figure_to_array, prediction_grid

BEST_MODEL = "model.keras"


def make_optimizer(name: str = "adam", learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 1e-3,
                   weight_decay: float | None = None) -> keras.optimizers.Optimizer:
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


def cosine_schedule(learning_rate: float, epochs: int, steps_per_epoch: int, warmup_epochs: int = 1):
    """Linear warm-up for ``warmup_epochs`` then cosine decay to 0 over the remaining epochs."""
    total = max(1, epochs * steps_per_epoch)
    warmup = min(total - 1, warmup_epochs * steps_per_epoch)
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else learning_rate, decay_steps=max(1, total - warmup),
        warmup_target=learning_rate if warmup else None, warmup_steps=warmup,
    )


class TextMetrics(keras.callbacks.Callback):
    """Adds ``val_exact_match``, ``val_cer`` and ``val_blank_fraction`` (share of images read as
    empty text, the CTC all-blank plateau) to the epoch logs of a text model.

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
                "blank plateau); %s", (epoch + 1) * self.steps_per_epoch, 100 * blank, self.remedy)


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


def standard_callbacks(
    out_dir: str,
    logdir: str | None,
    monitor: str = "val_loss",
    mode: str = "min",
    patience: int | None = 8,
    first: Sequence[keras.callbacks.Callback] = (),
    last: Sequence[keras.callbacks.Callback] = (),
    backup: str = "backup",
    early_stopping: type[keras.callbacks.EarlyStopping] = keras.callbacks.EarlyStopping,
) -> list[keras.callbacks.Callback]:
    """BackupAndRestore, metric callbacks, TensorBoard, best-model checkpoint, early stopping, CSV log.

    ``first`` callbacks run before the loggers (they may add metrics to the logs).
    ``backup`` names the BackupAndRestore folder inside ``out_dir`` (one per training phase).
    ``early_stopping`` is the early-stopping class (e.g. :class:`PlateauAwareEarlyStopping`).
    """
    os.makedirs(out_dir, exist_ok=True)
    csv_path = os.path.join(out_dir, "history.csv")
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.BackupAndRestore(os.path.join(out_dir, backup)),
        *first,
    ]
    if logdir:
        callbacks.append(keras.callbacks.TensorBoard(logdir, write_graph=False, update_freq="epoch"))
    callbacks.append(
        keras.callbacks.ModelCheckpoint(
            os.path.join(out_dir, BEST_MODEL), monitor=monitor, mode=mode, save_best_only=True,
            initial_value_threshold=best_logged_value(csv_path, monitor, mode),
        )
    )
    if patience:
        callbacks.append(early_stopping(monitor=monitor, mode=mode, patience=patience))
    callbacks.append(keras.callbacks.CSVLogger(csv_path, append=True))
    callbacks.append(keras.callbacks.TerminateOnNaN())
    callbacks.extend(last)
    return callbacks
