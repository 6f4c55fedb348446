"""Multi-label tile datasets: a CSV manifest ``path,labels`` with ``;``-separated labels.

::

    path,labels
    street/0001.png,car;traffic_light
    street/0002.png,bus
    street/0003.png,            <- no label at all (a tile with none of the objects)

Paths are relative to the data folder (or absolute). Single-label class folders
are the special case where each image has exactly its folder's label
(:func:`folder_as_multilabel`). Splits are stratified on each image's rarest
label, so rare classes keep images in every subset.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Sequence

from recaptcha_tf.data.folders import DatasetError, canonical_class_name, class_key, scan_class_folders
from recaptcha_tf.data.images import find_undecodable, warn_skipped
from recaptcha_tf.data.splits import Split, stratified_split


def read_label_csv(
    csv_path: str,
    root: str | None = None,
    class_names: Sequence[str] | None = None,
    channels: int = 3,
    validate: bool = True,
    allow_outside: bool = False,
) -> tuple[list[str], list[list[int]], list[str]]:
    """Read a ``path,labels`` manifest.

    Args:
        csv_path: the CSV file; a header row ``path,labels`` is optional.
        root: folder that relative paths start from (default: the CSV's folder).
        allow_outside: accept absolute and ``../`` paths that lead outside ``root``
            (refused by default: a label file should not reach into other folders).
        class_names: expected classes (a trained model's); by default the sorted
            canonical names of every label in the file.
        validate: decode each image once; unreadable ones are skipped with one warning.

    Returns:
        ``(paths, label_lists, class_names)`` with label indices into ``class_names``.

    Raises:
        DatasetError: missing file, a row without a path, a path outside ``root``, an
            image that does not exist, or a label the model does not know.
    """
    if not os.path.isfile(csv_path):
        raise DatasetError(f"Label file {csv_path!r} does not exist.")
    root = root if root is not None else os.path.dirname(os.path.abspath(csv_path))
    rows = []
    with open(csv_path, newline="") as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            if not row or not row[0].strip():
                continue
            if lineno == 1 and row[0].strip().lower() == "path":
                continue
            names = [canonical_class_name(n) for n in (row[1] if len(row) > 1 else "").split(";") if n.strip()]
            path = row[0].strip()
            path = path if os.path.isabs(path) else os.path.join(root, path)
            if not allow_outside and not _inside(path, root):
                raise DatasetError(
                    f"{csv_path}:{lineno}: {row[0]!r} points outside the data folder {root!r}; "
                    "list paths relative to it, or pass --allow-outside-data."
                )
            if not os.path.isfile(path):
                raise DatasetError(f"{csv_path}:{lineno}: image {row[0]!r} not found under {root!r}.")
            rows.append((path, sorted(set(names))))
    if not rows:
        raise DatasetError(f"{csv_path!r} lists no images.")
    used = sorted({n for _, names in rows for n in names})
    if class_names is None:
        class_names = used
    index = {class_key(n): i for i, n in enumerate(class_names)}
    unknown = sorted({n for n in used if class_key(n) not in index})
    if unknown:
        raise DatasetError(f"{csv_path!r} uses labels the model does not know: {unknown}. Known: {list(class_names)}.")
    paths = [p for p, _ in rows]
    labels = [[index[class_key(n)] for n in names] for _, names in rows]
    if validate:
        bad = set(find_undecodable(paths, channels=channels))
        if bad:
            warn_skipped([paths[i] for i in sorted(bad)])
            paths = [p for i, p in enumerate(paths) if i not in bad]
            labels = [lab for i, lab in enumerate(labels) if i not in bad]
    return paths, labels, list(class_names)


def _inside(path: str, folder: str) -> bool:
    """True if ``path`` (links resolved) lies below ``folder``."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def folder_as_multilabel(root: str, class_names: Sequence[str] | None = None, channels: int = 3):
    """Class folders as multi-label data: each image carries its folder's single label."""
    ds = scan_class_folders(
        root, class_names=class_names, channels=channels, allow_missing_classes=class_names is not None
    )
    return ds.paths, [[lab] for lab in ds.labels], ds.class_names


def multilabel_split(
    paths: Sequence[str],
    label_lists: Sequence[Sequence[int]],
    class_names: Sequence[str],
    fractions="70/15/15",
    seed: int = 0,
    root: str = "",
) -> Split:
    """Seeded split stratified on each image's rarest label (images with no label form their own stratum)."""
    freq = Counter(lab for labels in label_lists for lab in labels)
    none = len(class_names)  # stratum of unlabelled images
    primary = [min(labels, key=lambda c: (freq[c], c)) if labels else none for labels in label_lists]
    names = [*class_names, "(no label)"]
    present = sorted(set(primary))  # a class that is never the rarest label of an image is no stratum
    compact = {s: i for i, s in enumerate(present)}
    split = stratified_split(
        paths, [compact[p] for p in primary], [names[s] for s in present], fractions, seed, root=root
    )
    by_path = {str(p): sorted(int(c) for c in labels) for p, labels in zip(paths, label_lists)}
    for name in ("train", "val", "test"):
        setattr(split, name, [(p, by_path[p]) for p, _ in getattr(split, name)])
    split.class_names = list(class_names)
    split.extra["multi_label"] = True
    return split
