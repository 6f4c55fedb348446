"""Text CAPTCHAs in Parquet tables (the Hugging Face layout): reading, writing and merging."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence

from recaptcha_tf.data.folders import DatasetError
from recaptcha_tf.data.text.dataset import TextDataset, _finish
from recaptcha_tf.data.text.vocabulary import Vocabulary, apply_case

log = logging.getLogger("recaptcha_tf")


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
    wrong_type = None
    for candidate in candidates:
        field = lowered.get(candidate)
        if field is not None and accepts(field.type):
            return field.name
        wrong_type = wrong_type or field
    if wrong_type is not None:
        hint = " (as numbers, labels such as 0123 lose their leading zeros)" if what == "label" else ""
        raise DatasetError(
            f"Column {wrong_type.name!r} of {path!r} has type {wrong_type.type}, which cannot hold the {what}"
            f"{hint}. Store it as {'text' if what == 'label' else 'image bytes'}, or name another column with "
            f"{'--image-column' if what == 'image' else '--label-column'}. Columns: {_describe_columns(schema)}."
        )
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
    bases = [os.path.basename(os.fspath(p)) for p in files]
    for i, path in enumerate(files):
        path = os.fspath(path)
        data, _, texts = _read_image_label_columns(path, image_column, label_column)
        # rows are named by file name; two files of one name (a/train.parquet, b/train.parquet) by position too
        base = bases[i] if bases.count(bases[i]) == 1 else f"{i}:{bases[i]}"
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
