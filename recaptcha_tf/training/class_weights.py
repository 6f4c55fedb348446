"""Per-class loss weights for ``train --class-weight``: ``balanced``, or named weights such as ``other=3``.

``balanced`` weighs each class by its inverse training frequency instead of oversampling
(:func:`recaptcha_tf.data.balance.class_weights`). Named weights (``NAME=W[,NAME=W...]``) multiply the loss of the
named classes' training images by ``W`` (every other class 1) and keep the task's default oversampling: a lever for
a class that costs more when missed, e.g. ``other=3`` for background tiles that a challenge must not select.
Both become per-image weights on the training batches (:func:`weigh_by_class`): each image weighs what its label's
class weighs, the class read from the label alone, also where the target packs the teachers' probabilities beside
it (distillation). Keras' own ``fit(class_weight=...)`` would take the arg-max of the whole packed target, which
points into the teachers' half once mixup or cutmix blends it.
"""

from __future__ import annotations

from recaptcha_tf.training.phases import TrainingConfigError

KEYWORDS = ("none", "balanced")


def parse_class_weight(option: str) -> str | dict[str, float]:
    """``"none"``, ``"balanced"``, or ``"NAME=W[,NAME=W...]"`` as ``{name: weight}``.

    Raises:
        TrainingConfigError: not one of those forms, a weight that is not a positive number, or a name twice.
    """
    option = str(option).strip()
    if option in KEYWORDS:
        return option
    weights: dict[str, float] = {}
    for part in option.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if not sep or not name or not weight > 0 or weight == float("inf"):
            raise TrainingConfigError(
                f"--class-weight takes none, balanced or NAME=WEIGHT[,NAME=WEIGHT...] with positive weights "
                f"(e.g. other=3), not {option!r}."
            )
        if name in weights:
            raise TrainingConfigError(f"--class-weight names {name!r} twice.")
        weights[name] = weight
    return weights


def loss_class_weights(option: str, split) -> dict[int, float] | None:
    """``{class index: weight}`` for every class (what :func:`weigh_by_class` applies) for ``--class-weight`` on
    ``split`` (a :class:`recaptcha_tf.data.splits.Split`); ``None`` for ``"none"``.

    Raises:
        TrainingConfigError: a named class that the data does not have.
    """
    parsed = parse_class_weight(option)
    if parsed == "none":
        return None
    if parsed == "balanced":
        from recaptcha_tf.data.balance import class_weights

        return class_weights(split)
    names = list(split.class_names)
    unknown = [name for name in parsed if name not in names]
    if unknown:
        raise TrainingConfigError(
            f"--class-weight names {', '.join(map(repr, unknown))}, not a class of this data ({', '.join(names)})."
        )
    return {i: float(parsed.get(name, 1.0)) for i, name in enumerate(names)}


def weigh_by_class(dataset, weights: dict[int, float], num_classes: int):
    """``(images, targets)`` batches -> ``(images, targets, weights)``: ``(B,)`` float32 per-image loss weights.

    Args:
        dataset: batches of images and targets: ``(B,)`` integer labels, or ``(B, C)`` one-hot or mixed labels, or
            distillation's ``(B, 2C)`` ``[one-hot, teacher probabilities]``.
        weights: ``{class index: weight}`` for every class (:func:`loss_class_weights`).
        num_classes: ``C``; an image's class is the arg-max of its target's first ``C`` columns.
    """
    import tensorflow as tf

    table = tf.constant([float(weights[i]) for i in range(num_classes)], tf.float32)

    def add_weights(images, targets):
        if targets.shape.rank == 1:
            index = tf.cast(targets, tf.int32)
        else:
            index = tf.argmax(targets[:, :num_classes], axis=-1, output_type=tf.int32)
        return images, targets, tf.gather(table, index)

    return dataset.map(add_weights, num_parallel_calls=tf.data.AUTOTUNE)
