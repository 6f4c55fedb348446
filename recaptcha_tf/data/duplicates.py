"""Byte-identical images in a dataset, kept in one split so that no image is both trained on and tested on.

A downloaded set often holds the same file twice: a copy under another name, or one image filed under two classes
(a car that is also a motorcycle). :func:`identical_groups` finds them (file size first, then SHA-256 of the bytes),
and :func:`keep_identical_together` moves every copy into the split of the group's first file (in path order); a
copy with another label is dropped, since one image cannot teach two answers, and the group keeps the label of its
first file.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Callable, Sequence

from recaptcha_tf.utils.hashing import sha256_of

log = logging.getLogger("recaptcha_tf")


def _size(source) -> int | None:
    if isinstance(source, (bytes, bytearray)):
        return len(source)
    if isinstance(source, (str, os.PathLike)) and os.path.isfile(source):
        return os.path.getsize(source)
    return None


def identical_groups(sources: Sequence) -> list[list[int]]:
    """Indices of byte-identical images, in groups of two or more, each group in order of first appearance.

    A source is a file path or the encoded bytes themselves (Parquet rows); anything else (a missing path) is never
    grouped. Only sources of equal size are hashed, so a set without duplicates costs one ``stat`` per file.
    """
    by_size: dict[int, list[int]] = defaultdict(list)
    for i, source in enumerate(sources):
        size = _size(source)
        if size is not None:
            by_size[size].append(i)
    groups = []
    for same_size in by_size.values():
        if len(same_size) < 2:
            continue
        by_hash: dict[str, list[int]] = defaultdict(list)
        for i in same_size:
            by_hash[sha256_of(sources[i])].append(i)
        groups += [sorted(group, key=lambda i: _order(sources, i)) for group in by_hash.values() if len(group) > 1]
    return sorted(groups, key=lambda group: _order(sources, group[0]))


def _order(sources, i):
    """Paths sort by path (the group's first file is the same on every machine); bytes by position."""
    source = sources[i]
    return (0, os.fspath(source), i) if isinstance(source, (str, os.PathLike)) else (1, "", i)


def keep_identical_together(
    parts: dict[str, list[int]], paths: Sequence, labels: Sequence
) -> tuple[dict[str, list[int]], list[dict]]:
    """Move each group of identical images into the part (``train``/``val``/``test``) of its first one.

    Args:
        parts: indices into ``paths`` of each part.
        paths: the images: file paths, or encoded bytes (Parquet rows, recorded by their position ``#i``).
        labels: each file's label; a copy whose label differs from the group's first file is dropped.

    Returns:
        The new parts (indices in increasing order; unchanged when there are no duplicates) and one record per
        group: ``{"files", "part", "label", "dropped_labels"}``.
    """
    groups = identical_groups(paths)
    if not groups:
        return parts, []
    where = {i: name for name, indices in parts.items() for i in indices}
    members = {name: set(indices) for name, indices in parts.items()}
    report = []
    for group in groups:
        group = [i for i in group if i in where]
        if len(group) < 2:
            continue
        keeper, part = group[0], where[group[0]]
        dropped = []
        for i in group[1:]:
            members[where[i]].discard(i)
            if labels[i] == labels[keeper]:
                members[part].add(i)
            else:
                dropped.append(labels[i])
        files = [paths[i] if isinstance(paths[i], str) else f"#{i}" for i in group]  # bytes: their position
        report.append({"files": files, "part": part, "label": labels[keeper], "dropped_labels": dropped})
    return {name: sorted(indices) for name, indices in members.items()}, report


def describe_identical(report: Sequence[dict], label_name: Callable[[object], str] = str, shown: int = 8) -> str:
    """One line on what :func:`keep_identical_together` did: counts, and the label each mixed group keeps."""
    files = sum(len(group["files"]) for group in report)
    mixed = [group for group in report if group["dropped_labels"]]
    line = f"{len(report)} groups of byte-identical images ({files} files) are kept in one split each"
    if mixed:
        kept = [
            f"{os.path.basename(g['files'][0])} keeps {label_name(g['label'])} "
            f"(drops {', '.join(label_name(label) for label in g['dropped_labels'])})"
            for g in mixed[:shown]
        ]
        more = f", and {len(mixed) - shown} more" if len(mixed) > shown else ""
        line += f"; {len(mixed)} of them carry several labels and keep one: {'; '.join(kept)}{more}"
    return line + " (listed in the run's split.json under extra.identical_images)."
