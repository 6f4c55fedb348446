"""Calibration of single-label classifiers: temperature scaling, expected calibration error, the reliability diagram,
the background false-positive rate, and the abstention threshold (``--min-confidence``).

* :func:`fit_temperature` finds the ``T`` that minimises the negative log-likelihood of ``softmax(log p / T)`` on the
  validation split (Guo et al., 2017); it never changes the arg-max.
* :func:`reliability` bins the top-1 confidence into equal-width bins and gives the expected calibration error
  (ECE: the bins' |accuracy - confidence| weighted by their share of images).
* :func:`background_false_positive_rate`: the share of background (``other``) tiles that score at or above 0.7 for
  some object class. In a 3x3 challenge such a tile is selected and the whole challenge fails.
* :func:`choose_min_confidence`: the threshold below which a tile is answered ``other``, chosen on the validation
  split as the one with the best macro-F1 (ties: the lower threshold).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recaptcha_tf.evaluation.metrics import macro_f1
from recaptcha_tf.inference.abstention import abstaining_argmax, background_index

BACKGROUND_SCORE = 0.7  # a background tile scoring this much for an object class counts as a false positive


def rescale(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / temperature)`` row by row, ``(N, C)``."""
    logits = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-7, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def negative_log_likelihood(probs: np.ndarray, labels: Sequence[int]) -> float:
    probs = np.asarray(probs)
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(probs)), np.asarray(labels)], 1e-7, 1.0))))


def fit_temperature(probs: np.ndarray, labels: Sequence[int]) -> float:
    """The temperature in ``[0.05, 20]`` that minimises the NLL of the rescaled ``probs`` ``(N, C)`` on ``labels``."""
    from scipy.optimize import minimize_scalar

    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(rescale(probs, float(np.exp(log_t))), labels),
        bounds=(np.log(0.05), np.log(20.0)),
        method="bounded",
    )
    return float(np.exp(result.x))


def reliability(probs: np.ndarray, labels: Sequence[int], bins: int = 15) -> dict:
    """Top-1 confidence against accuracy in ``bins`` equal-width bins.

    Returns:
        ``{"ece", "bins": [{"low", "high", "count", "confidence", "accuracy"}]}`` (empty bins left out).
    """
    probs, labels = np.asarray(probs), np.asarray(labels)
    confidence, right = probs.max(axis=1), probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows, ece = [], 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high) if low > 0 else (confidence <= high)
        if not inside.any():
            continue
        conf, acc = float(confidence[inside].mean()), float(right[inside].mean())
        ece += inside.mean() * abs(acc - conf)
        rows.append(
            {"low": float(low), "high": float(high), "count": int(inside.sum()), "confidence": conf, "accuracy": acc}
        )
    return {"ece": float(ece), "bins": rows}


def background_false_positive_rate(
    probs: np.ndarray, labels: Sequence[int], class_names: Sequence[str], score: float = BACKGROUND_SCORE
) -> float | None:
    """Share of background tiles whose best object class scores ``score`` or more; ``None`` without ``other``."""
    b = background_index(class_names)
    labels = np.asarray(labels)
    if b is None or not (labels == b).any():
        return None
    objects = np.delete(np.asarray(probs)[labels == b], b, axis=1)
    return float((objects.max(axis=1) >= score).mean())


def abstain(probs: np.ndarray, class_names: Sequence[str], min_confidence: float) -> np.ndarray:
    """Predicted class indices when a tile whose best object class scores below ``min_confidence`` is the
    background class (as :func:`recaptcha_tf.inference.abstention.apply_min_confidence` answers)."""
    b = background_index(class_names)
    return np.asarray(probs).argmax(axis=1) if b is None else abstaining_argmax(probs, b, min_confidence)


def choose_min_confidence(
    probs: np.ndarray, labels: Sequence[int], class_names: Sequence[str], candidates=np.arange(0.0, 0.96, 0.05)
) -> dict:
    """The abstention threshold with the best macro-F1 on (validation) ``probs``; ``None`` without ``other``.

    Returns:
        ``{"min_confidence", "macro_f1", "macro_f1_without"}``.
    """
    without = macro_f1(np.asarray(probs).argmax(axis=1), labels)
    if background_index(class_names) is None:
        return {"min_confidence": None, "macro_f1": without, "macro_f1_without": without}
    scored = [(macro_f1(abstain(probs, class_names, float(t)), labels), -float(t)) for t in candidates]
    best, negative = max(scored)
    return {"min_confidence": round(-negative, 2), "macro_f1": best, "macro_f1_without": without}
