"""Text CAPTCHA datasets: image files named by their label, or Parquet tables.

Two layouts are read into the same :class:`TextDataset`:

* A folder of images whose file names carry the label: ``226md.png``,
  ``abc12-3.png`` (a duplicate of ``abc12``), ``label_17.png``. The label is
  taken from the base name with a regular expression (:data:`DEFAULT_LABEL_PATTERN`).
* Parquet files in the Hugging Face layout: an image column that is either the
  ``Image`` feature (a struct ``{bytes: binary, path: string}``) or plain
  binary, and a string label column (``text``, ``label``, ``solution``, ...).

Images are decoded by content, never by extension, with the same TensorFlow
decoder the training pipeline uses, so a JPEG saved as ``.png`` loads and a
file that cannot be decoded is skipped (one warning) instead of crashing an
epoch later.

Label indices start at 1: index 0 is reserved for the CTC blank and for
padding, so ``Vocabulary("abc").encode("cab") == [3, 1, 2]``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence

from recaptcha_tf.data.folders import DatasetError, visible_entries
from recaptcha_tf.data.images import IMAGE_EXTENSIONS, find_undecodable, is_image_file, warn_skipped

log = logging.getLogger("recaptcha_tf")

DEFAULT_CHARSET = "a-z0-9"

# ``226md.png`` -> ``226md``; ``abc12-3.png`` -> ``abc12``; ``label_17.png`` -> ``label``.
# The label is everything before the first ``-``, ``_``, space, ``(`` or ``.``;
# anything between it and the extension is a duplicate counter or a note.
DEFAULT_LABEL_PATTERN = r"^(?P<label>[^\-_.\s()]+)(?:[\-_\s(][^.]*)?\.[A-Za-z0-9]+$"

CASE_MODES = ("keep", "lower", "upper")

# Columns tried, in order, when the caller does not name them.
LABEL_COLUMN_CANDIDATES = ("text", "label", "solution", "captcha", "answer")
IMAGE_COLUMN_CANDIDATES = ("image", "img", "image_bytes", "bytes")

# Schema metadata that lets ``datasets.load_dataset("parquet", ...)`` decode the
# ``image`` column as an ``Image`` feature, exactly like a Hub captcha dataset.
HF_FEATURES_METADATA = {
    "info": {
        "features": {
            "image": {"_type": "Image"},
            "text": {"dtype": "string", "_type": "Value"},
        }
    }
}


class OutOfVocabularyError(ValueError):
    """A label holds characters the vocabulary does not know.

    Attributes:
        source: the file (or ``parquet:file#row``) the label came from.
        label: the offending label.
        characters: the unknown characters, in order of first appearance.
        vocabulary: the known characters.
    """

    def __init__(self, source: str, label: str, characters: str, vocabulary: str, extra: str = ""):
        self.source = source
        self.label = label
        self.characters = characters
        self.vocabulary = vocabulary
        where = f"{source}: label" if source else "Label"
        super().__init__(
            f"{where} {label!r} has character(s) {characters!r} that are not in the vocabulary "
            f"{vocabulary!r}.{extra} Use a charset that covers them, or change the case "
            "handling (case='lower'/'upper')."
        )


def _char_class(char: str) -> str:
    if char.isdigit():
        return "digit"
    if char.islower():
        return "lower"
    if char.isupper():
        return "upper"
    return "other"


def expand_charset(spec: str) -> str:
    """Expand a charset spec into its characters, without duplicates.

    ``"a-z0-9"`` -> ``"abc...xyz0123456789"``; ``"A-Za-z0-9"`` -> 62 characters;
    a literal string such as ``"2345678bcdefgmnpwxy"`` is kept as is. ``x-y`` is
    a range only when ``x`` and ``y`` are both alphanumeric; any other ``-`` is a
    literal character (put it first or last: ``"-a-z"``).

    Raises:
        ValueError: an empty spec, a reversed range (``"z-a"``) or a range
            across character classes (``"0-z"``, which would pull in punctuation).
    """
    if not spec:
        raise ValueError("The charset is empty; give characters or ranges such as 'a-z0-9'.")
    chars: list[str] = []
    i = 0
    while i < len(spec):
        first = spec[i]
        if i + 2 < len(spec) and spec[i + 1] == "-" and first.isalnum() and spec[i + 2].isalnum():
            last = spec[i + 2]
            if first > last:
                raise ValueError(f"Reversed range {first}-{last} in charset {spec!r}; write {last}-{first}.")
            if _char_class(first) != _char_class(last):
                raise ValueError(
                    f"Range {first}-{last} in charset {spec!r} mixes digits/lower/upper case and would "
                    "include punctuation; write the ranges separately, e.g. 'a-z0-9'."
                )
            chars.extend(chr(c) for c in range(ord(first), ord(last) + 1))
            i += 3
        else:
            chars.append(first)
            i += 1
    return "".join(dict.fromkeys(chars))


class Vocabulary:
    """Characters of a text CAPTCHA task and their integer codes.

    Character ``characters[i]`` has code ``i + 1``; code 0 is the CTC blank and
    the padding value, so it never stands for a character.

    Args:
        characters: the known characters, each once (``"abc...z0...9"``).
    """

    def __init__(self, characters: str):
        if not characters:
            raise ValueError("A vocabulary needs at least one character.")
        repeated = sorted({c for c in characters if characters.count(c) > 1})
        if repeated:
            raise ValueError(f"Vocabulary characters must be unique; repeated: {''.join(repeated)!r}.")
        self.characters = str(characters)
        self._index = {c: i + 1 for i, c in enumerate(self.characters)}

    @property
    def size(self) -> int:
        """Number of characters (the blank not included)."""
        return len(self.characters)

    def __len__(self) -> int:
        return self.size

    def __contains__(self, char: str) -> bool:
        return char in self._index

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and other.characters == self.characters

    def __hash__(self) -> int:
        return hash(self.characters)

    def __repr__(self) -> str:
        return f"Vocabulary({self.characters!r})"

    def unknown_characters(self, label: str) -> str:
        """Characters of ``label`` not in the vocabulary, each once, in order."""
        return "".join(dict.fromkeys(c for c in label if c not in self._index))

    def encode(self, label: str, source: str = "") -> list[int]:
        """``label`` -> list of codes in ``[1, size]``.

        Raises:
            OutOfVocabularyError: naming ``source`` and the unknown characters.
        """
        unknown = self.unknown_characters(label)
        if unknown:
            raise OutOfVocabularyError(source, label, unknown, self.characters)
        return [self._index[c] for c in label]

    def decode(self, indices: Iterable) -> str:
        """Codes -> string. 0 (blank/padding), negatives and codes above ``size`` are dropped.

        Repeated codes are kept: collapsing CTC repeats is the decoder's job.
        """
        out = []
        for value in indices:
            code = int(value)
            if 1 <= code <= self.size:
                out.append(self.characters[code - 1])
        return "".join(out)

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> Vocabulary:
        """The sorted unique characters of ``labels``."""
        characters = sorted(set("".join(labels)))
        if not characters:
            raise ValueError("Cannot build a vocabulary from empty labels.")
        return cls("".join(characters))

    def to_config(self) -> dict:
        """JSON-serialisable description; :meth:`from_config` rebuilds the vocabulary."""
        return {"characters": self.characters}

    @classmethod
    def from_config(cls, config: dict) -> Vocabulary:
        return cls(config["characters"])


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


def apply_case(label: str, case: str = "keep") -> str:
    """``case``: ``"keep"``, ``"lower"`` or ``"upper"``."""
    if case == "keep":
        return label
    if case == "lower":
        return label.lower()
    if case == "upper":
        return label.upper()
    raise ValueError(f"case must be one of {CASE_MODES}, got {case!r}.")


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
    dataset = TextDataset(sources=[os.path.join(root, f) for f in files], labels=labels, names=files)
    return _finish(dataset, repr(root), vocabulary, validate)


# ----------------------------------------------------------------------------- Parquet


def _parquet_schema(path: str):
    import pyarrow.parquet as pq

    if not os.path.isfile(path):
        raise DatasetError(f"Parquet file {path!r} does not exist.")
    try:
        return pq.read_schema(path)
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError, ...
        raise DatasetError(f"{path!r} is not a readable Parquet file: {err}") from err


def _is_binary(arrow_type) -> bool:
    import pyarrow as pa

    return pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type)


def _is_image_type(arrow_type) -> bool:
    import pyarrow as pa

    if _is_binary(arrow_type):
        return True
    if pa.types.is_struct(arrow_type):
        index = arrow_type.get_field_index("bytes")
        return index >= 0 and _is_binary(arrow_type.field(index).type)
    return False


def _is_string_type(arrow_type) -> bool:
    import pyarrow as pa

    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def _describe_columns(schema) -> str:
    return ", ".join(f"{f.name} ({f.type})" for f in schema)


def _pick_column(schema, requested, candidates, accepts, what: str, path: str) -> str:
    names = {f.name: f for f in schema}
    if requested is not None:
        if requested not in names:
            raise DatasetError(
                f"{path!r} has no column {requested!r} for the {what}. Columns: {_describe_columns(schema)}."
            )
        if not accepts(names[requested].type):
            raise DatasetError(
                f"Column {requested!r} of {path!r} has type {names[requested].type}, which cannot hold the "
                f"{what}. Columns: {_describe_columns(schema)}."
            )
        return requested
    lowered = {}
    for f in schema:
        lowered.setdefault(f.name.lower(), f)
    for candidate in candidates:
        field = lowered.get(candidate)
        if field is not None and accepts(field.type):
            return field.name
    raise DatasetError(
        f"Cannot find the {what} column in {path!r}: tried {list(candidates)}. Columns: "
        f"{_describe_columns(schema)}. Name it with "
        f"{'--image-column' if what == 'image' else '--label-column'} (image_column=/label_column= in Python)."
    )


def detect_parquet_columns(path: str, image_column: str | None = None, label_column: str | None = None):
    """``(image_column, label_column)`` of a Parquet file, checked or auto-detected.

    The image column is HF ``Image`` (struct with a binary ``bytes`` field) or
    plain binary; the label column is a string. Candidates are tried in the
    order of :data:`IMAGE_COLUMN_CANDIDATES` and :data:`LABEL_COLUMN_CANDIDATES`,
    case-insensitively.
    """
    schema = _parquet_schema(path)
    image = _pick_column(schema, image_column, IMAGE_COLUMN_CANDIDATES, _is_image_type, "image", path)
    label = _pick_column(schema, label_column, LABEL_COLUMN_CANDIDATES, _is_string_type, "label", path)
    return image, label


def _read_image_label_columns(path: str, image_column: str | None, label_column: str | None):
    """``(image_bytes, image_paths, labels)`` as Python lists (``None`` where null)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    image_name, label_name = detect_parquet_columns(path, image_column, label_column)
    table = pq.read_table(path, columns=list(dict.fromkeys([image_name, label_name])))
    images = table.column(image_name)
    if pa.types.is_struct(images.type):
        data = pc.struct_field(images, "bytes").to_pylist()
        has_path = images.type.get_field_index("path") >= 0
        paths = pc.struct_field(images, "path").to_pylist() if has_path else [None] * len(data)
    else:
        data = images.to_pylist()
        paths = [None] * len(data)
    labels = table.column(label_name).to_pylist()
    return data, paths, labels


def load_text_parquet(
    paths: str | Sequence[str],
    image_column: str | None = None,
    label_column: str | None = None,
    case: str = "keep",
    vocabulary: Vocabulary | None = None,
    validate: bool = True,
) -> TextDataset:
    """Read text CAPTCHAs from one or more Parquet files (Hugging Face layout).

    Args:
        paths: a Parquet file or a list of them, read in order.
        image_column: the image column; auto-detected among
            :data:`IMAGE_COLUMN_CANDIDATES` when ``None``.
        label_column: the label column; auto-detected among
            :data:`LABEL_COLUMN_CANDIDATES` when ``None``.
        case: ``"keep"``, ``"lower"`` or ``"upper"``.
        vocabulary: when given, every label must encode with it.
        validate: decode every image once and skip those that fail, with one warning.

    Returns:
        A :class:`TextDataset` whose sources are the encoded image ``bytes`` and
        whose names are ``parquet:<file name>#<row>``. Rows with a null image or
        label are skipped (one warning).

    Raises:
        DatasetError: a missing/unreadable file or undetectable columns (the
            message lists the available ones).
    """
    apply_case("", case)
    files = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not files:
        raise DatasetError("No Parquet files given.")
    sources, labels, names, missing = [], [], [], []
    for path in files:
        path = os.fspath(path)
        data, _, texts = _read_image_label_columns(path, image_column, label_column)
        base = os.path.basename(path)
        for row, (blob, text) in enumerate(zip(data, texts)):
            name = f"parquet:{base}#{row}"
            if blob is None or text is None or text == "":
                missing.append(name)
                continue
            sources.append(bytes(blob))
            labels.append(apply_case(text, case))
            names.append(name)
    if missing:
        shown = ", ".join(missing[:50]) + (f" (and {len(missing) - 50} more)" if len(missing) > 50 else "")
        log.warning("Skipped %d Parquet row(s) without image bytes or label: %s", len(missing), shown)
    where = ", ".join(repr(os.fspath(p)) for p in files)
    if not sources:
        raise DatasetError(f"No rows with an image and a label in {where}.")
    dataset = TextDataset(sources=sources, labels=labels, names=names, skipped=missing)
    return _finish(dataset, where, vocabulary, validate)


def _normalised_schema():
    import pyarrow as pa

    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    return pa.schema(
        [("image", image_type), ("text", pa.string())],
        metadata={"huggingface": json.dumps(HF_FEATURES_METADATA)},
    )


def _normalised_table(data: Sequence, paths: Sequence, labels: Sequence[str]):
    """Arrow table with columns ``image: struct<bytes, path>`` and ``text: string``."""
    import pyarrow as pa

    schema = _normalised_schema()
    image = pa.StructArray.from_arrays(
        [pa.array(data, type=pa.binary()), pa.array(paths, type=pa.string())],
        fields=list(schema.field("image").type),
    )
    return pa.Table.from_arrays([image, pa.array(labels, type=pa.string())], schema=schema)


def _check_output(output: str, inputs: Sequence[str] = ()) -> None:
    """Refuse an output that is (through links too) one of the inputs; create its folder."""
    out = os.path.realpath(output)
    for p in inputs:
        if os.path.realpath(p) == out or (os.path.exists(output) and os.path.exists(p) and os.path.samefile(p, output)):
            raise DatasetError(
                f"The output {output!r} is also an input ({p!r}, the same file); write the merged file elsewhere."
            )
    parent = os.path.dirname(os.path.abspath(output))
    if os.path.exists(parent) and not os.path.isdir(parent):
        raise DatasetError(f"Cannot write {output!r}: {parent!r} is not a folder.")
    os.makedirs(parent, exist_ok=True)


def _partial_path(output: str) -> str:
    """A temporary name beside ``output`` (same folder, so the final rename is atomic)."""
    folder, name = os.path.split(os.path.abspath(output))
    return os.path.join(folder, f".{name}.partial{os.getpid()}")


def _write_parquet_atomically(output: str, write) -> None:
    """``write(writer)`` into a temporary file beside ``output``, renamed over it only when complete.

    A link at ``output`` is replaced by the new file; whatever it pointed to is never opened for writing.
    """
    import pyarrow.parquet as pq

    tmp = _partial_path(output)
    try:
        with pq.ParquetWriter(tmp, _normalised_schema()) as writer:
            write(writer)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text_parquet(dataset: TextDataset, output: str, rows_per_group: int = 2048) -> None:
    """Write ``dataset`` as Parquet in the normalised layout.

    Columns: ``image`` (struct ``{bytes, path}``, the Hugging Face ``Image``
    feature; ``path`` is the item's name) and ``text`` (the label). File
    sources are read as bytes and stored unchanged (no re-encoding).

    Args:
        dataset: what to write.
        output: the ``.parquet`` file to create (parent folders are created).
        rows_per_group: Parquet row-group size (and how many images are held in memory at once).
    """
    _check_output(output)

    def write(writer):
        for start in range(0, max(len(dataset), 1), rows_per_group):
            stop = min(start + rows_per_group, len(dataset))
            data = []
            for source in dataset.sources[start:stop]:
                if isinstance(source, str):
                    with open(source, "rb") as f:
                        data.append(f.read())
                else:
                    data.append(bytes(source))
            names = [n if n.startswith("parquet:") else os.path.basename(n) for n in dataset.names[start:stop]]
            writer.write_table(_normalised_table(data, names, dataset.labels[start:stop]))

    _write_parquet_atomically(output, write)


def merge_parquet(
    inputs: Sequence[str],
    output: str,
    image_column: str | None = None,
    label_column: str | None = None,
) -> int:
    """Merge Parquet files into one with the normalised ``image``/``text`` columns.

    Each input may use any supported layout (HF ``Image`` struct or plain
    binary; ``text``/``label``/... label column); columns are detected per
    file unless named. Rows are copied as they are, in input order; a plain
    binary image gets a null ``path``.

    Args:
        inputs: Parquet files to merge.
        output: the merged ``.parquet`` file (must not be one of the inputs).
        image_column, label_column: column names, when the same in every input.

    The merged file is written under a temporary name in the output's folder and
    renamed at the end, so an input is never truncated (even through a link).

    Returns:
        The number of rows written.
    """
    inputs = [os.fspath(p) for p in inputs]
    if not inputs:
        raise DatasetError("merge_parquet needs at least one input file.")
    for path in inputs:  # check every input before writing anything
        detect_parquet_columns(path, image_column, label_column)
    _check_output(output, inputs)
    rows = 0

    def write(writer):
        nonlocal rows
        for path in inputs:
            data, paths, labels = _read_image_label_columns(path, image_column, label_column)
            writer.write_table(_normalised_table(data, paths, labels))
            rows += len(labels)

    _write_parquet_atomically(output, write)
    return rows


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
    ``path,text`` rows (:mod:`recaptcha_tf.data.text_csv`). A list of paths is read as
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


def text_data_path(path: str, max_depth: int = 4) -> str:
    """The path a text loader reads for ``path``: ``path`` itself, or, for a folder that holds no text data
    in any format and exactly one sub-folder, the folder a few levels down that does (the folder a download
    unzips to). Unchanged when no such folder is found."""
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


from recaptcha_tf.data import text_csv  # noqa: E402, F401  (registers the CSV format)
