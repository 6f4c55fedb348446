"""Matplotlib figures for notebooks, reports and TensorBoard (Agg backend, no display needed)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save_figure(fig, path: str, dpi: int = 100) -> str:
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def figure_to_array(fig, dpi: int = 80) -> np.ndarray:
    """Render a figure to a ``uint8`` RGB array ``(H, W, 3)`` (for ``tf.summary.image``) and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    from PIL import Image

    return np.array(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def prediction_grid(
    images: Sequence[np.ndarray],
    truths: Sequence[str] | None,
    predictions: Sequence[str],
    confidences: Sequence[float] | None = None,
    columns: int = 4,
    title: str | None = None,
):
    """A grid of images titled ``prediction (confidence)``; wrong ones in red and marked ``x``.

    Args:
        images: ``uint8`` arrays ``(H, W, C)``.
        truths: true labels, or ``None`` when unknown.
        predictions: predicted labels.
        confidences: probability of each prediction in ``[0, 1]``.
    """
    n = len(images)
    columns = max(1, min(columns, n))
    rows = max(1, int(np.ceil(n / columns)))
    h, w = images[0].shape[:2]
    cell_w = 2.6 if w / h > 2 else 1.9
    fig, axes = plt.subplots(rows, columns, figsize=(cell_w * columns, (cell_w * h / w + 0.5) * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, ax in enumerate(axes.ravel()[:n]):
        img = images[i]
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None)
        wrong = truths is not None and truths[i] != predictions[i]
        label = str(predictions[i])
        if confidences is not None:
            label += f" ({confidences[i]:.2f})"
        if truths is not None:
            label = (f"x {label}\ntrue: {truths[i]}") if wrong else label
        ax.set_title(label, fontsize=8, color="red" if wrong else "black")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_matrix_figure(matrix: Sequence[Sequence[int]], class_names: Sequence[str], normalize: bool = True):
    """Confusion matrix heat map: rows are true classes, columns predictions (row-normalised)."""
    cm = np.asarray(matrix, dtype=float)
    shown = cm / np.maximum(cm.sum(1, keepdims=True), 1) if normalize else cm
    k = len(class_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * k, 0.8 + 0.5 * k))
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.set_xticks(range(k), class_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if shown[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def class_counts_figure(counts: dict[str, Sequence[int]], class_names: Sequence[str]):
    """Grouped bar chart of images per class, one bar group per subset (e.g. before/after balancing)."""
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(class_names)), 3.5))
    width = 0.8 / max(1, len(counts))
    x = np.arange(len(class_names))
    for i, (name, values) in enumerate(counts.items()):
        ax.bar(x + i * width, values, width, label=name)
    ax.set_xticks(x + 0.4 - width / 2, class_names, rotation=45, ha="right")
    ax.set_ylabel("images")
    ax.legend()
    fig.tight_layout()
    return fig
