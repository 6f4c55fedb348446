"""A text dataset ready for training: vocabulary, encoded labels and targets, and the run's split.

``train_text`` and the tuner both start from :func:`text_task_data`; evaluation reads a text run's split
with :func:`text_split_names`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence

import numpy as np

from recaptcha_tf.data.duplicates import describe_identical, keep_identical_together
from recaptcha_tf.data.folders import DatasetError
from recaptcha_tf.data.splits import (
    MANIFEST_NAME,
    Split,
    SplitError,
    is_row_name,
    load_manifest,
    random_split,
    save_manifest,
)

log = logging.getLogger("recaptcha_tf")


def _text_vocabulary(labels: Sequence[str], charset: str | None):
    from recaptcha_tf.data.text.vocabulary import DEFAULT_CHARSET, Vocabulary, expand_charset

    if charset:
        return Vocabulary(expand_charset(charset)), True
    base = expand_charset(DEFAULT_CHARSET)
    extra = sorted(set("".join(labels)) - set(base))
    if extra:
        log.info("Labels use characters outside %s: %s; adding them to the vocabulary.", DEFAULT_CHARSET, extra)
    return Vocabulary(base + "".join(extra)), False


def text_targets(encoded: Sequence[Sequence[int]], max_length: int, num_outputs: int, kind: str) -> np.ndarray:
    """Training targets for encoded labels: ``(N, max_length)`` padded ids for ``ctc``, their
    ``(N, max_length, num_outputs)`` one-hot for ``multihead``."""
    import keras

    from recaptcha_tf.data.pipeline import pad_sequences

    padded = pad_sequences(encoded, max_length)
    return keras.utils.to_categorical(padded, num_outputs).astype("float32") if kind == "multihead" else padded


@dataclasses.dataclass
class TextTaskData:
    """A text dataset ready for training: its vocabulary, encoded labels and split (indices into ``dataset``)."""

    dataset: object  # recaptcha_tf.data.text.TextDataset
    vocab: object  # recaptcha_tf.data.text.Vocabulary
    strict_charset: bool
    encoded: list[list[int]]
    max_length: int
    parts: dict[str, list[int]]

    def sources(self, part: str) -> list:
        return [self.dataset.sources[i] for i in self.parts[part]]

    def texts(self, part: str) -> list[str]:
        return [self.dataset.labels[i] for i in self.parts[part]]

    def targets(self, part: str, kind: str) -> np.ndarray:
        return text_targets([self.encoded[i] for i in self.parts[part]], self.max_length, self.vocab.size + 1, kind)


def text_task_data(
    data: str,
    out: str,
    charset: str | None = None,
    case: str = "keep",
    label_pattern: str | None = None,
    fractions="70/15/15",
    seed: int = 0,
    max_length: int | None = None,
    write_split: bool = True,
    image_column: str | None = None,
    label_column: str | None = None,
    merge_val: bool = False,
) -> TextTaskData:
    """Load a text dataset, fix its vocabulary (``charset`` or ``a-z0-9`` plus the labels' characters),
    encode the labels (unknown characters are a clear error naming the file) and split it
    (:func:`text_split_parts`). ``train_text`` and the tuner both start here. ``image_column`` and
    ``label_column`` name Parquet columns (default: detected). ``merge_val`` (``--val-data``: validation comes
    from another set) trains on the split's val part too, and the split records it as training images."""
    from recaptcha_tf.data.text.files import DEFAULT_LABEL_PATTERN
    from recaptcha_tf.data.text.formats import load_text_dataset, text_data_path

    found = text_data_path(data)  # the folder the images are read from: the split's root
    if found != data:
        log.info("Reading the text CAPTCHAs in %s", found)
        data = found
    dataset = load_text_dataset(
        data,
        pattern=label_pattern or DEFAULT_LABEL_PATTERN,
        case=case,
        image_column=image_column,
        label_column=label_column,
    )
    vocab, strict = _text_vocabulary(dataset.labels, charset)
    encoded = [vocab.encode(lab, name) for lab, name in zip(dataset.labels, dataset.names)]
    parts = text_split_parts(
        dataset.names, data, out, fractions, seed, write=write_split, labels=dataset.labels, sources=dataset.sources,
        merge_val=merge_val,
    )  # fmt: skip
    return TextTaskData(dataset, vocab, strict, encoded, max_length or max(len(e) for e in encoded), parts)


def text_entry_name(path: str) -> str:
    """The dataset name of a text manifest entry: a row name (``parquet:FILE#ROW``, ``csv:PATH``) as is, a file by
    its base name."""
    return path if is_row_name(path) else os.path.basename(path)


def text_split_names(manifest: str, subset: str) -> list[str]:
    """Dataset names (see :func:`text_entry_name`) in one subset of a text run's manifest (any version)."""
    return [text_entry_name(p) for p, _ in load_manifest(manifest).subset(subset)]


def _manifest_parts(manifest: str, names: Sequence[str], data: str, remedy: str) -> tuple[dict[str, list[int]], Split]:
    """The subsets of a text manifest as indices into ``names``, and the manifest; a name not in ``names`` is an
    error."""
    split = load_manifest(manifest)
    saved = {k: [text_entry_name(p) for p, _ in split.subset(k)] for k in ("train", "val", "test")}
    index = {n: i for i, n in enumerate(names)}
    missing = [n for k in ("train", "val", "test") for n in saved[k] if n not in index]
    if missing:
        raise DatasetError(
            f"{manifest} names {len(missing)} image(s) that are not in {data!r} (e.g. {missing[0]!r}). {remedy}"
        )
    return {k: [index[n] for n in saved[k]] for k in ("train", "val", "test")}, split


def text_split_parts(
    names: Sequence[str],
    data: str,
    out: str,
    fractions="70/15/15",
    seed: int = 0,
    write: bool = True,
    labels: Sequence[str] | None = None,
    sources: Sequence | None = None,
    merge_val: bool = False,
) -> dict[str, list[int]]:
    """A text run's split as indices into ``names``: read from ``OUT/split.json`` when it exists (a resumed run
    or search), else from ``fractions`` when it is a manifest path (``--split PATH.json``: an earlier run's
    ``split.json``, to repeat its split), else a new seeded split; a split not read from ``OUT/split.json`` is
    written there when ``write`` (distributed tuner workers do not write). With ``merge_val`` the val part joins
    the training part, in the parts returned and in the split written (``--val-data``: the split must not list
    images trained on as validation images).

    The manifest has the schema of every run (:mod:`recaptcha_tf.data.splits`): ``root`` is the data
    folder, entries are ``[file relative to it, text]`` or ``[parquet:FILE#ROW, text]``.

    Raises:
        DatasetError: the manifest names an image that is no longer in ``data``.
    """
    manifest = os.path.join(out, MANIFEST_NAME)
    given = fractions if isinstance(fractions, str) and fractions.endswith(".json") else None
    if os.path.exists(manifest):
        log.info("Resuming with the split in %s", manifest)
        parts = _manifest_parts(manifest, names, data, "Use another --out, or --overwrite to start afresh.")[0]
        return _merged_val(parts) if merge_val else parts
    if given:
        if not os.path.isfile(given):
            raise DatasetError(f"--split {given}: no such manifest.")
        parts, saved = _manifest_parts(given, names, data, "Pass the data the manifest was made from.")
        log.info("Using the split in %s", given)
    else:
        try:
            parts = random_split(len(names), fractions, seed)
        except SplitError as e:
            raise DatasetError(str(e)) from None
        if sources is not None:  # byte-identical image files stay in one part (recaptcha_tf.data.duplicates)
            each_label = list(labels) if labels else [None] * len(sources)
            parts, identical = keep_identical_together(parts, list(sources), each_label)
            if identical:
                log.warning(describe_identical(identical))
    if merge_val:
        parts = _merged_val(parts)
    if write:
        from recaptcha_tf.data.splits import parse_fractions

        if given:
            seed, fractions = saved.seed, saved.fractions
        folder = data if isinstance(data, str) and not os.path.isfile(data) else ""  # a Parquet file: no folder

        def entry(i):
            name = names[i]
            path = os.path.join(folder, name) if folder and not is_row_name(name) else name
            return path, labels[i] if labels is not None else None

        split = Split(
            class_names=[],
            **{k: [entry(i) for i in v] for k, v in parts.items()},
            root=folder,
            seed=seed,
            fractions=parse_fractions(fractions),
            extra={"task": "text", "data": os.path.abspath(data) if isinstance(data, str) else None},
        )
        save_manifest(split, manifest)
    return parts


def _merged_val(parts: dict[str, list[int]]) -> dict[str, list[int]]:
    return {**parts, "train": sorted(parts["train"] + parts["val"]), "val": []}


def validation_sample(count: int, cap: int, seed: int = 0) -> list[int]:
    """Indices of the validation images read during training: all ``count`` of them up to ``cap``, else a seeded
    random ``cap`` of them in their original order (split order can follow file names, i.e. labels: a first-N cut
    would be biased). Each evaluation reads them twice (loss, then CER), so on a large set an uncapped validation
    split costs minutes of the budget without choosing a better checkpoint; the test report reads the whole test
    split either way. Shared by the trainer and the tuner."""
    if count <= cap:
        return list(range(count))
    return sorted(np.random.default_rng(seed).choice(count, size=cap, replace=False).tolist())
