"""Text CAPTCHAs listed in a CSV file: rows ``path,text``.

::

    path,text
    images/0001.png,226md
    images/0002.png,x8kq2

Paths are relative to the CSV's folder (absolute paths and ``../`` that lead
outside it are refused); the header row is optional. One of the text
formats in :mod:`recaptcha_tf.data.text.formats`, so ``recaptcha-tf train --task text --data labels.csv``
(and ``evaluate``)
read it like an image folder or Parquet.
"""

from __future__ import annotations

import csv
import os

from recaptcha_tf.data.folders import DatasetError
from recaptcha_tf.data.text.dataset import TextDataset, _finish
from recaptcha_tf.data.text.vocabulary import Vocabulary, apply_case


def load_text_csv(
    path: str, case: str = "keep", vocabulary: Vocabulary | None = None, validate: bool = True
) -> TextDataset:
    """Read a ``path,text`` CSV; each image's name is ``csv:`` and its path as written (a row name in manifests).

    Raises:
        DatasetError: a row without both fields, a duplicate or missing image, or a path outside the CSV's folder.
    """
    apply_case("", case)
    root = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    sources, labels, names, first_row = [], [], [], {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8.") from err
    for line, row in enumerate(rows, start=1):
        if not row or (line == 1 and [c.strip().lower() for c in row[:2]] == ["path", "text"]):
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise DatasetError(f"{path}:{line}: expected 'path,text', got {row!r}.")
        name, text = row[0].strip(), row[1].strip()  # "a.png, abc" (a space after the comma) is the label "abc"
        image = os.path.realpath(os.path.join(root, name))
        if os.path.commonpath([image, root]) != root:
            raise DatasetError(f"{path}:{line}: {name!r} points outside the CSV's folder.")
        if not os.path.isfile(image):
            raise DatasetError(f"{path}:{line}: image {name!r} does not exist.")
        # one file is one row, however it is spelled (a.png, ./a.png, sub/../a.png, a link to it)
        if image in first_row:
            first_line, first_name = first_row[image]
            same = "listed twice" if first_name == name else f"the same file as {first_name!r} on line {first_line}"
            raise DatasetError(f"{path}:{line}: {name!r} is {same}.")
        first_row[image] = (line, name)
        sources.append(image)
        labels.append(apply_case(text, case))
        names.append(f"csv:{name}")
    if not sources:
        raise DatasetError(f"{path} lists no images.")
    return _finish(TextDataset(sources=sources, labels=labels, names=names), repr(path), vocabulary, validate)


def is_csv_file(path: str) -> bool:
    """Whether ``path`` is a ``.csv`` file (the CSV text format)."""
    return os.path.isfile(path) and path.lower().endswith(".csv")
