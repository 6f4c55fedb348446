"""Text CAPTCHAs as image files named by their label: ``226md.png``, ``abc12-3.png``."""

from __future__ import annotations

import logging
import os
import re

from recaptcha_tf.data.folders import DatasetError
from recaptcha_tf.data.images import IMAGE_EXTENSIONS, is_image_file
from recaptcha_tf.data.text.dataset import TextDataset, _finish
from recaptcha_tf.data.text.vocabulary import Vocabulary, apply_case

log = logging.getLogger("recaptcha_tf")

# ``226md.png`` -> ``226md``; ``abc12-3.png`` -> ``abc12``; ``label_17.png`` -> ``label``.
# The label is everything before the first ``-``, ``_``, space, ``(`` or ``.``;
# anything between it and the extension is a duplicate counter or a note.
DEFAULT_LABEL_PATTERN = r"^(?P<label>[^\-_.\s()]+)(?:[\-_\s(][^.]*)?\.[A-Za-z0-9]+$"


def label_from_filename(path: str, pattern: str | re.Pattern = DEFAULT_LABEL_PATTERN) -> str:
    """The label encoded in an image file name.

    Args:
        path: file path; only the base name is matched.
        pattern: regular expression searched in the base name. The label is the
            named group ``label`` if there is one, else group 1.

    Raises:
        DatasetError: the pattern does not match or gives an empty label.
    """
    name = os.path.basename(path)
    regex = re.compile(pattern) if isinstance(pattern, str) else pattern
    match = regex.search(name)
    if match is None:
        raise DatasetError(f"File name {name!r} does not match the label pattern {regex.pattern!r}.")
    if "label" in regex.groupindex:
        label = match.group("label")
    elif regex.groups >= 1:
        label = match.group(1)
    else:
        raise DatasetError(f"The label pattern {regex.pattern!r} has no group; use (?P<label>...).")
    if not label:
        raise DatasetError(f"File name {name!r} gives an empty label with the pattern {regex.pattern!r}.")
    return label


# What may follow a label under the default rule without a word: a duplicate counter or copy note
# ("226md-2.png", "226md (3).png", "226md_copy.png"). Anything else after a space ("ab cd.png") looks like more text.
_COUNTER = re.compile(r"^(?P<label>[^\-_.\s()]+)(?:[\-_][^.]*|\s*\(\d+\)|\s+\d+)?\.[A-Za-z0-9]+$")


def _warn_cut_names(files) -> None:
    """One warning when file names carry text after a space that the default rule drops (``ab cd.png`` -> ``ab``)."""
    cut = [f for f in files if not _COUNTER.match(f)]
    if cut:
        log.warning(
            "%d file name(s) hold more than a label and a counter, e.g. %r is read as %r: the label is the name up "
            "to the first '-', '_', space, '(' or '.' (pass --label-pattern to read names another way).",
            len(cut),
            cut[0],
            label_from_filename(cut[0]),
        )


def load_text_folder(
    root: str,
    pattern: str | re.Pattern = DEFAULT_LABEL_PATTERN,
    case: str = "keep",
    vocabulary: Vocabulary | None = None,
    validate: bool = True,
) -> TextDataset:
    """Read a folder of images named by their label (not recursive).

    Args:
        root: the folder. Files without an image extension (``notes.txt``) and
            hidden files are ignored.
        pattern: regex giving the label from a base name (see :func:`label_from_filename`).
        case: ``"keep"``, ``"lower"`` or ``"upper"``: applied to every label.
        vocabulary: when given, every label must encode with it.
        validate: decode every image once and skip those that fail, with one warning.

    Returns:
        A :class:`TextDataset` whose sources are paths, sorted by file name.

    Raises:
        DatasetError: missing folder, no image files, a name the pattern does not match.
        OutOfVocabularyError: a label with characters outside ``vocabulary``.
    """
    apply_case("", case)  # fail early on a bad ``case``
    if not os.path.isdir(root):
        raise DatasetError(f"Text CAPTCHA folder {root!r} does not exist or is not a folder.")
    files = sorted(f for f in os.listdir(root) if is_image_file(f) and os.path.isfile(os.path.join(root, f)))
    if not files:
        raise DatasetError(
            f"No image files ({', '.join(IMAGE_EXTENSIONS)}) in {root!r}; "
            "expected files named by their label such as 226md.png."
        )
    labels = [apply_case(label_from_filename(f, pattern), case) for f in files]
    if pattern == DEFAULT_LABEL_PATTERN:
        _warn_cut_names(files)
    dataset = TextDataset(sources=[os.path.join(root, f) for f in files], labels=labels, names=files)
    return _finish(dataset, repr(root), vocabulary, validate)


# ----------------------------------------------------------------------------- Parquet
