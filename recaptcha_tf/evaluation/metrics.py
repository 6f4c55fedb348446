"""Metrics and evaluation reports for classifiers and text readers.

Classification metrics come from scikit-learn; edit distances from rapidfuzz.
Reports are plain dicts, written as JSON by :func:`write_report`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np


def top_k_accuracy(probs: np.ndarray, labels: Sequence[int], k: int) -> float:
    """Fraction of rows whose true label is among the ``k`` highest scores."""
    probs = np.asarray(probs)
    k = min(k, probs.shape[1])
    top = np.argsort(-probs, axis=1)[:, :k]
    return float(np.mean([lab in row for lab, row in zip(labels, top)]))


def macro_f1(predicted: Sequence[int], labels: Sequence[int]) -> float:
    """Macro-F1 of ``predicted`` against ``labels`` (class indices), averaged over the classes present in ``labels``,
    so a held-out folder without some class is not penalised for it (a class predicted but absent still costs the
    present classes their precision)."""
    from sklearn import metrics

    labels = np.asarray(labels, dtype=int)
    present = sorted(set(labels.tolist()))
    if not present:
        return 0.0
    return float(metrics.f1_score(labels, np.asarray(predicted, dtype=int), labels=present, average="macro",
                                  zero_division=0))  # fmt: skip


def classification_report(probs: np.ndarray, labels: Sequence[int], class_names: Sequence[str]) -> dict:
    """Single-label report.

    Args:
        probs: ``(N, C)`` class probabilities.
        labels: ``N`` true class indices.
        class_names: ``C`` names.

    Returns:
        dict with ``n``, ``top1``, ``top3``, ``balanced_accuracy``, ``macro_f1``,
        ``per_class`` (precision/recall/f1/support per class name),
        ``confusion_matrix`` (rows true, columns predicted) and ``class_names``.
    """
    from sklearn import metrics

    probs = np.asarray(probs)
    labels = np.asarray(labels, dtype=int)
    k = len(class_names)
    pred = probs.argmax(1)
    present = sorted(set(labels.tolist()))
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        labels, pred, labels=list(range(k)), zero_division=0
    )
    # Macro averages run over the classes present in the evaluated data (macro_f1), so a
    # held-out folder without some class is not penalised for it.
    balanced = float(np.mean(recall[present])) if present else 0.0
    return {
        "n": int(len(labels)),
        "top1": float(np.mean(pred == labels)),
        "top3": top_k_accuracy(probs, labels, 3),
        "balanced_accuracy": balanced,
        "macro_f1": macro_f1(pred, labels),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": metrics.confusion_matrix(labels, pred, labels=list(range(k))).tolist(),
        "class_names": list(class_names),
    }


def multilabel_report(
    probs: np.ndarray, targets: np.ndarray, class_names: Sequence[str], threshold: float = 0.5
) -> dict:
    """Multi-label report: Hamming accuracy, subset accuracy, top-1, per-label P/R/F1.

    Args:
        probs: ``(N, C)`` sigmoid scores.
        targets: ``(N, C)`` multi-hot truth.
        threshold: a label is predicted when its score is at least this.
    """
    from sklearn import metrics

    probs = np.asarray(probs)
    targets = np.asarray(targets).astype(int)
    pred = (probs >= threshold).astype(int)
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        targets, pred, average=None, zero_division=0
    )
    top = probs.argmax(1)
    return {
        "n": int(len(targets)),
        "threshold": float(threshold),
        "hamming_accuracy": float(np.mean(pred == targets)),
        "subset_accuracy": float(np.mean(np.all(pred == targets, axis=1))),
        "top1": float(np.mean(targets[np.arange(len(top)), top] == 1)),
        "macro_f1": float(np.mean(f1)),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(class_names)
        },
        "class_names": list(class_names),
    }


def edit_distance(reference: str, hypothesis: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions each cost 1)."""
    from rapidfuzz.distance import Levenshtein

    return int(Levenshtein.distance(reference, hypothesis))


def character_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus CER: total edit distance divided by total reference length."""
    edits = sum(edit_distance(r, h) for r, h in zip(references, hypotheses))
    chars = sum(len(r) for r in references)
    return edits / max(chars, 1)


def text_report(
    references: Sequence[str],
    hypotheses: Sequence[str],
    confidences: Sequence[Sequence[float]] | None = None,
    names: Sequence[str] | None = None,
    worst: int = 20,
) -> dict:
    """Text report: ``n``, ``exact_match``, ``cer``, mean confidence and the worst examples.

    Examples are ranked by edit distance, then by lowest confidence.
    """
    n = len(references)
    distances = [edit_distance(r, h) for r, h in zip(references, hypotheses)]
    mean_conf = [float(np.mean(c)) if c else 0.0 for c in (confidences or [[]] * n)]
    order = sorted(range(n), key=lambda i: (-distances[i], mean_conf[i]))
    confusions: dict[str, int] = {}
    for r, h in zip(references, hypotheses):
        if len(r) == len(h):
            for a, b in zip(r, h):
                if a != b:
                    confusions[f"{a}->{b}"] = confusions.get(f"{a}->{b}", 0) + 1
    return {
        "n": n,
        "exact_match": float(np.mean([r == h for r, h in zip(references, hypotheses)])) if n else 0.0,
        "cer": character_error_rate(references, hypotheses),
        "mean_confidence": float(np.mean(mean_conf)) if n else 0.0,
        "confusions": dict(sorted(confusions.items(), key=lambda kv: -kv[1])[:20]),
        "worst": [
            {
                "name": names[i] if names else str(i),
                "truth": references[i],
                "prediction": hypotheses[i],
                "edit_distance": distances[i],
                "confidence": [round(c, 4) for c in (confidences[i] if confidences else [])],
            }
            for i in order[:worst]
        ],
    }


ABSTENTION_THRESHOLDS = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)


def coverage_precision(
    correct: Sequence[bool], confidence: Sequence[float], thresholds: Sequence[float] = ABSTENTION_THRESHOLDS,
    target: float = 0.99,
) -> dict:  # fmt: skip
    """How abstaining below a confidence threshold trades coverage for precision (``--min-confidence``).

    Args:
        correct: per image, whether the answer is right.
        confidence: per image, the answer's confidence in ``[0, 1]``.
        thresholds: the rows of the table.
        target: the precision the summary line asks for.

    Returns:
        ``{"rows": [{"threshold", "coverage", "precision", "accepted"}], "target_precision", "threshold_for_target",
        "coverage_at_target"}``: coverage is the share of images answered (confidence at or above the threshold),
        precision the share of those answered right (``None`` when none is). ``threshold_for_target`` is the lowest
        confidence (of those seen) at or above which answers are right ``target`` of the time; ``None`` when no
        threshold reaches it.
    """
    correct = np.asarray(correct, dtype=bool)
    confidence = np.asarray(confidence, dtype=float)
    rows = []
    for threshold in thresholds:
        accepted = confidence >= threshold
        rows.append(
            {
                "threshold": float(threshold),
                "coverage": float(accepted.mean()) if len(accepted) else 0.0,
                "precision": float(correct[accepted].mean()) if accepted.any() else None,
                "accepted": int(accepted.sum()),
            }
        )
    best = None
    for threshold in np.unique(confidence):  # ascending: the first that reaches the target keeps the most images
        accepted = confidence >= threshold
        if correct[accepted].mean() >= target:
            best = float(threshold)
            break
    coverage = float((confidence >= best).mean()) if best is not None else 0.0
    return {"rows": rows, "target_precision": target, "threshold_for_target": best, "coverage_at_target": coverage}


def character_confusions(references: Sequence[str], hypotheses: Sequence[str]) -> dict[tuple[str, str], int]:
    """Substituted characters over a corpus: ``{(true char, predicted char): count}``, most frequent first.

    Each pair of strings is aligned by a Levenshtein alignment (rapidfuzz
    ``editops``), so a prediction with a dropped or extra character still
    counts its substitutions; insertions and deletions are not confusions.
    """
    from rapidfuzz.distance import Levenshtein

    counts: dict[tuple[str, str], int] = {}
    for ref, hyp in zip(references, hypotheses):
        for op in Levenshtein.editops(ref, hyp):
            if op.tag == "replace":
                key = (ref[op.src_pos], hyp[op.dest_pos])
                counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def confusable_pairs(references: Sequence[str], hypotheses: Sequence[str], top: int = 10) -> list[dict]:
    """The character pairs a text reader mixes up most, in either direction (``0``/``o``, ``l``/``1`` ...).

    Returns:
        Up to ``top`` rows, most frequent first: ``pair`` (``"a/b"``, sorted),
        ``a_read_as_b`` and ``b_read_as_a`` counts, ``total`` and ``share`` (of all
        substitutions in the corpus).
    """
    confusions = character_confusions(references, hypotheses)
    total = sum(confusions.values())
    pairs: dict[tuple[str, str], list[int]] = {}
    for (t, p), n in confusions.items():
        a, b = sorted((t, p))
        pairs.setdefault((a, b), [0, 0])[0 if (t, p) == (a, b) else 1] += n
    rows = [
        {"pair": f"{a}/{b}", "a_read_as_b": ab, "b_read_as_a": ba, "total": ab + ba, "share": (ab + ba) / total}
        for (a, b), (ab, ba) in pairs.items()
    ]
    return sorted(rows, key=lambda r: (-r["total"], r["pair"]))[:top]


def markdown_table(rows: Sequence[dict], columns: Sequence[str] | None = None, digits: int = 4) -> str:
    """Rows of dicts as a Markdown table (for ``IPython.display.Markdown`` in notebooks).

    Columns default to the keys of the rows in first-seen order; floats are
    rounded to ``digits`` significant digits, missing values left empty.
    """
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))

    def cell(v):
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:.{digits}g}"
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write_report(report: dict, path: str) -> str:
    """Write ``report`` as JSON to a temporary file beside ``path``, then rename it into place."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.partial{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=2)
    os.replace(tmp, path)
    return path
