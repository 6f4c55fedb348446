"""reCAPTCHA-style grid challenges: one image holding ``rows x cols`` tiles, and "select every X".

Pure NumPy helpers with no TensorFlow or Keras dependency:

* :func:`split_grid` cuts a grid image into its cells (row-major order);
* :func:`pick_cells` decides which cells a classifier selects for a target class;
* :func:`assemble_challenges` and :func:`challenge_report` give the offline
  challenge-level score: seeded grids of held-out tiles, solved exactly or not;
* :func:`choose_challenge_threshold` picks a single-label classifier's target-probability threshold for grids
  on its validation split (stored in the model as ``LabelNames.challenge_threshold``).

Cells are numbered row-major from 0 (top-left) to ``rows * cols - 1`` (bottom-right).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recaptcha_tf.inference.abstention import BACKGROUND_CLASSES, abstaining_argmax, background_index


def cell_bounds(height: int, width: int, rows: int, cols: int) -> list[tuple[int, int, int, int]]:
    """Pixel boxes ``(top, bottom, left, right)`` of each cell, row-major.

    When a side is not divisible by the cell count, the boundaries are rounded
    (``round(i * side / n)``), so cells differ by at most one pixel and together
    cover the whole image with no overlap.
    """
    if rows < 1 or cols < 1:
        raise ValueError(f"rows and cols must be at least 1, got {rows}x{cols}.")
    if height < rows or width < cols:
        raise ValueError(f"A {height}x{width} image cannot be split into {rows}x{cols} cells.")
    ys = [round(i * height / rows) for i in range(rows + 1)]
    xs = [round(j * width / cols) for j in range(cols + 1)]
    return [(ys[i], ys[i + 1], xs[j], xs[j + 1]) for i in range(rows) for j in range(cols)]


def split_grid(image: np.ndarray, rows: int, cols: int) -> list[np.ndarray]:
    """Cut ``image`` (``(H, W)`` or ``(H, W, C)``) into ``rows * cols`` cells, row-major.

    Args:
        image: the whole challenge image.
        rows, cols: grid shape, e.g. 3x3 or 4x4.

    Returns:
        ``rows * cols`` arrays (views of ``image``); cell ``k`` is at row
        ``k // cols``, column ``k % cols``. See :func:`cell_bounds` for sides that
        do not divide evenly.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"Expected an image (H, W) or (H, W, C), got shape {image.shape}.")
    bounds = cell_bounds(image.shape[0], image.shape[1], rows, cols)
    return [image[top:bottom, left:right] for top, bottom, left, right in bounds]


def pick_cells(
    probs: np.ndarray, target_index: int, threshold: float | None = None, min_confidence: float | None = None,
    background: int | None = None,
) -> list[int]:  # fmt: skip
    """Indices of the cells a classifier selects for the class ``target_index``.

    Args:
        probs: ``(cells, classes)`` probabilities, one row per cell (row-major).
        target_index: the class asked for ("select all images with a bus").
        threshold: ``None`` for single-label (softmax) models: a cell is picked
            when the target is its arg-max class. A number: a cell is picked when
            its target probability is at least ``threshold`` (a multi-label model's
            sigmoid threshold, or a single-label model's stored challenge threshold,
            :func:`choose_challenge_threshold`).
        min_confidence: single-label only: a cell whose best object class (any class but ``background``) scores
            below it is answered as the background class, so it is never picked (``--min-confidence``).
        background: the index of the background class (``other``), or ``None``.

    Returns:
        Sorted cell indices (row-major, from 0).
    """
    probs = np.asarray(probs)
    if probs.ndim != 2:
        raise ValueError(f"Expected probabilities of shape (cells, classes), got {probs.shape}.")
    if not 0 <= target_index < probs.shape[1]:
        raise ValueError(f"target_index {target_index} is outside 0..{probs.shape[1] - 1}.")
    if threshold is None:  # an unsure cell answers the background class (or -1): never the target
        picked = abstaining_argmax(probs, background, min_confidence) == target_index
    else:
        picked = probs[:, target_index] >= threshold
    return [int(i) for i in np.flatnonzero(picked)]


# --- Challenge-level score on held-out tiles ---------------------------------------------------------------------
# An offline research metric, as in published reCAPTCHA studies: assemble grids of held-out tiles with a target
# class, let the model choose the tiles, and count the grids it solves exactly. No browser, no live site.

CATCH_ALL_CLASSES = BACKGROUND_CLASSES  # never a challenge's target
GRID_TARGETS = {3: (2, 5), 4: (3, 8)}  # (min, max) target tiles in a 3x3 and a 4x4 grid


def assemble_challenges(
    label_lists: Sequence[Sequence[int]],
    class_names: Sequence[str],
    grid: int = 3,
    count: int = 200,
    seed: int = 0,
    targets: tuple[int, int] | None = None,
) -> list[dict]:
    """Seeded ``grid`` x ``grid`` challenges drawn from held-out tiles.

    Each challenge picks a target class (never a catch-all class such as
    ``other``), between ``targets[0]`` and ``targets[1]`` tiles that show it and
    fills the rest with tiles that do not, in random order.

    Args:
        label_lists: true label indices of each tile (one index, or a list for multi-label).

    Returns:
        ``[{"target": class_index, "tiles": [tile indices, row-major], "answer": [cell indices]}, ...]``;
        fewer than ``count`` only when no class has enough tiles.
    """
    lo, hi = targets or GRID_TARGETS.get(grid, (2, grid * grid // 2))
    cells = grid * grid
    labels = [set(lab) if isinstance(lab, (list, tuple, set, np.ndarray)) else {int(lab)} for lab in label_lists]
    rng = np.random.default_rng(seed)
    candidates = []
    for c, name in enumerate(class_names):
        if name.lower() in CATCH_ALL_CLASSES:
            continue
        pos = [i for i, lab in enumerate(labels) if c in lab]
        neg = [i for i, lab in enumerate(labels) if c not in lab]
        if len(pos) >= lo and len(neg) >= cells - lo:
            candidates.append((c, pos, neg))
    challenges = []
    if not candidates:
        return challenges
    for _ in range(count):
        c, pos, neg = candidates[rng.integers(len(candidates))]
        k = int(rng.integers(max(lo, cells - len(neg)), min(hi, len(pos)) + 1))
        chosen = [*rng.choice(pos, k, replace=False).tolist(), *rng.choice(neg, cells - k, replace=False).tolist()]
        order = rng.permutation(cells)
        tiles = [int(chosen[j]) for j in order]
        answer = sorted(int(p) for p, j in enumerate(order) if j < k)
        challenges.append({"target": int(c), "tiles": tiles, "answer": answer})
    return challenges


def challenge_report(
    probs: np.ndarray,
    label_lists: Sequence,
    class_names: Sequence[str],
    grids: Sequence[int] = (3, 4),
    count: int = 500,
    seed: int = 0,
    threshold: float | None = None,
    min_confidence: float | None = None,
) -> dict:
    """Fraction of grids solved exactly and mean wrong tiles per grid, for each grid size (``min_confidence``: tiles
    whose best object class scores below it are not picked, :func:`pick_cells`).

    Args:
        probs: ``(N, C)`` model scores for the held-out tiles.
        label_lists: their true labels.
        threshold: ``None`` for single-label models (a tile is picked when the target
            is its top class), or the sigmoid threshold of a multi-label model.

    Returns:
        ``{"3x3": {"challenges", "solved", "mean_tile_errors", "per_class_solved"}, "4x4": {...}}``.
    """
    out = {}
    background = background_index(class_names)
    for grid in grids:
        challenges = assemble_challenges(label_lists, class_names, grid, count, seed)
        solved, errors, per_class = [], [], {}
        for ch in challenges:
            picked = set(
                pick_cells(np.asarray(probs)[ch["tiles"]], ch["target"], threshold, min_confidence, background)
            )
            wrong = len(picked.symmetric_difference(ch["answer"]))
            solved.append(wrong == 0)
            errors.append(wrong)
            per_class.setdefault(class_names[ch["target"]], []).append(wrong == 0)
        out[f"{grid}x{grid}"] = {
            "challenges": len(challenges),
            "solved": float(np.mean(solved)) if solved else 0.0,
            "mean_tile_errors": float(np.mean(errors)) if errors else 0.0,
            "per_class_solved": {k: float(np.mean(v)) for k, v in sorted(per_class.items())},
        }
    return out


CHALLENGE_THRESHOLDS = tuple(round(0.01 * i, 2) for i in range(1, 51))  # 0.01, 0.02, ..., 0.50
SMOOTHING = 5  # the validation score of a threshold is averaged over this many neighbouring thresholds


def choose_challenge_threshold(
    probs: np.ndarray,
    labels: Sequence[int],
    class_names: Sequence[str],
    candidates: Sequence[float] = CHALLENGE_THRESHOLDS,
    count: int = 500,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    smoothing: int = SMOOTHING,
) -> dict:
    """The target-probability threshold that solves the most grid challenges on (validation) tiles.

    A grid asks for one class, and in a 3x3 grid two to five of the nine tiles show it: far more often than the
    class's share of the training tiles (about one in twelve), which is the prior a softmax's probabilities carry.
    So the tile whose target probability is, say, 0.3 is more likely a target than not *in a challenge*, and the
    arg-max rule (pick a cell when the target is its top class) leaves such cells out. This picks a cell when its
    target probability is at least ``t``: each candidate ``t`` is scored by the share of seeded 3x3 and 4x4 grids
    of ``probs`` it solves (``seeds`` x ``count`` of each size), the scores are averaged over ``smoothing``
    neighbouring candidates (so that one threshold that happens to suit these tiles does not decide), and the
    best average wins (ties: the higher ``t``).

    Args:
        probs: ``(N, C)`` calibrated probabilities of the validation tiles.
        labels: their true class indices ``(N,)``.
        class_names: ``C`` names (a catch-all such as ``other`` is never a target).
        candidates: thresholds in increasing order.

    Returns:
        ``{"challenge_threshold", "solved", "solved_argmax"}``: the threshold (``None`` when no grid can be
        assembled) and the share of grids solved with it (unsmoothed) and with the arg-max rule.
    """
    probs = np.asarray(probs)
    grids = [
        ch for grid in (3, 4) for seed in seeds for ch in assemble_challenges(labels, class_names, grid, count, seed)
    ]
    if not grids:
        return {"challenge_threshold": None, "solved": None, "solved_argmax": None}
    # a grid is solved at t exactly when every asked tile scores >= t and every other tile < t
    lowest_asked, highest_other = np.ones(len(grids)), np.zeros(len(grids))
    for i, ch in enumerate(grids):
        target = probs[ch["tiles"], ch["target"]]
        asked = np.zeros(len(target), bool)
        asked[ch["answer"]] = True
        lowest_asked[i] = target[asked].min()
        highest_other[i] = target[~asked].max() if (~asked).any() else -1.0
    t = np.asarray(candidates, dtype=float)[:, None]
    solved = ((highest_other[None] < t) & (t <= lowest_asked[None])).mean(axis=1)
    window = np.ones(max(1, smoothing))
    smoothed = np.convolve(solved, window, "same") / np.convolve(np.ones_like(solved), window, "same")
    best = int(np.flatnonzero(smoothed == smoothed.max())[-1])
    argmax = np.mean([set(pick_cells(probs[ch["tiles"]], ch["target"])) == set(ch["answer"]) for ch in grids])
    return {
        "challenge_threshold": round(float(candidates[best]), 2),
        "solved": float(solved[best]),
        "solved_argmax": float(argmax),
    }
