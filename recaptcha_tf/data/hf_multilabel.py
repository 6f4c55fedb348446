"""Convert a Hugging Face multi-label image dataset (e.g. ReCAPTCHAv2-29k) to ``path,labels``.

ReCAPTCHAv2-29k (``nobodyPerfecZ/recaptchav2-29k`` on the Hub) stores each tile
as ``{"image": <image>, "labels": [0, 0, 1, ...]}``: a multi-hot vector over the
class names. The Hub serves it in one of the ``datasets`` layouts, all read here
without the ``datasets`` library:

* **Parquet** (the Hub's own files): ``data/train-00000-of-00001.parquet`` ...,
  with the ``image`` column a struct of ``bytes`` and ``path``;
* **Arrow** (``Dataset.save_to_disk``): ``data-00000-of-00001.arrow`` files in
  one folder per split, with ``dataset_info.json`` beside them;
* **image folder** (``datasets``' ImageFolder): images plus a ``metadata.jsonl``
  or ``metadata.csv`` with a ``file_name`` column and the labels.

Labels may be a multi-hot vector (needs the class names), a list of class
indices or a list of class names. The class names come from ``class_names``
(the CLI's ``--classes``) or else from the dataset's own ``features`` metadata
(a ``ClassLabel``'s ``names``, stored in the Parquet schema or
``dataset_info.json``).

The output is what ``recaptcha-tf train --multi-label --labels`` reads::

    OUT/images/<split>/<split>-00000.png ...     (the original bytes, not re-encoded)
    OUT/labels.csv                               path,labels  (';'-separated names)

Output names are made from the split and the row number, never from paths
stored in the dataset; every image's header is checked against the pixel limit.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
from collections.abc import Iterator, Sequence

from recaptcha_tf.data.folders import DatasetError, canonical_class_name
from recaptcha_tf.data.images import CorruptImageError, check_image_size, max_pixels
from recaptcha_tf.utils.progress import progress

IMAGE_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "BMP": ".bmp", "WEBP": ".webp"}
SPLITS = ("train", "validation", "valid", "val", "test")


def convert_multilabel(
    source: str,
    out: str,
    class_names: Sequence[str] | None = None,
    image_column: str = "image",
    label_column: str = "labels",
    allow_outside: bool = False,
) -> dict:
    """Write ``out/images/...`` and ``out/labels.csv`` from a Hugging Face dataset at ``source``.

    Args:
        source: a ``.parquet`` or ``.arrow`` file, or a folder holding Parquet files, Arrow
            files (``save_to_disk``) or an image folder with ``metadata.jsonl`` / ``metadata.csv``.
        class_names: the names of the multi-hot positions / class indices (default: the
            dataset's ``features`` metadata).
        allow_outside: image-folder metadata may name files outside ``source``.

    Returns:
        ``{"csv": path, "images": n, "skipped": [...], "class_names": [...], "splits": {split: n}}``.

    Raises:
        DatasetError: nothing readable at ``source``, a missing column, labels that do not
            match the class names, or no class names for multi-hot labels.
    """
    tables = list(_tables(source))
    if not tables:
        raise DatasetError(f"{source!r} holds no Parquet, Arrow or image-folder metadata (metadata.jsonl/.csv).")
    names = list(class_names) if class_names else _feature_names(tables, label_column)
    images_dir = os.path.join(out, "images")
    rows, skipped, splits, numbered = [], [], {}, {}
    for split, records, base in tables:
        os.makedirs(os.path.join(images_dir, split), exist_ok=True)
        for record in progress(records, desc=f"convert {split}", unit="img"):
            i = numbered[split] = numbered.get(split, -1) + 1  # numbered across a split's shards (train-0000x-of-..)
            if image_column not in record or label_column not in record:
                raise DatasetError(
                    f"{source!r}: rows need the columns {image_column!r} and {label_column!r}; "
                    f"found {sorted(record)} (--image-column / --label-column)."
                )
            name = f"{split}-{i:05d}"
            try:
                data = _image_bytes(record[image_column], base, allow_outside)
                check_image_size(data, max_pixels(), name)
                labels = _label_names(record[label_column], names, name)
            except CorruptImageError as err:
                skipped.append(str(err))
                continue
            ext = _extension(data)
            rel = f"images/{split}/{name}{ext}"
            _write_bytes(os.path.join(out, rel), data)
            rows.append((rel, ";".join(labels)))
            splits[split] = splits.get(split, 0) + 1
    if not rows:
        raise DatasetError(f"No readable images in {source!r}.")
    csv_path = os.path.join(out, "labels.csv")
    tmp = csv_path + ".partial"
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("path", "labels"))
        writer.writerows(rows)
    os.replace(tmp, csv_path)
    return {"csv": csv_path, "images": len(rows), "skipped": skipped, "class_names": names, "splits": splits}


def _tables(source: str) -> Iterator[tuple[str, Iterator[dict] | list[dict], str]]:
    """``(split, records, base folder)`` for each table found at ``source``."""
    if os.path.isfile(source):
        files = [source]
    elif os.path.isdir(source):
        meta = [
            os.path.join(source, m)
            for m in ("metadata.jsonl", "metadata.csv")
            if os.path.isfile(os.path.join(source, m))
        ]
        if meta:
            yield _split_of(source), _image_folder_records(meta[0]), source
            return
        files = sorted(
            glob.glob(os.path.join(source, "**", "*.parquet"), recursive=True)
            + glob.glob(os.path.join(source, "**", "*.arrow"), recursive=True)
        )
    else:
        raise DatasetError(f"{source!r} does not exist.")
    for path in files:
        yield _split_of(path), _arrow_records(path), os.path.dirname(os.path.abspath(path))


def _split_of(path: str) -> str:
    """``train`` / ``validation`` / ``test`` from a file or folder name, else ``data``."""
    parts = os.path.normpath(os.path.abspath(path)).split(os.sep)
    for part in reversed(parts):
        stem = part.split(".")[0].split("-")[0].lower()
        if stem in SPLITS:
            return "validation" if stem in ("valid", "val") else stem
    return "data"


def _read_table(path: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.endswith(".parquet"):
        return pq.read_table(path)
    try:
        with pa.memory_map(path) as source:
            return pa.ipc.open_stream(source).read_all()
    except pa.ArrowInvalid:
        with pa.memory_map(path) as source:
            return pa.ipc.open_file(source).read_all()


def _arrow_records(path: str) -> Iterator[dict]:
    table = _read_table(path)
    for batch in table.to_batches(max_chunksize=256):
        yield from batch.to_pylist()


def _image_folder_records(meta: str) -> list[dict]:
    if meta.endswith(".jsonl"):
        with open(meta) as f:
            records = [json.loads(line) for line in f if line.strip()]
    else:
        with open(meta, newline="") as f:
            records = list(csv.DictReader(f))
        for r in records:
            for key, value in r.items():
                if isinstance(value, str) and value.strip().startswith("["):
                    r[key] = json.loads(value)
    for r in records:
        if "file_name" not in r:
            raise DatasetError(f"{meta}: every row needs a file_name.")
        r.setdefault("image", {"path": r["file_name"]})
    return records


def _feature_names(tables, label_column: str) -> list[str] | None:
    """Class names from the ``datasets`` features metadata (Parquet schema or dataset_info.json)."""
    import pyarrow.parquet as pq

    for _, _, base in tables:
        candidates = []
        info = os.path.join(base, "dataset_info.json")
        if os.path.isfile(info):
            with open(info) as f:
                candidates.append(json.load(f).get("features", {}))
        for path in glob.glob(os.path.join(base, "*.parquet")):
            meta = pq.read_schema(path).metadata or {}
            if b"huggingface" in meta:
                candidates.append(json.loads(meta[b"huggingface"]).get("info", {}).get("features", {}))
        for features in candidates:
            names = _names_in(features.get(label_column))
            if names:
                return [str(n) for n in names]
    return None


def _names_in(feature) -> list | None:
    """The ``names`` of a ClassLabel, also inside ``Sequence`` / list features."""
    if isinstance(feature, dict):
        if "names" in feature:
            return feature["names"]
        for key in ("feature", "_type"):
            if isinstance(feature.get(key), (dict, list)):
                return _names_in(feature[key])
    if isinstance(feature, list) and feature:
        return _names_in(feature[0])
    return None


def _image_bytes(value, base: str, allow_outside: bool) -> bytes:
    """The encoded image of a ``datasets`` Image value (``{"bytes", "path"}``, raw bytes or a path)."""
    if isinstance(value, dict):
        if value.get("bytes"):
            return bytes(value["bytes"])
        value = value.get("path")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str) and value:
        path = value if os.path.isabs(value) else os.path.join(base, value)
        real, root = os.path.realpath(path), os.path.realpath(base)
        if not allow_outside and os.path.commonpath([real, root]) != root:
            raise DatasetError(f"{value!r} points outside {base!r}; pass --allow-outside-data to accept it.")
        if not os.path.isfile(real):
            raise CorruptImageError(f"{value!r} does not exist.")
        with open(real, "rb") as f:
            return f.read()
    raise CorruptImageError("a row has no image bytes or path.")


def _label_names(value, names: list[str] | None, row: str) -> list[str]:
    """Label names from a multi-hot vector, class indices or names."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [v for v in value.replace(",", ";").split(";") if v.strip()]
    value = list(value)
    if all(isinstance(v, str) for v in value):
        return [canonical_class_name(v) for v in value]
    if names is None:
        raise DatasetError(
            "The labels are numbers, but the class names are unknown: pass --classes "
            "name1,name2,... in the order of the label positions."
        )
    if len(value) == len(names) and all(v in (0, 1, True, False) for v in value):
        return [canonical_class_name(n) for n, v in zip(names, value) if v]
    if any(not isinstance(v, int) or not 0 <= v < len(names) for v in value):
        raise DatasetError(f"{row}: labels {value} are neither a multi-hot vector of {len(names)} nor class indices.")
    return [canonical_class_name(names[v]) for v in value]


def _extension(data: bytes) -> str:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return IMAGE_FORMATS.get(im.format, ".png")


def _write_bytes(path: str, data: bytes) -> None:
    tmp = path + ".partial"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
