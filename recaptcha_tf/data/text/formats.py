"""The table of text storage formats, and :func:`load_text_dataset` that reads any of them."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence

from recaptcha_tf.data.folders import DatasetError, visible_entries
from recaptcha_tf.data.images import is_image_file
from recaptcha_tf.data.text.csv_format import is_csv_file, load_text_csv
from recaptcha_tf.data.text.dataset import TextDataset
from recaptcha_tf.data.text.files import load_text_folder
from recaptcha_tf.data.text.parquet import load_text_parquet

log = logging.getLogger("recaptcha_tf")


@dataclasses.dataclass(frozen=True)
class TextFormat:
    """One way text CAPTCHAs can be stored, for :func:`load_text_dataset`.

    Attributes:
        name: what to call it in messages.
        matches: ``matches(path) -> bool`` for a file or folder path.
        load: ``load(path, case=, vocabulary=, validate=, **options) -> TextDataset``.
        options: the extra keyword arguments ``load`` takes (e.g. ``pattern``, ``image_column``).
    """

    name: str
    matches: Callable[[str], bool]
    load: Callable[..., TextDataset]
    options: tuple[str, ...] = ()


TEXT_FORMATS: list[TextFormat] = []


def register_text_format(
    name: str, matches: Callable[[str], bool], load: Callable[..., TextDataset], options: tuple[str, ...] = ()
) -> TextFormat:
    """Add a storage format that :func:`load_text_dataset` (so ``train``/``evaluate --task text``) reads.

    Formats are tried in registration order; the first whose ``matches`` accepts the path loads it.
    """
    fmt = TextFormat(name, matches, load, tuple(options))
    TEXT_FORMATS.append(fmt)
    return fmt


def load_text_dataset(path: str | Sequence[str], **kwargs) -> TextDataset:
    """Load text CAPTCHAs in any registered format (:data:`TEXT_FORMATS`).

    Built in: a folder of images named by their label (:func:`load_text_folder`), a
    ``.parquet`` file or a folder of them (:func:`load_text_parquet`), and a ``.csv`` of
    ``path,text`` rows (:mod:`recaptcha_tf.data.text.csv_format`). A list of paths is read as
    Parquet files.

    ``kwargs`` go to the chosen loader: ``case``, ``vocabulary``, ``validate``, and the
    options that format takes (``pattern`` for folders, ``image_column``/``label_column``
    for Parquet); the others are dropped.
    """
    common = ("case", "vocabulary", "validate")
    if not isinstance(path, (str, os.PathLike)):
        parquet_kwargs = {k: v for k, v in kwargs.items() if k in (*common, "image_column", "label_column")}
        return load_text_parquet(list(path), **parquet_kwargs)
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DatasetError(f"Text dataset {path!r} does not exist.")
    for fmt in TEXT_FORMATS:
        if fmt.matches(path):
            return fmt.load(path, **{k: v for k, v in kwargs.items() if k in (*common, *fmt.options)})
    if os.path.isfile(path):
        known = ", ".join(f.name for f in TEXT_FORMATS)
        raise DatasetError(f"{path!r} is a file but not .parquet, .csv or another text format ({known}).")
    inner = text_data_path(path)
    if inner != path:
        log.info("Reading the text CAPTCHAs in %s", inner)
        return load_text_dataset(inner, **kwargs)
    raise DatasetError(f"{path!r} holds neither image files nor .parquet files.")


def text_data_path(path, max_depth: int = 4):
    """The path a text loader reads for ``path``: ``path`` itself, or, for a folder that holds no text data
    in any format and exactly one sub-folder, the folder a few levels down that does (the folder a download
    unzips to). Unchanged when no such folder is found."""
    if not isinstance(path, (str, os.PathLike)):  # a list of Parquet files is read as it is
        return path
    path = os.fspath(path)
    if not os.path.isdir(path) or any(fmt.matches(path) for fmt in TEXT_FORMATS):
        return path
    inner = _single_subfolder(path)
    for _ in range(max_depth):
        if inner is None:
            break
        if any(fmt.matches(inner) for fmt in TEXT_FORMATS):
            return inner
        inner = _single_subfolder(inner)
    return path


def _single_subfolder(path: str) -> str | None:
    """The one visible sub-folder of ``path``, or ``None`` when it has none or several."""
    folders = visible_entries(path)[0]
    return os.path.join(path, folders[0]) if len(folders) == 1 else None


def _is_image_folder(path: str) -> bool:
    return os.path.isdir(path) and any(
        is_image_file(f) and os.path.isfile(os.path.join(path, f)) for f in os.listdir(path)
    )


def _parquet_files(path: str) -> list[str]:
    if os.path.isdir(path):
        names = sorted(f for f in os.listdir(path) if f.lower().endswith(".parquet") and not f.startswith("."))
        return [os.path.join(path, f) for f in names]
    return [path] if path.lower().endswith(".parquet") else []


def _load_parquet_path(path: str, **kwargs) -> TextDataset:
    return load_text_parquet(_parquet_files(path), **kwargs)


register_text_format("image folder", _is_image_folder, load_text_folder, options=("pattern",))
register_text_format(
    "Parquet", lambda path: bool(_parquet_files(path)), _load_parquet_path, options=("image_column", "label_column")
)
register_text_format("CSV (path,text)", is_csv_file, load_text_csv)


def _folder_csv(path: str) -> str | None:
    """The one ``.csv`` file of a folder that holds no images itself (``labels.csv`` beside ``images/``)."""
    if not os.path.isdir(path) or _is_image_folder(path):
        return None
    tables = [n for n in os.listdir(path) if n.lower().endswith(".csv") and not n.startswith(".")]
    return os.path.join(path, tables[0]) if len(tables) == 1 and os.path.isfile(os.path.join(path, tables[0])) else None


def _load_folder_csv(path: str, **kwargs) -> TextDataset:
    csv_path = _folder_csv(path)
    log.info("Reading the labels in %s", csv_path)
    return load_text_csv(csv_path, **kwargs)


# a folder whose labels are in its CSV: the CSV's labels, never the image file names of a folder below it
register_text_format("folder with a CSV (path,text)", lambda path: _folder_csv(path) is not None, _load_folder_csv)
