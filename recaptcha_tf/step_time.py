"""How long one optimizer step takes on this machine, so that a step budget can be held to a time budget.

The same text run costs 0.14 s a step on a CPU with bfloat16 instructions and 0.48 s on one without
(2 cores each): a fixed number of steps that fits 20 minutes on one machine takes an hour on the other.
:func:`seconds_per_step` times a few steps of a throwaway copy of the model on the real input pipeline, and
:func:`steps_within` cuts a budget to what fits.
"""

from __future__ import annotations

import time

import numpy as np


def seconds_per_step(model, loss, dataset, steps: int = 6, warm_up: int = 2) -> float:
    """Median wall seconds of one training step (forward, backward, Adam update, next batch) on this machine.

    A copy of ``model`` (same layers and precision policy, its own fresh weights; ``model`` itself is not
    touched) is compiled with Adam and ``loss`` and trained on ``warm_up + steps`` batches of ``dataset``;
    the ``warm_up`` steps, which trace and compile the step function and fill the input pipeline, are not timed.

    Args:
        model: the Keras model about to be trained.
        loss: its training loss.
        dataset: the training ``tf.data.Dataset`` of ``(inputs, targets)`` batches.
        steps: timed steps.
        warm_up: untimed first steps.
    """
    import keras

    probe = keras.models.clone_model(model)
    probe.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss)
    seconds = []
    start = time.perf_counter()
    for i, (inputs, targets) in enumerate(dataset.take(warm_up + steps)):
        probe.train_on_batch(inputs, targets)
        now = time.perf_counter()
        if i >= warm_up:
            seconds.append(now - start)
        start = now
    if not seconds:
        raise ValueError(f"The training set gave fewer than {warm_up + 1} batches to time a step on.")
    return float(np.median(seconds))


def steps_within(budget_steps: int, step_seconds: float, minutes: float | None) -> int:
    """The most steps, at most ``budget_steps``, that take at most ``minutes`` at ``step_seconds`` each
    (all of them when ``minutes`` is ``None`` or 0)."""
    if not minutes:
        return budget_steps
    return max(1, min(budget_steps, int(minutes * 60 / step_seconds)))
