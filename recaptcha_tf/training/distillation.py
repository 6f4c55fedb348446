"""Knowledge distillation: a student trained on the averaged probabilities of teacher runs (``train --teacher RUN``).

As in Keras' knowledge-distillation example (Hinton et al., 2015), the student's loss mixes the hard labels and the
teachers' soft targets softened by a temperature ``T``::

    loss = alpha * CE(labels, student) + (1 - alpha) * T**2 * KL(softmax(log teacher / T) || softmax(log student / T))

Our classifiers output probabilities, so ``log p`` stands for the logits (they differ by a constant per image, which
the softmax ignores). The teachers' probabilities are computed once per image before training (each teacher averaged
over the tile and its mirror image, then over the teachers), and travel with the labels as one target
``[one-hot (C), teacher probabilities (C)]``: the tf.data pipeline, MixUp/CutMix and the distribution strategy treat
it as any target. :class:`PackedAccuracy` reads the one-hot half, so ``val_accuracy`` means what it means elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from recaptcha_tf.layers import PACKAGE

log = logging.getLogger("recaptcha_tf")

DEFAULT_ALPHA = 0.3  # weight of the hard labels; the teachers' soft targets get the rest
DEFAULT_TEMPERATURE = 2.0


class TeacherError(ValueError):
    """A teacher that cannot teach this student: not a classifier, or other classes (a user error)."""


def _soft(probabilities, temperature: float):
    logits = ops.log(ops.clip(probabilities, 1e-7, 1.0)) / temperature
    return ops.softmax(logits, axis=-1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class DistillationLoss(keras.losses.Loss):
    """Hard-label cross-entropy plus the temperature-softened KL divergence to the teachers' probabilities.

    Args:
        num_classes: ``C``; ``y_true`` is ``(B, 2C)``: one-hot labels, then the teachers' probabilities.
        alpha: weight of the hard labels (``0``: soft targets only).
        temperature: ``T`` of the soft targets; the KL term is scaled by ``T**2`` so its gradients keep their size.
        label_smoothing: of the hard labels.
    """

    def __init__(self, num_classes, alpha=DEFAULT_ALPHA, temperature=DEFAULT_TEMPERATURE, label_smoothing=0.0, **kw):
        super().__init__(name=kw.pop("name", "distillation"), **kw)
        self.num_classes, self.alpha = int(num_classes), float(alpha)
        self.temperature, self.label_smoothing = float(temperature), float(label_smoothing)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        hard, teacher = y_true[:, : self.num_classes], y_true[:, self.num_classes :]
        ce = keras.losses.categorical_crossentropy(hard, y_pred, label_smoothing=self.label_smoothing)
        t = self.temperature
        target, student = _soft(teacher, t), _soft(y_pred, t)
        kl = ops.sum(target * (ops.log(ops.clip(target, 1e-7, 1.0)) - ops.log(ops.clip(student, 1e-7, 1.0))), -1)
        return self.alpha * ce + (1.0 - self.alpha) * (t**2) * kl

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "alpha": self.alpha,
            "temperature": self.temperature,
            "label_smoothing": self.label_smoothing,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class PackedAccuracy(keras.metrics.CategoricalAccuracy):
    """Categorical accuracy on the one-hot half of a ``[one-hot, teacher probabilities]`` target."""

    def __init__(self, num_classes, name="accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_classes = int(num_classes)

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(y_true[:, : self.num_classes], y_pred, sample_weight)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


def teacher_probabilities(teachers: Sequence[str], paths: Sequence[str], class_names: Sequence[str]) -> np.ndarray:
    """The teachers' averaged probabilities ``(N, C)`` for ``paths``, in the student's class order.

    Args:
        teachers: run folders or ``.keras`` files of single-label classifiers with the same classes (any order,
            any architecture or input size).
        paths: image files.
        class_names: the student's classes.

    Raises:
        TeacherError: a teacher with other classes, or not a single-label classifier.
    """
    from recaptcha_tf.inference.loading import load_model, model_info
    from recaptcha_tf.inference.predictor import predict_outputs

    total = np.zeros((len(paths), len(class_names)), dtype=np.float64)
    wanted = [n.lower() for n in class_names]
    for teacher in teachers:
        net = load_model(teacher)
        info = model_info(net)
        theirs = [n.lower() for n in info.names]
        if info.kind != "softmax" or sorted(theirs) != sorted(wanted):
            raise TeacherError(
                f"--teacher {teacher}: a {info.kind} model of classes {info.names}; the student needs a single-label "
                f"classifier of {list(class_names)}."
            )
        tta = "flip" if info.task == "tiles" else "none"
        probs = predict_outputs(net, list(paths), tta=tta)
        total += probs[:, [theirs.index(n) for n in wanted]]
        log.info("teacher %s: %d images read%s", teacher, len(paths), " with flip TTA" if tta == "flip" else "")
    return (total / len(teachers)).astype("float32")


def packed_targets(one_hot: np.ndarray, teacher: np.ndarray) -> np.ndarray:
    """``[one-hot, teacher probabilities]`` per image, ``(N, 2C)`` float32."""
    return np.concatenate([one_hot, teacher], axis=1).astype("float32")
