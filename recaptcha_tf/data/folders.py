"""Class-folder datasets: ``ROOT/<class>/<image>``.

Both the Kaggle layout (``Traffic Light/Tlight (3).png``) and the tidy layout
(``traffic_light/0001.jpg``) are accepted, and so is the folder a download unzips to:
wrapper folders that hold nothing but one sub-folder (the Kaggle download's
``Google_Recaptcha_V2_Images_Dataset/images/<class>/``) are looked through to the
class folders (:func:`class_folder_root`). Class names are canonicalised to
lower-case snake case (``traffic_light``) and matched case-, space-, hyphen-
and underscore-insensitively, so a model trained on one layout evaluates on
the other.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Sequence

from recaptcha_tf.data.images import find_undecodable, is_image_file, warn_skipped

log = logging.getLogger("recaptcha_tf")


class DatasetError(ValueError):
    """A data folder cannot be used as given (missing, empty class, class mismatch)."""


def visible_entries(folder: str) -> tuple[list[str], list[str]]:
    """``(sub-folders, image files)`` directly in ``folder``, hidden entries left out."""
    names = [n for n in os.listdir(folder) if not n.startswith(".") and n != "__MACOSX"]
    folders = sorted(n for n in names if os.path.isdir(os.path.join(folder, n)))
    images = [n for n in names if is_image_file(n) and os.path.isfile(os.path.join(folder, n))]
    return folders, images


def class_folder_root(root: str, max_depth: int = 4) -> str:
    """The folder under ``root`` that holds the class folders.

    ``root`` itself, unless it holds no images and exactly one sub-folder whose own
    sub-folders hold no images directly either (a wrapper such as the Kaggle download's
    ``Google_Recaptcha_V2_Images_Dataset/images``); then that sub-folder, and so on, at
    most ``max_depth`` levels down. Other files beside the one folder (a README, a CSV)
    do not stop the descent. A single class folder with images is never entered.
    """
    folder = root
    for _ in range(max_depth):
        subfolders, images = visible_entries(folder)
        if images or len(subfolders) != 1:
            break
        inner = os.path.join(folder, subfolders[0])
        inner_folders, inner_images = visible_entries(inner)
        if inner_images or not inner_folders:
            break  # `inner` is a class folder (or empty): `folder` holds the classes
        folder = inner
    return folder


def canonical_class_name(name: str) -> str:
    """``"Traffic Light"`` -> ``"traffic_light"``."""
    return re.sub(r"[\s_\-]+", "_", name.strip().lower()).strip("_")


def class_key(name: str) -> str:
    """Key used to match class names across layouts: ``"Traffic Light"`` -> ``"trafficlight"``."""
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


@dataclasses.dataclass
class FolderDataset:
    """Image files with integer labels into ``class_names``."""

    paths: list[str]
    labels: list[int]
    class_names: list[str]
    root: str = ""
    skipped: list[str] = dataclasses.field(default_factory=list)

    def counts(self) -> list[int]:
        counts = [0] * len(self.class_names)
        for lab in self.labels:
            counts[lab] += 1
        return counts


def match_class_names(found: Sequence[str], expected: Sequence[str], where: str = "") -> dict[str, int]:
    """Map folder names in ``found`` onto indices of ``expected``; a clear error if they differ.

    Returns ``{folder_name: class_index}``. Extra or missing classes raise
    :class:`DatasetError` listing both sides.
    """
    expected_keys = {class_key(n): i for i, n in enumerate(expected)}
    found_keys = {class_key(n): n for n in found}
    missing = [n for n in expected if class_key(n) not in found_keys]
    extra = [n for n in found if class_key(n) not in expected_keys]
    if extra or missing:
        parts = []
        if extra:
            parts.append(f"classes not known to the model: {sorted(extra)}")
        if missing:
            parts.append(f"model classes with no folder: {sorted(missing)}")
        raise DatasetError(
            f"Class folders{' in ' + where if where else ''} do not match the expected classes: "
            + "; ".join(parts)
            + f". Expected {list(expected)}."
        )
    return {n: expected_keys[class_key(n)] for n in found}


def scan_class_folders(
    root: str,
    class_names: Sequence[str] | None = None,
    validate: bool = True,
    channels: int = 3,
    allow_missing_classes: bool = False,
) -> FolderDataset:
    """List ``root/<class>/*`` images and their labels.

    Args:
        root: folder holding one sub-folder per class (or wrapper folders around it,
            see :func:`class_folder_root`).
        class_names: expected classes (e.g. a trained model's). When given, the
            folders must match them (case/space/underscore-insensitively) and
            labels follow their order; otherwise classes are the sorted
            canonical folder names.
        validate: decode every image once and skip those that fail, with one
            warning naming them and their count.
        channels: channels used for the validation decode.
        allow_missing_classes: accept a folder that lacks some expected classes
            (evaluation on a subset).

    Raises:
        DatasetError: missing root, no class folders, an empty class folder,
            two folders that are the same class, or a class mismatch.
    """
    if not os.path.isdir(root):
        raise DatasetError(f"Data folder {root!r} does not exist or is not a folder.")
    found = class_folder_root(root)
    if found != root:
        log.info("Class folders found in %s", found)
        root = found
    folders = visible_entries(root)[0]  # no hidden folders, no __MACOSX of a zip made on a Mac
    if not folders:
        raise DatasetError(f"{root!r} has no class sub-folders; expected ROOT/<class>/<image files>.")
    by_key: dict[str, str] = {}
    for d in folders:
        k = class_key(d)
        if k in by_key:
            raise DatasetError(f"Folders {by_key[k]!r} and {d!r} in {root!r} name the same class.")
        by_key[k] = d

    if class_names is None:
        class_names = sorted(canonical_class_name(d) for d in folders)
        index = {d: class_names.index(canonical_class_name(d)) for d in folders}
    else:
        class_names = list(class_names)
        if allow_missing_classes:
            known = {class_key(n) for n in class_names}
            extra = [d for d in folders if class_key(d) not in known]
            if extra:
                match_class_names(folders, class_names, where=root)  # raises with the full story
            index = {d: [class_key(n) for n in class_names].index(class_key(d)) for d in folders}
        else:
            index = match_class_names(folders, class_names, where=root)

    paths, labels, empty = [], [], []
    for d in folders:
        files = sorted(
            os.path.join(root, d, f)
            for f in os.listdir(os.path.join(root, d))
            if is_image_file(f) and os.path.isfile(os.path.join(root, d, f))
        )
        if not files:
            empty.append(d)
        paths.extend(files)
        labels.extend([index[d]] * len(files))
    if empty:
        raise DatasetError(
            f"Empty class folder(s) in {root!r}: {empty}. Every class needs at least one image "
            "(remove the folder or add images)."
        )

    skipped = []
    if validate:
        bad = set(find_undecodable(paths, channels=channels))
        if bad:
            skipped = [paths[i] for i in sorted(bad)]
            warn_skipped(skipped)
            paths = [p for i, p in enumerate(paths) if i not in bad]
            labels = [lab for i, lab in enumerate(labels) if i not in bad]
            present = set(labels)
            now_empty = [class_names[i] for i in sorted(index.values()) if i not in present]
            if now_empty:
                raise DatasetError(f"Class(es) {now_empty} in {root!r} have no readable images.")
    return FolderDataset(paths=paths, labels=labels, class_names=list(class_names), root=root, skipped=skipped)
