"""Matplotlib figures for notebooks, reports and TensorBoard (Agg backend, no display needed)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


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
    scale: float = 1.0,
):
    """A grid of images titled ``prediction (confidence)``; wrong ones in red and marked ``x``.

    Args:
        images: ``uint8`` arrays ``(H, W, C)``.
        truths: true labels, or ``None`` when unknown.
        predictions: predicted labels.
        confidences: probability of each prediction in ``[0, 1]``.
        scale: size of each cell relative to the default (about 1.9 inches wide).
    """
    n = len(images)
    columns = max(1, min(columns, n))
    rows = max(1, int(np.ceil(n / columns)))
    h, w = images[0].shape[:2]
    cell_w = (2.6 if w / h > 2 else 1.9) * scale
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
                ax.text(
                    j,
                    i,
                    int(cm[i, j]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if shown[i, j] > 0.5 else "black",
                )
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


def load_thumbnails(paths: Sequence[str], size: tuple[int, int] = (64, 64), channels: int = 3) -> list[np.ndarray]:
    """Read image files (or bytes) with Pillow, resized to ``size`` = (height, width), as ``uint8`` arrays.

    For display only: RGBA, palette and 16-bit images are converted; ``channels``
    is 3 (RGB) or 1 (grayscale, shape ``(H, W, 1)``).
    """
    from PIL import Image

    out = []
    for p in paths:
        with Image.open(p if isinstance(p, str) else io.BytesIO(bytes(p))) as im:
            if im.mode == "I;16":
                im = Image.fromarray((np.asarray(im, dtype=np.uint16) >> 8).astype(np.uint8))
            im = im.convert("L" if channels == 1 else "RGB").resize((size[1], size[0]), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
        out.append(arr[..., None] if channels == 1 else arr)
    return out


def image_grid(
    paths: Sequence[str],
    titles: Sequence[str],
    columns: int = 8,
    size: tuple[int, int] = (64, 64),
    channels: int = 3,
    title: str | None = None,
    scale: float = 1.0,
):
    """A grid of image files, each titled (e.g. with its class or label).

    Args:
        paths: image files (or bytes).
        titles: one title per image.
        size: display size (height, width) of each image.
    """
    if not len(paths):
        raise ValueError("No images to show.")
    return prediction_grid(
        load_thumbnails(paths, size, channels),
        None,
        [str(t) for t in titles],
        columns=columns,
        title=title,
        scale=scale,
    )


def class_sample_grid(
    paths: Sequence[str],
    labels: Sequence[int],
    class_names: Sequence[str],
    per_class: int = 4,
    size: tuple[int, int] = (64, 64),
    seed: int = 0,
    channels: int = 3,
    columns: int | None = None,
    scale: float = 1.0,
):
    """``per_class`` seeded random images of every class, titled with the class name.

    By default one row per class (a class with fewer images gets blank cells);
    ``columns`` instead fills rows of that many images, class after class, which
    suits many classes (36 characters). ``scale`` sizes the cells (see :func:`prediction_grid`).
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    blank = np.full((*size, 1 if channels == 1 else 3), 255, np.uint8)
    images, titles = [], []
    for c, name in enumerate(class_names):
        idx = np.flatnonzero(labels == c)
        picked = rng.choice(idx, size=min(per_class, len(idx)), replace=False) if len(idx) else []
        thumbs = load_thumbnails([paths[int(i)] for i in picked], size, channels)
        pad = 0 if columns else per_class - len(thumbs)
        images += thumbs + [blank] * pad
        titles += [name] * len(thumbs) + [""] * pad
    return prediction_grid(images, None, titles, columns=columns or per_class, scale=scale)


def misclassified_grid(
    paths: Sequence[str],
    labels: Sequence[int],
    probs: np.ndarray,
    class_names: Sequence[str],
    limit: int = 16,
    columns: int = 4,
    size: tuple[int, int] = (64, 64),
    channels: int = 3,
    scale: float = 1.0,
):
    """The wrong predictions of a classifier, most confident first: ``x predicted (p)`` over ``true: ...``.

    Args:
        paths: the evaluated image files.
        labels: their true class indices.
        probs: ``(N, C)`` model probabilities for them.
        limit: show at most this many.

    Returns:
        The figure; when every prediction is right, a figure that says so.
    """
    probs = np.asarray(probs)
    pred = probs.argmax(1)
    wrong = [i for i in np.argsort(-probs.max(1)) if pred[i] != int(labels[i])][:limit]
    if not wrong:
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.axis("off")
        ax.text(0.5, 0.5, f"No misclassified images among {len(pred)}.", ha="center", va="center")
        return fig
    images = load_thumbnails([paths[i] for i in wrong], size, channels)
    return prediction_grid(
        images,
        [class_names[int(labels[i])] for i in wrong],
        [class_names[int(pred[i])] for i in wrong],
        [float(probs[i].max()) for i in wrong],
        columns=columns,
        scale=scale,
        title=f"{len(wrong)} of {int(np.sum(pred != np.asarray(labels)))} "
        f"misclassified (of {len(pred)}), most confident first",
    )


def history_figure(history_csv: str, phase_boundary: int | None = None):
    """Training curves from a run's ``history.csv``: one panel per metric, training and validation.

    Args:
        history_csv: the CSV log a training run writes (``OUT/history.csv``).
        phase_boundary: epochs of a first (frozen-backbone) phase; a dashed line marks
            where fine-tuning starts.
    """
    import csv

    with open(history_csv) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{history_csv} has no epochs logged.")
    epochs = [int(r["epoch"]) + 1 for r in rows]
    names = [k for k in rows[0] if k not in ("epoch", "learning_rate", "lr") and not k.startswith("val_")]
    names += [k[4:] for k in rows[0] if k.startswith("val_") and k[4:] not in names]
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3), squeeze=False)
    for ax, name in zip(axes[0], names):
        for key, style in ((name, "o-"), ("val_" + name, "s--")):
            values = [float(r[key]) if r.get(key) not in (None, "") else np.nan for r in rows]
            if key in rows[0]:
                ax.plot(epochs, values, style, ms=4, label="validation" if key.startswith("val_") else "training")
        if phase_boundary:
            ax.axvline(phase_boundary + 0.5, color="gray", ls=":", label="fine-tuning starts")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        if len(epochs) <= 12:
            ax.set_xticks(epochs)
        else:
            ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def challenge_figure(
    tile_paths: Sequence[str],
    answer: Sequence[int],
    picked: Sequence[int],
    target: str,
    grid: int = 3,
    size: tuple[int, int] = (72, 72),
):
    """One grid challenge ("select all images with a ``target``") and the model's picks.

    Cells are row-major and numbered from 1. Titles: ``picked`` (right pick),
    ``FALSE PICK`` and ``MISSED`` in red; the challenge is solved when there is neither.

    Args:
        tile_paths: the ``grid * grid`` tiles, row-major.
        answer: indices (from 0) of the cells that show the target.
        picked: indices the model selected (see :func:`recaptcha_tf.evaluation.challenge.pick_cells`).
    """
    if len(tile_paths) != grid * grid:
        raise ValueError(f"A {grid}x{grid} challenge needs {grid * grid} tiles, got {len(tile_paths)}.")
    answer, picked = set(answer), set(picked)
    images = load_thumbnails(tile_paths, size)
    fig, axes = plt.subplots(grid, grid, figsize=(1.5 * grid, 1.6 * grid + 0.4), squeeze=False)
    for k, (ax, img) in enumerate(zip(axes.ravel(), images)):
        ax.imshow(img)
        ax.set_xticks([])
        ax.set_yticks([])
        status = ("picked" if k in answer else "FALSE PICK") if k in picked else ("MISSED" if k in answer else "")
        colour = {"picked": "green", "FALSE PICK": "red", "MISSED": "red"}.get(status, "lightgray")
        for spine in ax.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(4 if status else 1)
        ax.set_title(f"{k + 1} {status}", fontsize=8, color=colour if status != "picked" else "green")
    solved = answer == picked
    fig.suptitle(
        f"select all images with a {target}: {'solved' if solved else 'not solved'}",
        fontsize=10,
        color="green" if solved else "red",
    )
    fig.tight_layout()
    return fig


def reliability_figure(calibration: dict):
    """Reliability diagram: accuracy against top-1 confidence per bin (the diagonal is perfect calibration), from
    :func:`recaptcha_tf.evaluation.workflow.calibration_report`'s ``reliability`` bins and ECE."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    bins = calibration["reliability"]
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1, label="perfect calibration")
    ax.bar(
        [(b["low"] + b["high"]) / 2 for b in bins],
        [b["accuracy"] for b in bins],
        width=[(b["high"] - b["low"]) * 0.9 for b in bins],
        alpha=0.7,
        label="accuracy",
    )
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", color="C1", label="per bin")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("top-1 confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"ECE {calibration['ece']:.3f} (uncalibrated {calibration['ece_uncalibrated']:.3f})")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig
