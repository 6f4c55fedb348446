"""The :class:`TextDataset` every text format loads into, and the checks each loader finishes with."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable

from recaptcha_tf.data.folders import DatasetError
from recaptcha_tf.data.images import find_undecodable, warn_skipped
from recaptcha_tf.data.text.vocabulary import OutOfVocabularyError, Vocabulary

log = logging.getLogger("recaptcha_tf")


@dataclasses.dataclass
class TextDataset:
    """Images and their text labels.

    Attributes:
        sources: image file paths (``str``) or encoded image ``bytes`` (Parquet rows).
        labels: the text of each image.
        names: what to call each image in messages and reports: the file name,
            or ``parquet:file.parquet#row``.
        skipped: names of images left out while loading (corrupt, missing).
    """

    sources: list
    labels: list[str]
    names: list[str]
    skipped: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self):
        if not len(self.sources) == len(self.labels) == len(self.names):
            raise ValueError(
                f"sources, labels and names differ in length: "
                f"{len(self.sources)}, {len(self.labels)}, {len(self.names)}."
            )

    def __len__(self) -> int:
        return len(self.labels)

    def max_length(self) -> int:
        """Length of the longest label (0 for an empty dataset)."""
        return max((len(label) for label in self.labels), default=0)

    def subset(self, indices: Iterable[int]) -> TextDataset:
        """The items at ``indices``, in that order (``skipped`` is kept)."""
        indices = [int(i) for i in indices]
        return TextDataset(
            sources=[self.sources[i] for i in indices],
            labels=[self.labels[i] for i in indices],
            names=[self.names[i] for i in indices],
            skipped=list(self.skipped),
        )


def _drop_undecodable(dataset: TextDataset, channels: int = 3) -> TextDataset:
    bad = set(find_undecodable(dataset.sources, channels=channels))
    if not bad:
        return dataset
    skipped = [dataset.names[i] for i in sorted(bad)]
    warn_skipped(skipped)
    kept = dataset.subset(i for i in range(len(dataset)) if i not in bad)
    kept.skipped = list(dataset.skipped) + skipped
    return kept


def check_vocabulary(dataset: TextDataset, vocabulary: Vocabulary) -> None:
    """Raise :class:`OutOfVocabularyError` for the first label that does not encode.

    The message names that file and character, and counts the other offenders.
    """
    offenders = [i for i, label in enumerate(dataset.labels) if vocabulary.unknown_characters(label)]
    if not offenders:
        return
    first = offenders[0]
    label = dataset.labels[first]
    extra = ""
    if len(offenders) > 1:
        others = sorted({c for i in offenders for c in vocabulary.unknown_characters(dataset.labels[i])})
        extra = f" {len(offenders) - 1} more label(s) are out of vocabulary (characters {''.join(others)!r})."
    raise OutOfVocabularyError(
        dataset.names[first], label, vocabulary.unknown_characters(label), vocabulary.characters, extra
    )


def _finish(dataset: TextDataset, where: str, vocabulary: Vocabulary | None, validate: bool) -> TextDataset:
    if validate:
        dataset = _drop_undecodable(dataset)
        if not len(dataset):
            raise DatasetError(f"No readable images in {where}; skipped {len(dataset.skipped)} corrupt file(s).")
    if vocabulary is not None:
        check_vocabulary(dataset, vocabulary)
    return dataset
