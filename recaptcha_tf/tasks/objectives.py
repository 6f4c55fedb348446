"""What a run trains against: the loss and the compiled metrics for a model's head kind.

* ``classifier`` (tiles, chars): categorical cross-entropy on one-hot targets (with
  ``label_smoothing``), sparse categorical cross-entropy on class indices, or, for a
  sigmoid multi-label head, binary cross-entropy with Hamming accuracy at ``threshold``.
* ``ctc`` (text): ``keras.losses.CTC`` on per-frame logits.
* ``multihead`` (text): cross-entropy per character position with label smoothing 0.1.

Text metrics (exact match, CER, blank fraction) need decoding, so they come from a
callback (:class:`recaptcha_tf.training.TextMetrics`), not from ``compile``.
Both trainers ask here; the tuner's searchable losses are in ``tuning/hypermodel.py``.
Keras is imported inside the function, so importing this module stays cheap.
"""

from __future__ import annotations

MULTIHEAD_LABEL_SMOOTHING = 0.1


def training_objective(
    head: str,
    *,
    multi_label: bool = False,
    one_hot: bool = True,
    label_smoothing: float = 0.0,
    threshold: float = 0.5,
) -> tuple:
    """``(loss, metrics)`` for ``model.compile`` (metrics are templates: compile fresh copies of them).

    Args:
        head: the model's head kind (``recaptcha_tf.models.registry.model_head``).
        multi_label: classifier with one sigmoid per class (multi-hot targets).
        one_hot: classifier targets are one-hot vectors (``False``: class indices).
        label_smoothing: for one-hot and multi-hot classifier targets.
        threshold: probability above which a multi-label class counts as present.
    """
    import keras

    if head == "ctc":
        return keras.losses.CTC(), []
    if head == "multihead":
        return keras.losses.CategoricalCrossentropy(label_smoothing=MULTIHEAD_LABEL_SMOOTHING), []
    if head != "classifier":
        raise ValueError(f"Unknown head kind {head!r}.")
    if multi_label:
        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing), [
            keras.metrics.BinaryAccuracy(threshold=threshold, name="hamming_accuracy")
        ]
    if one_hot:
        return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing), [
            keras.metrics.CategoricalAccuracy(name="accuracy")
        ]
    return keras.losses.SparseCategoricalCrossentropy(), [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
