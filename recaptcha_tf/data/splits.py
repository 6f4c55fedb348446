"""Stratified, seeded train/val/test splits and the manifest that records them.

A split is made *before* anything else (balancing, augmentation, tuning) so that
no augmented copy of a validation or test image can reach the training set. The
manifest is a small JSON file written next to each run; passing it back
(``--split PATH``) repeats an experiment exactly.

Manifest schema (version 2), the same for every task::

    {"version": 2, "root": "/abs/path/of/the/data", "class_names": [...],
     "train": [["bus/0001.png", 0], ...], "val": [...], "test": [...],
     "seed": 0, "fractions": [0.7, 0.15, 0.15], "extra": {...}}

``root`` is absolute; each entry is ``[path, label]`` with ``path`` relative to
``root`` (POSIX separators), or absolute for a file outside it (balanced copies),
or ``parquet:FILE#ROW`` for a Parquet row (text runs). :func:`load_manifest`
resolves paths against ``root`` the same way for every reader, from any working
directory. Version 1 manifests (paths relative to the working directory of the
run, ``root`` as typed) still load: their training directory is recovered from
the absolute data folder in ``extra["data"]``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from collections.abc import Sequence

import numpy as np

from recaptcha_tf.data.duplicates import describe_identical, keep_identical_together
from recaptcha_tf.utils.run_folder import RunFolder

log = logging.getLogger("recaptcha_tf")

SUBSETS = ("train", "val", "test")
MANIFEST_NAME = RunFolder.SPLIT
MANIFEST_VERSION = 2
PARQUET_PREFIX = "parquet:"
# A dataset name with a scheme (``parquet:FILE#ROW``, ``csv:images/0001.png``) names a row of a container or list,
# not a file under the manifest's root; two letters at least, so a Windows drive (``C:``) is still a path.
_ROW_NAME = re.compile(r"^[a-z][a-z0-9]+:")


def is_row_name(path: str) -> bool:
    """Whether a manifest entry is a row name with a scheme (kept as written) rather than a file path."""
    return bool(_ROW_NAME.match(str(path)))


def _is_file_entry(path: str) -> bool:
    return not is_row_name(path)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _stored_path(path: str, root: str) -> str:
    """``path`` as a manifest stores it: relative to ``root`` (POSIX) when inside it, else absolute."""
    if not _is_file_entry(path):
        return path
    path = os.path.abspath(path)
    if root and _inside(path, root):
        return os.path.relpath(path, root).replace(os.sep, "/")
    return path


def _resolved_path(path: str, base: str) -> str:
    """A stored manifest path as an absolute path (``base``: the folder relative paths start from)."""
    if not _is_file_entry(path) or os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(base, *path.split("/")))


def _legacy_base(d: dict) -> str:
    """The folder a version-1 manifest's relative paths start from: the run's working directory.

    It wrote ``root`` as typed (``clean``) and the absolute data folder in ``extra["data"]``
    (``/home/me/clean``); the working directory was their difference (``/home/me``).
    """
    root, data = d.get("root") or "", (d.get("extra") or {}).get("data") or d.get("data") or ""
    if os.path.isabs(root) or not data:
        return os.getcwd()
    root, data = os.path.normpath(root), os.path.normpath(data)
    if root == ".":
        return data
    if data.endswith(os.sep + root):
        return data[: -len(root) - 1] or os.sep
    return os.getcwd()


class SplitError(ValueError):
    """A dataset cannot be split as asked (too few images in a class, bad fractions)."""


@dataclasses.dataclass
class Split:
    """Files and integer labels of each subset, plus the class names they index.

    Attributes:
        class_names: label ``i`` means ``class_names[i]``.
        train, val, test: lists of ``(path, label)`` pairs. ``label`` is an int
            for single-label data, or a list of ints for multi-label data (text
            runs: the text). A loaded manifest gives absolute paths.
        root: the data folder the split was made from; manifest paths are relative to it.
        seed, fractions: how the split was made.
    """

    class_names: list[str]
    train: list[tuple[str, object]]
    val: list[tuple[str, object]]
    test: list[tuple[str, object]]
    root: str = ""
    seed: int = 0
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    extra: dict = dataclasses.field(default_factory=dict)

    def subset(self, name: str) -> list[tuple[str, object]]:
        if name not in SUBSETS:
            raise ValueError(f"Unknown subset {name!r}; expected one of {SUBSETS}.")
        return getattr(self, name)

    def counts(self) -> dict[str, list[int]]:
        """Images per class in each subset: ``{"train": [n_0, n_1, ...], ...}``."""
        out = {}
        for name in SUBSETS:
            counts = [0] * len(self.class_names)
            for _, label in self.subset(name):
                for lab in label if isinstance(label, (list, tuple)) else [label]:
                    counts[lab] += 1
            out[name] = counts
        return out

    def to_dict(self) -> dict:
        """The version-2 manifest: absolute ``root``, paths relative to it (see the module docstring)."""
        root = os.path.abspath(self.root) if self.root else ""
        return {
            "version": MANIFEST_VERSION,
            "class_names": list(self.class_names),
            "root": root,
            "seed": self.seed,
            "fractions": list(self.fractions),
            "extra": self.extra,
            **{name: [[_stored_path(p, root), lab] for p, lab in self.subset(name)] for name in SUBSETS},
        }

    @classmethod
    def from_dict(cls, d: dict) -> Split:
        """Read a manifest of either version; file paths come back absolute."""
        version = int(d.get("version", 1))
        root = d.get("root") or ""
        base = (root or os.getcwd()) if version >= 2 else _legacy_base(d)
        if version < 2 and root and not os.path.isabs(root):
            root = os.path.normpath(os.path.join(base, root))

        def pairs(items):
            out = []
            for item in items:
                path, label = (item, None) if isinstance(item, str) else item
                out.append((_resolved_path(str(path), base), label))
            return out

        return cls(
            class_names=list(d.get("class_names", [])),
            train=pairs(d["train"]),
            val=pairs(d["val"]),
            test=pairs(d["test"]),
            root=root,
            seed=int(d.get("seed", 0)),
            fractions=tuple(d.get("fractions", (0.7, 0.15, 0.15))),
            extra=dict(d.get("extra") or {}) | ({"data": d["data"]} if "data" in d and version < 2 else {}),
        )


def parse_fractions(text: str | Sequence[float]) -> tuple[float, float, float]:
    """Parse ``"70/15/15"``, ``"0.7,0.3"`` or a sequence into (train, val, test) fractions.

    Two numbers mean train/val with no test subset (the seed project's 70/30).
    Percentages (adding up to 100) or fractions (adding up to 1) are accepted;
    any other total (``50/60``) is an error rather than a silent rescaling.
    """
    if isinstance(text, str):
        parts = [p for p in text.replace("/", ",").replace(":", ",").split(",") if p.strip()]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise SplitError(f"Cannot parse split fractions {text!r}; use e.g. 70/15/15 or 0.7,0.3.") from None
    else:
        values = [float(v) for v in text]
    if len(values) == 2:
        values.append(0.0)
    if len(values) != 3 or any(v < 0 for v in values) or values[0] <= 0 or values[1] <= 0:
        raise SplitError(f"Split fractions must be train/val[/test] with positive train and val, got {text!r}.")
    total = sum(values)
    if not (abs(total - 1) < 1e-6 or abs(total - 100) < 1e-3):
        raise SplitError(
            f"Split {text!r} adds up to {total:g}; percentages must add up to 100 (e.g. 70/15/15) "
            "and fractions to 1 (e.g. 0.7,0.15,0.15)."
        )
    return tuple(v / total for v in values)


def stratified_split(
    paths: Sequence[str],
    labels: Sequence[int],
    class_names: Sequence[str],
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    root: str = "",
) -> Split:
    """Split files per class with a seeded shuffle so each subset keeps the class mix.

    Every class keeps at least one image in every non-empty subset; a class too
    small for that raises :class:`SplitError` naming the class and its count.
    The result depends only on the sorted inputs and ``seed``.

    Args:
        paths: image files.
        labels: integer class index of each file.
        class_names: names indexed by ``labels``.
        fractions: (train, val, test) fractions; test may be 0.
        seed: shuffle seed.
    """
    fractions = parse_fractions(fractions)
    if len(paths) != len(labels):
        raise SplitError(f"{len(paths)} paths but {len(labels)} labels.")
    wanted = [name for name, f in zip(SUBSETS, fractions) if f > 0]
    rng = np.random.default_rng(seed)
    out = {name: [] for name in SUBSETS}
    by_class: dict[int, list[str]] = {i: [] for i in range(len(class_names))}
    for p, lab in zip(paths, labels):
        by_class[int(lab)].append(str(p))
    for label, files in by_class.items():
        files = sorted(files)
        n = len(files)
        if n < len(wanted):
            raise SplitError(
                f"Class {class_names[label]!r} has {n} image(s); a {'/'.join(wanted)} split needs at "
                f"least {len(wanted)} so that every subset keeps one. Add images or drop the class."
            )
        order = rng.permutation(n)
        n_val = max(1, int(round(fractions[1] * n)))
        n_test = max(1, int(round(fractions[2] * n))) if fractions[2] > 0 else 0
        n_train = n - n_val - n_test
        if n_train < 1:  # tiny class: give train the last image
            if n_val > 1:
                n_val -= 1
            else:
                n_test -= 1
            n_train = 1
        idx = {"train": order[:n_train], "val": order[n_train : n_train + n_val], "test": order[n_train + n_val :]}
        for name in SUBSETS:
            out[name].extend((files[i], label) for i in sorted(idx[name]))
    # byte-identical files go where the first of them went (recaptcha_tf.data.duplicates)
    entries = [entry for name in SUBSETS for entry in out[name]]
    starts = np.cumsum([0] + [len(out[name]) for name in SUBSETS])
    parts = {name: list(range(starts[k], starts[k + 1])) for k, name in enumerate(SUBSETS)}
    parts, identical = keep_identical_together(parts, [p for p, _ in entries], [lab for _, lab in entries])
    extra = {}
    if identical:
        for group in identical:
            group["label"] = class_names[group["label"]]
            group["dropped_labels"] = [class_names[label] for label in group["dropped_labels"]]
        log.warning(describe_identical(identical))
        extra["identical_images"] = [
            {**g, "files": [_stored_path(f, str(root)) for f in g["files"]]} for g in identical
        ]
    return Split(
        class_names=list(class_names),
        **{name: [entries[i] for i in parts[name]] for name in SUBSETS},
        root=str(root),
        seed=seed,
        fractions=fractions,
        extra=extra,
    )


def random_split(count: int, fractions: str | Sequence[float], seed: int = 0) -> dict[str, list[int]]:
    """A seeded, unstratified split of ``count`` items into train/val/test index lists (text sets: no classes).

    Validation gets at least one item; each list is sorted.

    Raises:
        SplitError: too few items to leave one for training.
    """
    fr = parse_fractions(fractions)
    order = np.random.default_rng(seed).permutation(count)
    n_val = max(1, int(round(fr[1] * count)))
    n_test = int(round(fr[2] * count)) if fr[2] > 0 else 0
    if count - n_val - n_test < 1:
        raise SplitError(f"{count} text images are too few for a {fractions} split.")
    n_train = count - n_val - n_test
    return {
        "train": sorted(order[:n_train].tolist()),
        "val": sorted(order[n_train : n_train + n_val].tolist()),
        "test": sorted(order[n_train + n_val :].tolist()),
    }


def save_manifest(split: Split, path: str) -> str:
    """Write ``split`` as JSON to ``path`` (a file, or a folder that gets ``split.json``)."""
    if os.path.isdir(path):
        path = os.path.join(path, MANIFEST_NAME)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(split.to_dict(), f, indent=1)
    os.replace(tmp, path)
    return path


def require_files(split: Split, manifest: str) -> Split:
    """``split`` when every file it names exists; else a :class:`SplitError` with the count and a few examples
    (data moved or deleted since the split was made would otherwise stop training mid-epoch)."""
    missing = [p for name in SUBSETS for p, _ in split.subset(name) if _is_file_entry(p) and not os.path.isfile(p)]
    if missing:
        shown = ", ".join(repr(_stored_path(p, split.root)) for p in missing[:3])
        raise SplitError(
            f"{manifest} names {len(missing)} file(s) that do not exist (e.g. {shown}): the data has moved or "
            "changed since the split was made. Pass the data it was made from, or --overwrite to split afresh."
        )
    return split


def load_manifest(path: str) -> Split:
    """Read a manifest written by :func:`save_manifest` (file or folder holding ``split.json``).

    File paths come back absolute, resolved against the manifest's ``root``
    (any version; see the module docstring), whatever the working directory.
    """
    if os.path.isdir(path):
        path = os.path.join(path, MANIFEST_NAME)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No split manifest at {path}.")
    try:
        with open(path) as f:
            return Split.from_dict(json.load(f))
    except (ValueError, KeyError, TypeError) as err:
        raise SplitError(f"{path} is not a readable split manifest ({err}).") from err
