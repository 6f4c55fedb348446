"""The split of a class-folder run (tiles, chars): one function shared by the trainer and the tuner.

A run's split is reused when the run resumes: an explicit manifest, the run's own ``split.json``, a manifest
inside the data folder (written by ``recaptcha-tf balance``), or a new stratified split; balancing oversamples the
training split only (:mod:`recaptcha_tf.data.balance`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np

from recaptcha_tf.data.folders import DatasetError, scan_class_folders
from recaptcha_tf.data.sources import same_folder
from recaptcha_tf.data.splits import (
    MANIFEST_NAME,
    Split,
    load_manifest,
    require_files,
    save_manifest,
    stratified_split,
)

log = logging.getLogger("recaptcha_tf")


def prepare_folder_split(
    data: str,
    out_dir: str,
    split_path: str | None = None,
    fractions="70/15/15",
    seed: int = 0,
    channels: int = 3,
    balance_per_class: int | None = None,
    balance_cap: int | None = None,
    balanced_dir: str | None = None,
    balance_up_to: int = 0,
    flip: bool = True,
) -> Split:
    """The split of a class-folder dataset for a run, reused when the run resumes.

    Precedence: an explicit manifest (``split_path``); the run's own manifest
    (resuming ``out_dir``); a manifest inside ``data`` (a folder written by
    ``recaptcha-tf balance``); otherwise a new stratified split of ``data``.
    Balancing oversamples the training split only, into ``balanced_dir``
    (default ``out_dir/balanced_images``): to ``balance_per_class`` images per
    class when given, else, with ``balance_up_to``, every class smaller than
    ``min(balance_up_to, largest class)`` to that size (nothing when no class is
    smaller, or when the split is already balanced). ``flip=False`` (a task whose mirror images are other
    classes, such as single characters) balances without mirroring.
    """
    own = os.path.join(out_dir, MANIFEST_NAME)
    if split_path:
        split = require_files(load_manifest(split_path), split_path)
    elif os.path.exists(own):
        split = require_files(load_manifest(own), own)
        if split.extra.get("data") and not same_folder(split.extra["data"], data):
            raise DatasetError(
                f"{out_dir!r} holds a run on {split.extra['data']!r}, not {data!r}. "
                "Use another --out, or --overwrite to start afresh."
            )
        log.info("Resuming with the split in %s", own)
        return split
    elif os.path.exists(os.path.join(data, MANIFEST_NAME)):
        split = require_files(load_manifest(data), os.path.join(data, MANIFEST_NAME))
        log.info(
            "Using the split recorded in %s (train: %d, val: %d, test: %d)",
            data,
            len(split.train),
            len(split.val),
            len(split.test),
        )
    else:
        ds = scan_class_folders(data, channels=channels)
        if len(ds.class_names) < 2:
            raise DatasetError(
                f"{data!r} has one class ({ds.class_names[0]!r}); a classifier needs at least two "
                "class folders (with one, every prediction is right by construction)."
            )
        split = stratified_split(ds.paths, ds.labels, ds.class_names, fractions, seed, root=data)
    if not balance_per_class and balance_up_to and "balanced" not in split.extra:
        counts = split.counts()["train"]
        target = min(int(balance_up_to), max(counts))
        if min(counts) < target:
            balance_per_class = target
            log.info(
                "Balancing: oversampling the training classes smaller than %d images to %d "
                "(--balance 0 turns this off).",
                target,
                target,
            )
    if balance_per_class:
        from recaptcha_tf.data.balance import DEFAULT_OPERATIONS, NO_FLIP_OPERATIONS, balance_split

        balanced_dir = balanced_dir or os.path.join(out_dir, "balanced_images")
        operations = DEFAULT_OPERATIONS if flip else NO_FLIP_OPERATIONS
        split = balance_split(
            split, balanced_dir, per_class=balance_per_class, cap=balance_cap, seed=seed, operations=operations
        )
    split.extra["data"] = os.path.abspath(data)
    save_manifest(split, own)
    return split


def sample_indices(labels: Sequence, count: int, seed: int) -> list[int]:
    """A seeded sample of ``count`` indices of ``labels`` (all of them when fewer), sorted."""
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(len(labels), size=min(count, len(labels)), replace=False).tolist())


def prepare_multilabel_split(
    data: str,
    out_dir: str,
    labels_csv: str | None,
    split_path: str | None = None,
    fractions="70/15/15",
    seed: int = 0,
    channels: int = 3,
    allow_outside_data: bool = False,
) -> Split:
    """The split of a multi-label dataset (CSV manifest, or class folders as single labels), reused on resume.

    CSV paths must lie inside ``data`` unless ``allow_outside_data``."""
    from recaptcha_tf.data.multilabel import folder_as_multilabel, multilabel_split, read_label_csv

    own = os.path.join(out_dir, MANIFEST_NAME)
    if split_path or os.path.exists(own):
        split = require_files(load_manifest(split_path or own), split_path or own)
        if not split.extra.get("multi_label"):
            raise DatasetError(f"{split_path or own} is a single-label split; a multi-label run needs its own --out.")
        if not split_path:  # resuming: the same data and the same labels, as a single-label run checks
            saved_labels = split.extra.get("labels")
            given_labels = os.path.abspath(labels_csv) if labels_csv else None
            if (split.extra.get("data") and not same_folder(split.extra["data"], data)) or saved_labels != given_labels:
                raise DatasetError(
                    f"{out_dir!r} holds a run on {split.extra.get('data')!r} (labels {saved_labels!r}), not {data!r} "
                    f"(labels {given_labels!r}). Use another --out, or --overwrite to start afresh."
                )
        return split
    if labels_csv:
        paths, label_lists, class_names = read_label_csv(
            labels_csv, root=data, channels=channels, allow_outside=allow_outside_data
        )
    else:
        paths, label_lists, class_names = folder_as_multilabel(data, channels=channels)
    split = multilabel_split(paths, label_lists, class_names, fractions, seed, root=data)
    split.extra["data"] = os.path.abspath(data)
    if labels_csv:
        split.extra["labels"] = os.path.abspath(labels_csv)
    save_manifest(split, own)
    return split
