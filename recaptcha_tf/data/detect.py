"""Which task a dataset is for, read from how it is stored, when ``--task`` is left out (no TensorFlow here).

* a CSV or Parquet file, a folder of Parquet files, or a folder of images named by their labels: ``text``;
* class folders (``DATA/<class>/<image>``) whose names are all one character and whose images are small (at most
  :data:`GLYPH_MAX_SIDE` pixels a side, from the headers of a few sampled files): ``chars``;
* other class folders: ``tiles`` (a multi-label CSV, ``--labels``, is tiles too).

Wrapper folders that hold one sub-folder and nothing else (what a download unzips to) are looked through, as the
loaders do. :func:`choose_task` logs the one line that says what was inferred and why.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from recaptcha_tf.data.folders import visible_entries

log = logging.getLogger("recaptcha_tf")

GLYPH_MAX_SIDE = 64  # class folders of single-character names with images no larger than this a side are glyph sets
SAMPLED_CLASSES, SAMPLED_PER_CLASS = 8, 2  # how many images' headers are read to judge their size
_MAX_DEPTH = 4


def _table_kind(path: str) -> str | None:
    name = path.lower()
    return "CSV" if name.endswith(".csv") else "Parquet" if name.endswith(".parquet") else None


def _largest_side(folder: str, classes: Sequence[str]) -> int | None:
    """The largest width or height among a few images of the first classes, read from their headers."""
    from PIL import Image

    largest = None
    for name in classes[:SAMPLED_CLASSES]:
        images = sorted(visible_entries(os.path.join(folder, name))[1])[:SAMPLED_PER_CLASS]
        for image in images:
            try:
                with Image.open(os.path.join(folder, name, image)) as opened:
                    side = max(opened.size)
            except (OSError, ValueError):
                continue  # unreadable: the loader reports it
            largest = side if largest is None else max(largest, side)
    return largest


def _class_folders(folder: str, classes: list[str]) -> tuple[str, str]:
    shown = ", ".join(classes[:6]) + (", ..." if len(classes) > 6 else "")
    where = f"{folder!r} holds {len(classes)} class folders ({shown})"
    if all(len(name) == 1 for name in classes):
        side = _largest_side(folder, classes)
        if side is not None and side <= GLYPH_MAX_SIDE:
            return "chars", f"{where}, named by one character, of small images (at most {side} px a side)"
        if side is not None:
            return "tiles", f"{where}; their names are single characters but their images are up to {side} px a side"
    return "tiles", where


def infer_task(
    data: str | os.PathLike | Sequence[str], labels: str | None = None, multi_label: bool = False
) -> tuple[str, str]:
    """``(task, reason)`` for dataset ``data``; ``labels`` (a multi-label CSV) or ``multi_label`` make it ``tiles``.

    A list of paths is Parquet files (text). Data that matches no rule (missing, empty) gives ``tiles`` with a
    reason that says so; loading it then says what is wrong.
    """
    if labels:
        return "tiles", f"--labels {labels!r} is a multi-label CSV of tiles"
    if multi_label:
        return "tiles", "--multi-label is for tiles"
    if not isinstance(data, (str, os.PathLike)):
        return "text", "several --data paths are read as Parquet files of text CAPTCHAs"
    path = os.fspath(data)
    for _ in range(_MAX_DEPTH + 1):
        if os.path.isfile(path):
            kind = _table_kind(path)
            if kind:
                return "text", f"{path!r} is a {kind} file (images and their text)"
            break
        if not os.path.isdir(path):
            break
        folders, images = visible_entries(path)
        if images:
            return "text", f"{path!r} holds image files named by their labels (e.g. {sorted(images)[0]!r})"
        tables = sorted(n for n in os.listdir(path) if _table_kind(n) and os.path.isfile(os.path.join(path, n)))
        if any(_table_kind(n) == "Parquet" for n in tables):
            return "text", f"{path!r} holds Parquet files"
        with_images = [n for n in folders if visible_entries(os.path.join(path, n))[1]]
        if len(with_images) >= 2:
            return _class_folders(path, with_images)
        if tables:
            return "text", f"{path!r} holds a CSV file ({tables[0]}) and no class folders"
        if len(folders) != 1:
            break
        path = os.path.join(path, folders[0])  # a wrapper folder (or one class): look inside
    return "tiles", f"{os.fspath(data)!r} holds neither class folders nor text data, so the default"


def choose_task(task: str | None, data, labels: str | None = None, multi_label: bool = False) -> str:
    """``task`` when given; else the one :func:`infer_task` reads from ``data``, with one log line saying why."""
    if task is not None:
        return task
    task, reason = infer_task(data, labels=labels, multi_label=multi_label)
    log.info("--task %s (inferred: %s; pass --task to choose)", task, reason)
    return task
