"""How long one optimizer step takes on this machine, so that a step budget can be held to a time budget.

The same text run costs 0.14 s a step on a CPU with bfloat16 instructions and 0.48 s on one without
(2 cores each): a fixed number of steps that fits 20 minutes on one machine takes an hour on the other.
:func:`seconds_per_step` times a few steps of a throwaway copy of the model on batches of the real input
pipeline, :func:`seconds_per_batch_read` times producing a batch (reading, decoding, augmenting), and
:func:`steps_within` (text: optimizer steps) and :func:`epochs_within` (tiles: epochs of a transfer recipe) cut a
budget to what fits; :func:`stored_measurement` gives a resumed run the measurement its first session made, so
its budget does not change.
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np

from recaptcha_tf.utils.run_folder import RunFolder

log = logging.getLogger("recaptcha_tf")


def seconds_per_step(model, loss, dataset, steps: int = 6, warm_up: int = 2) -> float:
    """Median wall seconds of one training step (forward, backward, Adam update) on this machine.

    A copy of ``model`` (same layers, precision policy and frozen layers, its own fresh weights; ``model``
    itself is not touched) is compiled with Adam and ``loss`` and trained on ``warm_up + steps`` batches of
    ``dataset``, read into memory first; the ``warm_up`` steps, which trace and compile the step function, are
    not timed. Reading the batches is not timed either: training reads its set from the cache after the first
    epoch, and the prefetched input pipeline runs beside the steps (timing the first, uncached reads made a
    tile fine-tuning step look 1.4x as long as it is).

    Args:
        model: the Keras model about to be trained.
        loss: its training loss.
        dataset: the training ``tf.data.Dataset`` of ``(inputs, targets)`` or ``(inputs, targets, sample_weights)``
            batches (``--class-weight``).
        steps: timed steps.
        warm_up: untimed first steps.
    """
    import keras

    from recaptcha_tf.training.callbacks import build_optimizer

    batches = list(dataset.take(warm_up + steps))
    if len(batches) <= warm_up:
        raise ValueError(f"The training set gave fewer than {warm_up + 1} batches to time a step on.")
    probe = keras.models.clone_model(model)
    _copy_trainable(model, probe)  # a clone rebuilt from config may lose a frozen nested model's flag (keras-hub)
    probe.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss)
    build_optimizer(probe)
    seconds = []
    for i, batch in enumerate(batches):  # (inputs, targets) or, with per-image weights, (inputs, targets, weights)
        start = time.perf_counter()
        probe.train_on_batch(*batch)
        if i >= warm_up:
            seconds.append(time.perf_counter() - start)
    return float(np.median(seconds))


def seconds_per_batch_read(dataset, batches: int = 4) -> float:
    """Median wall seconds to produce one batch of ``dataset`` (read, decode, resize, augment), on the cores the
    training steps also use."""
    seconds = []
    start = time.perf_counter()
    for _ in dataset.take(batches):
        now = time.perf_counter()
        seconds.append(now - start)
        start = now
    if not seconds:
        raise ValueError("The training set gave no batch to time.")
    return float(np.median(seconds))


def _copy_trainable(source, target) -> None:
    """Give ``target``'s layers (a clone of ``source``) the ``trainable`` flags of ``source``'s, nested ones too."""
    for original, copy in zip(source.layers, target.layers):
        copy.trainable = original.trainable
        if hasattr(original, "layers"):
            _copy_trainable(original, copy)


def time_budget_minutes(given, default) -> float:
    """The run's time budget in minutes: ``given`` (``--time-budget``) or the task's ``default``; 0 means no limit.

    Raises:
        ValueError: a negative, non-numeric or boolean budget.
    """
    minutes = default if given is None else given
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not minutes >= 0:
        raise ValueError(f"time_budget must be 0 (no limit) or positive minutes, got {minutes!r}.")
    return minutes


def steps_within(budget_steps: int, step_seconds: float, minutes: float | None) -> int:
    """The most steps, at most ``budget_steps``, that take at most ``minutes`` at ``step_seconds`` each
    (all of them when ``minutes`` is ``None`` or 0)."""
    if not minutes:
        return budget_steps
    return max(1, min(budget_steps, int(minutes * 60 / step_seconds)))


def epoch_seconds(steps_per_epoch: int, validation_steps: int, step_seconds: float, read_seconds: float) -> float:
    """Estimated wall seconds of one epoch: ``steps_per_epoch`` steps of ``step_seconds`` compute plus
    ``read_seconds`` to produce each batch, and ``validation_steps`` batches at a third of a step (a forward pass)."""
    return steps_per_epoch * (step_seconds + read_seconds) + validation_steps / 3 * step_seconds


def epochs_within(
    max_epochs: int,
    frozen_epochs: int,
    steps_per_epoch: int,
    validation_steps: int,
    frozen_step_seconds: float,
    step_seconds: float,
    minutes: float | None,
    read_seconds: float = 0.0,
) -> int:
    """The most epochs, at most ``max_epochs`` and the first ``frozen_epochs`` of them with the backbone frozen,
    whose training takes at most ``minutes``; always the frozen ones and at least one fine-tuning epoch
    (all ``max_epochs`` when ``minutes`` is ``None`` or 0).

    An epoch costs ``steps_per_epoch`` training steps, each ``frozen_step_seconds`` or ``step_seconds`` of
    compute plus ``read_seconds`` to produce its batch (decoding in the first epoch, augmentation in every one,
    on the same cores), and ``validation_steps`` batches of validation, counted as a third of a training step
    each (a forward pass). The estimate plans the schedule; :class:`recaptcha_tf.training.TimeBudget` stops a
    run whose epochs turn out longer.
    """
    if not minutes:
        return max_epochs
    frozen_epoch = epoch_seconds(steps_per_epoch, validation_steps, frozen_step_seconds, read_seconds)
    full_epoch = epoch_seconds(steps_per_epoch, validation_steps, step_seconds, read_seconds)
    fine_tune = int((minutes * 60 - frozen_epochs * frozen_epoch) / full_epoch)
    return frozen_epochs + max(1, min(max_epochs - frozen_epochs, fine_tune))


def replanned_epochs(
    epochs: int,
    frozen_epochs: int,
    steps_per_epoch: int,
    validation_steps: int,
    frozen_step_seconds: float,
    step_seconds: float,
    minutes: float,
    read_seconds: float,
    frozen_epoch_seconds: float,
) -> int:
    """The planned ``epochs`` (from :func:`epochs_within` with these step times), cut when phase 1 showed the
    estimate short: its epochs took ``frozen_epoch_seconds`` of wall time each against the estimate's frozen
    epoch, and the difference, spread over the epoch's training steps, is added to every step of the plan
    (what the estimate misses, the input pipeline and callbacks competing for the same cores, costs about the
    same per step frozen or not: on one MobileNetV2 run frozen steps took 0.78 s against 0.43 estimated and
    fine-tuning steps 1.2 s against 0.91). Never more epochs than planned.
    """
    estimate = epoch_seconds(steps_per_epoch, validation_steps, frozen_step_seconds, read_seconds)
    missed = max(0.0, frozen_epoch_seconds - estimate) / steps_per_epoch  # seconds a step the estimate missed
    step_times = (frozen_step_seconds, step_seconds, minutes, read_seconds + missed)
    return min(epochs, epochs_within(epochs, frozen_epochs, steps_per_epoch, validation_steps, *step_times))


def stored_measurement(out: str, key: str, **settings):
    """``key`` of the run's ``out/config.json``, written by an earlier session of the same run, when that session
    had the same ``settings`` (e.g. model, input size, batch size, precision); ``None`` when there is none."""
    stored = RunFolder(out).read_json(RunFolder.CONFIG)
    if not isinstance(stored, dict):
        return None
    same = all(stored.get(name) == json.loads(json.dumps(value)) for name, value in settings.items())
    return stored.get(key) if same else None


def recipe_epochs_within(
    net,
    loss,
    train_ds,
    out: str,
    settings: dict,
    max_epochs: int,
    freeze_epochs: int,
    unfreeze,
    steps: int,
    validation_steps: int,
    minutes: float,
) -> dict:
    """A transfer recipe's epochs cut to what takes at most ``minutes`` of training here: reading a batch of
    ``train_ds``, one step of ``net`` as phase 2 trains it (``unfreeze``: BatchNorm frozen) and one with the
    backbone frozen are timed (or taken from an earlier session of the run in ``out`` with the same ``settings``).
    Leaves the backbone frozen when ``freeze_epochs`` (phase 1 freezes it anyway).

    Returns:
        ``{"epochs", "step_seconds", "frozen_step_seconds", "read_seconds", "time_budget_minutes"}``.
    """
    from recaptcha_tf.models.finetune import freeze_backbone, unfreeze_backbone
    from recaptcha_tf.models.registry import model_blocks

    # rounded as config.json stores them, so that a resumed run computes the very same epochs
    keys = ("read_seconds", "step_seconds", "frozen_step_seconds")
    timing = {key: stored_measurement(out, key, **settings) for key in keys}
    if timing["read_seconds"] is None:
        timing["read_seconds"] = round(seconds_per_batch_read(train_ds), 4)
    if timing["step_seconds"] is None:
        if freeze_epochs:  # phase 2 as fit_in_phases sets it up: BatchNorm frozen, all or the top blocks trainable
            unfreeze_backbone(net, unfreeze, blocks=model_blocks(settings["model"]))
        timing["step_seconds"] = round(seconds_per_step(net, loss, train_ds), 4)
    if freeze_epochs:
        freeze_backbone(net)
    if timing["frozen_step_seconds"] is None:
        timing["frozen_step_seconds"] = (
            round(seconds_per_step(net, loss, train_ds), 4) if freeze_epochs else timing["step_seconds"]
        )
    step_seconds, frozen_step_seconds = timing["step_seconds"], timing["frozen_step_seconds"]
    epochs = epochs_within(
        max_epochs,
        freeze_epochs,
        steps,
        validation_steps,
        frozen_step_seconds,
        step_seconds,
        minutes,
        timing["read_seconds"],
    )
    log.log(
        logging.WARNING if epochs < max_epochs else logging.INFO,
        "%d of the recipe's %d epochs fit --time-budget %g minutes here (%.3f s a step, %.3f s frozen, %d steps "
        "an epoch, %.3f s to produce a batch)%s",
        epochs,
        max_epochs,
        minutes,
        step_seconds,
        frozen_step_seconds,
        steps,
        timing["read_seconds"],
        "; --epochs N runs exactly N" if epochs < max_epochs else "",
    )
    return dict(epochs=epochs, **timing, time_budget_minutes=minutes)
