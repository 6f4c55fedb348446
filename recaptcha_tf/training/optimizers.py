"""Optimizers and learning-rate schedules of the trainers and the tuner."""

from __future__ import annotations

import keras


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
