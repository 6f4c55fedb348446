"""Abstention: answering only when the model is sure enough (``--min-confidence``).

* A text reading's confidence is the product of its characters' probabilities; below the threshold the reading is
  kept but marked ``"accepted": false`` (the caller decides: skip it, or ask a person).
* A classifier whose best *object* class (any class but the background class, ``other`` for tiles) scores below the
  threshold answers the background class instead: in a 3x3 challenge such a tile is not selected. Without a
  background class the answer is ``None``.

The rule is written once, here: :func:`abstaining_argmax` on probability arrays (the evaluation report, the
challenge score, the threshold chosen on the validation split) and :func:`apply_min_confidence` on predictions;
:func:`grid_rule` says how a grid challenge picks its cells with a model's stored thresholds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BACKGROUND_CLASS = "other"
BACKGROUND_CLASSES = (BACKGROUND_CLASS, "none", "background")  # catch-all class names, compared in lower case


def background_index(class_names: Sequence[str]) -> int | None:
    """Index of the catch-all class (``other``, ``none`` or ``background``, any case) in ``class_names``; or None."""
    lowered = [str(n).lower() for n in class_names]
    return next((lowered.index(n) for n in BACKGROUND_CLASSES if n in lowered), None)


def abstaining_argmax(probs, background: int | None, min_confidence: float | None) -> np.ndarray:
    """Class indices answered under ``--min-confidence``: each row's best object class, or ``background`` where it
    scores below ``min_confidence``.

    Args:
        probs: ``(N, C)`` class probabilities.
        background: the background class's column (:func:`background_index`); ``None``: no background class, every
            row answers its arg-max and ``min_confidence`` only marks (``-1``) the rows below it.
        min_confidence: the threshold (``None``: the plain arg-max).

    Returns:
        ``(N,)`` int class indices (``-1`` for an unsure row when there is no background class).
    """
    probs = np.asarray(probs, dtype=float)
    if min_confidence is None:
        return probs.argmax(axis=1)
    objects = probs.copy()
    if background is not None:
        objects[:, background] = -1.0
    best = objects.argmax(axis=1)
    fallback = -1 if background is None else background
    return np.where(objects.max(axis=1) >= min_confidence, best, fallback)


def text_confidence(confidences: Sequence[float]) -> float:
    """One reading's confidence: the product of its characters' probabilities (0 for an empty reading)."""
    return float(np.prod(confidences)) if len(confidences) else 0.0


def best_object_class(top_k: Sequence, background: str = BACKGROUND_CLASS) -> tuple[str | None, float]:
    """The most probable class that is not ``background``, and its probability, from ``(name, prob)`` pairs."""
    for name, prob in top_k:
        if name != background:
            return name, float(prob)
    return None, 0.0


def resolve_min_confidence(given, stored: float | None) -> float | None:
    """The threshold to use: ``given`` (a number), none for ``"none"``/``None`` given explicitly as ``"none"``, and
    the model's ``stored`` default when ``given`` is ``None`` or ``"model"``."""
    if given in (None, "model"):
        return stored
    if isinstance(given, str) and given.lower() == "none":
        return None
    return float(given)


def abstention_top_k(top_k: int, min_confidence: float | None) -> int:
    """How many classes to predict so that :func:`apply_min_confidence` sees each image's best object class: two
    or more with a threshold (only one class is the background), ``top_k`` without one."""
    return max(int(top_k), 2) if min_confidence is not None else int(top_k)


def apply_min_confidence(
    results: list[dict], min_confidence: float | None, names: Sequence[str], top_k: int | None = None
) -> list[dict]:
    """Mark or replace the answers below ``min_confidence`` in :func:`recaptcha_tf.inference.predictor.predict`'s
    results (in place; returned). Text results always get ``text_confidence``; with a threshold they get
    ``accepted``. Single-label classifier results with a threshold get ``abstained``: when the best object class
    scores below it, ``label`` becomes the background class (``None`` when the model has none) and ``confidence``
    the background class's probability (``None`` when it is not among the predicted top classes).

    Predict with :func:`abstention_top_k` classes (the best object class must be among them) and pass the
    ``top_k`` asked for: each ``top_k`` list is cut to it after the decision."""
    index = background_index(names)
    background = None if index is None else names[index]
    for r in results:
        if "error" in r:
            continue
        if "text" in r:
            if "text_confidence" not in r:  # results decoded by this version carry it unrounded
                r["text_confidence"] = text_confidence(r.get("confidence") or [])
            if min_confidence is not None:
                r["accepted"] = r["text_confidence"] >= min_confidence
        elif min_confidence is not None and "top_k" in r and "labels" not in r:
            name, prob = best_object_class(r["top_k"], background or "")
            r["abstained"] = prob < min_confidence
            if r["abstained"]:
                r["label"] = background
                r["confidence"] = next((float(p) for n, p in r["top_k"] if n == background), None)
            elif r["label"] == background:  # the background class wins only below the threshold
                r["label"], r["confidence"] = name, prob
        if top_k is not None and "top_k" in r:
            r["top_k"] = r["top_k"][:top_k]
    return results


def grid_rule(info) -> tuple[float | None, float | None, str]:
    """How a grid challenge picks cells with this model: ``(threshold, min_confidence, words)`` for
    :func:`~recaptcha_tf.evaluation.challenge.pick_cells`. A multi-label model's sigmoid threshold; else a stored
    grid challenge threshold on the target's probability; else the arg-max class, with the stored
    ``--min-confidence`` (a cell whose best object class scores below it is not picked)."""
    if info.kind == "sigmoid":
        return info.threshold, None, f"probability >= {info.threshold:g}"
    if info.challenge_threshold is not None:
        return info.challenge_threshold, None, f"target probability >= {info.challenge_threshold:g}"
    if info.min_confidence is not None:
        return None, info.min_confidence, f"arg-max class, best object class >= {info.min_confidence:g}"
    return None, None, "arg-max class"
