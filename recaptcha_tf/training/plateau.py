"""A step budget that notices the CTC blank plateau and extends: ``train --task text --plateau-extension F``.

:class:`PlateauExtension` adds the evaluations a text model spends reading blanks after its warm-up to the run and
holds them out of the learning-rate schedule (:class:`HeldSchedule`), so the decay starts once the model reads.
"""

from __future__ import annotations

import logging

import keras

from recaptcha_tf.training.callbacks import BLANK_PLATEAU, cosine_schedule

log = logging.getLogger("recaptcha_tf")


@keras.saving.register_keras_serializable(package="recaptcha_tf")
class HeldSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A learning-rate schedule whose clock can be held back: the rate at step ``t`` is ``schedule(t - held)``.

    :class:`PlateauExtension` adds an evaluation's steps to ``held`` when the evaluation ends on the CTC blank
    plateau, so steps on the plateau count neither toward the warm-up nor toward the decay.

    Args:
        schedule: the schedule held back (e.g. :func:`cosine_schedule`'s).
        held_steps: steps held back so far.
    """

    def __init__(self, schedule, held_steps: float = 0.0):
        if isinstance(schedule, dict):
            schedule = keras.optimizers.schedules.deserialize(schedule)
        self.schedule = schedule
        self.held = keras.Variable(float(held_steps), dtype="float32", trainable=False, name="held_steps")

    def __call__(self, step):
        return self.schedule(keras.ops.maximum(keras.ops.cast(step, "float32") - self.held, 0.0))

    def get_config(self):
        return {
            "schedule": keras.optimizers.schedules.serialize(self.schedule),
            "held_steps": float(keras.ops.convert_to_numpy(self.held)),
        }


class PlateauExtension(keras.callbacks.Callback):
    """A step budget that notices the CTC blank plateau and extends.

    After the warm-up, every evaluation that still reads at least :data:`BLANK_PLATEAU` of the validation images
    as empty text (``val_blank_fraction``, :class:`TextMetrics`) is held out of the learning-rate schedule
    (:class:`HeldSchedule`: the rate stays where it was instead of decaying) and added to the run, up to
    ``extra_epochs`` such evaluations. The run is fitted for ``planned_epochs + extra_epochs`` epochs and this
    callback stops it once ``planned_epochs`` evaluations off the plateau are done; a run that never sits on the
    plateau trains exactly as without it. :class:`TimeBudget` still bounds the wall time.

    Args:
        planned_epochs: evaluations of the budget (each ``steps_per_epoch`` steps).
        extra_epochs: the most evaluations the plateau may add.
        steps_per_epoch: optimizer steps an evaluation.
        warmup_epochs: the schedule's warm-up, in evaluations (plateau evaluations inside it are not held).
        history: the rows of the run's ``history.csv`` (a resumed run): the evaluations already held; read from
            ``history_path`` when it is given instead.
        history_path: that file: read now, and again when training begins, after
            :class:`~recaptcha_tf.training.callbacks.SafeBackupAndRestore` (an earlier callback) has repaired it
            to the restored epoch (a row the kill cut off added back, rows past an older backup dropped), so the
            evaluations held are counted from the epochs the run really resumes after.
    """

    def __init__(
        self,
        planned_epochs: int,
        extra_epochs: int,
        steps_per_epoch: int,
        warmup_epochs: float,
        history=(),
        history_path: str | None = None,
    ):
        super().__init__()
        self.planned, self.extra, self.steps_per_epoch = planned_epochs, extra_epochs, steps_per_epoch
        self.warmup_epochs = warmup_epochs
        self.history_path = history_path
        self.schedule: HeldSchedule | None = None
        self._recount(self._rows() if history_path is not None else history)

    def _recount(self, history) -> None:
        self.held_epochs = 0
        for row in history:
            self._count(int(row["epoch"]), float(row.get("val_blank_fraction") or 0.0))

    def _rows(self) -> list[dict]:
        from recaptcha_tf.training.callbacks import read_history

        return read_history(self.history_path)[1]

    def on_train_begin(self, logs=None):
        if self.history_path is None:
            return
        self._recount(self._rows())
        if self.schedule is not None:
            self.schedule.held.assign(float(self.held_epochs * self.steps_per_epoch))

    def learning_rate_schedule(self, learning_rate: float, epochs: int) -> HeldSchedule:
        """The schedule to compile with (``Schedule.learning_rate_schedule``): :func:`cosine_schedule` over the
        planned evaluations, held back by the evaluations held so far."""
        base = cosine_schedule(learning_rate, epochs - self.extra, self.steps_per_epoch, self.warmup_epochs)
        self.schedule = HeldSchedule(base, self.held_epochs * self.steps_per_epoch)
        return self.schedule

    def _count(self, epoch: int, blank: float) -> bool:
        past_warmup = epoch + 1 - self.held_epochs > self.warmup_epochs
        if blank >= BLANK_PLATEAU and past_warmup and self.held_epochs < self.extra:
            self.held_epochs += 1
            return True
        return False

    def on_epoch_end(self, epoch, logs=None):
        blank = (logs or {}).get("val_blank_fraction")
        if blank is not None and self._count(epoch, float(blank)):
            if self.schedule is not None:
                self.schedule.held.assign(float(self.held_epochs * self.steps_per_epoch))
            log.info(
                "evaluation %d still reads %.0f%% of the validation images as blank: its steps are added to the "
                "run and held out of the learning-rate schedule (%d of at most %d so far)",
                epoch + 1,
                100 * float(blank),
                self.held_epochs,
                self.extra,
            )
        if epoch + 1 - self.held_epochs >= self.planned:
            self.model.stop_training = True
