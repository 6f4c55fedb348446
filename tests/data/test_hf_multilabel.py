"""The ReCAPTCHAv2-29k layouts (Hugging Face Parquet, Arrow, image folder) -> path,labels CSV."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import tile_image

CLASSES = ["bicycle", "bus", "car", "crosswalk"]
# multi-hot label vectors as the Hub dataset stores them; the last tile has no object at all
VECTORS = [[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0]]


def _png(i: int) -> bytes:
    buf = io.BytesIO()
    tile_image(i, np.random.default_rng(i), size=24).save(buf, format="PNG")
    return buf.getvalue()


def _features() -> dict:
    return {
        "image": {"_type": "Image"},
        "labels": {"feature": {"names": CLASSES, "_type": "ClassLabel"}, "_type": "Sequence"},
    }


def _table(vectors=VECTORS, with_metadata=True):
    import pyarrow as pa

    table = pa.table(
        {
            "image": [{"bytes": _png(i), "path": f"../../etc/{i}.png"} for i in range(len(vectors))],
            "labels": vectors,
        }
    )
    if with_metadata:
        table = table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": _features()}})})
    return table


def _expected_rows(vectors=VECTORS):
    return [";".join(c for c, v in zip(CLASSES, vec) if v) for vec in vectors]


def _read_csv(path):
    import csv

    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["path", "labels"]
    return rows[1:]


def test_hub_parquet_layout_converts_with_class_names_from_its_features(tmp_path):
    import pyarrow.parquet as pq

    from recaptcha_tf.data.hf_multilabel import convert_multilabel
    from recaptcha_tf.data.multilabel import read_label_csv

    src = tmp_path / "recaptchav2-29k" / "data"
    src.mkdir(parents=True)
    pq.write_table(_table(), src / "train-00000-of-00001.parquet")
    pq.write_table(_table(VECTORS[:2]), src / "test-00000-of-00001.parquet")
    out = tmp_path / "converted"
    result = convert_multilabel(str(tmp_path / "recaptchav2-29k"), str(out))
    assert result["class_names"] == CLASSES and result["splits"] == {"test": 2, "train": 5}
    rows = _read_csv(result["csv"])
    assert [r[1] for r in rows] == _expected_rows(VECTORS[:2]) + _expected_rows()
    # the stored '../../etc' paths are ignored: every output stays under OUT
    assert all(r[0].startswith("images/") and os.path.isfile(out / r[0]) for r in rows)
    paths, labels, names = read_label_csv(result["csv"])
    assert len(paths) == 7 and labels[-1] == [] and labels[1] == [names.index("bus"), names.index("car")]


def test_a_split_in_several_shards_keeps_every_row(tmp_path):
    """``train-00000-of-00002`` and ``train-00001-of-00002``: rows are numbered across the shards, so no image
    overwrites another and each keeps its own labels."""
    import pyarrow.parquet as pq

    from recaptcha_tf.data.hf_multilabel import convert_multilabel

    src = tmp_path / "hub" / "data"
    src.mkdir(parents=True)
    pq.write_table(_table(VECTORS[:2]), src / "train-00000-of-00002.parquet")
    pq.write_table(_table(VECTORS[2:]), src / "train-00001-of-00002.parquet")
    result = convert_multilabel(str(tmp_path / "hub"), str(tmp_path / "out"))
    rows = _read_csv(result["csv"])
    assert result["splits"] == {"train": 5} and len({path for path, _ in rows}) == 5
    assert [labels for _, labels in rows] == _expected_rows()
    assert all(os.path.isfile(tmp_path / "out" / path) for path, _ in rows)


def test_save_to_disk_arrow_layout_and_class_names_from_dataset_info(tmp_path):
    import pyarrow as pa

    from recaptcha_tf.data.hf_multilabel import convert_multilabel

    folder = tmp_path / "saved" / "validation"
    folder.mkdir(parents=True)
    table = _table(with_metadata=False)
    with (
        pa.OSFile(str(folder / "data-00000-of-00001.arrow"), "wb") as sink,
        pa.ipc.new_stream(sink, table.schema) as writer,
    ):
        writer.write_table(table)
    (folder / "dataset_info.json").write_text(json.dumps({"features": _features()}))
    result = convert_multilabel(str(tmp_path / "saved"), str(tmp_path / "out"))
    assert result["splits"] == {"validation": 5}
    assert [r[1] for r in _read_csv(result["csv"])] == _expected_rows()


def test_image_folder_with_metadata_jsonl_and_class_indices(tmp_path):
    from recaptcha_tf.data.hf_multilabel import convert_multilabel

    src = tmp_path / "imagefolder" / "train"
    src.mkdir(parents=True)
    with open(src / "metadata.jsonl", "w") as f:
        for i, vec in enumerate(VECTORS):
            (src / f"{i}.png").write_bytes(_png(i))
            f.write(json.dumps({"file_name": f"{i}.png", "labels": [j for j, v in enumerate(vec) if v]}) + "\n")
    result = convert_multilabel(str(src), str(tmp_path / "out"), class_names=CLASSES)
    assert [r[1] for r in _read_csv(result["csv"])] == _expected_rows()


def test_image_folder_paths_outside_the_source_are_refused(tmp_path):
    from recaptcha_tf.data.folders import DatasetError
    from recaptcha_tf.data.hf_multilabel import convert_multilabel

    src = tmp_path / "src"
    src.mkdir()
    (tmp_path / "secret.png").write_bytes(_png(0))
    (src / "metadata.jsonl").write_text(json.dumps({"file_name": "../secret.png", "labels": ["bus"]}) + "\n")
    with pytest.raises(DatasetError, match="outside"):
        convert_multilabel(str(src), str(tmp_path / "out"))
    result = convert_multilabel(str(src), str(tmp_path / "out"), allow_outside=True)
    assert result["images"] == 1


def test_multi_hot_labels_without_class_names_and_bad_images(tmp_path):
    import pyarrow.parquet as pq

    from recaptcha_tf.data.folders import DatasetError
    from recaptcha_tf.data.hf_multilabel import convert_multilabel

    pq.write_table(_table(with_metadata=False), tmp_path / "train.parquet")
    with pytest.raises(DatasetError, match="--classes"):
        convert_multilabel(str(tmp_path / "train.parquet"), str(tmp_path / "out"))
    import pyarrow as pa

    broken = pa.table(
        {
            "image": [{"bytes": b"not an image", "path": None}, {"bytes": _png(1), "path": None}],
            "labels": [[1, 0, 0, 0], [0, 1, 0, 0]],
        }
    )
    pq.write_table(broken, tmp_path / "broken.parquet")
    result = convert_multilabel(str(tmp_path / "broken.parquet"), str(tmp_path / "out2"), class_names=CLASSES)
    assert result["images"] == 1 and len(result["skipped"]) == 1


def test_cli_convert_multilabel_is_one_line_on_bad_input(tmp_path):
    import pyarrow.parquet as pq

    pq.write_table(_table(), tmp_path / "train.parquet")
    run = [sys.executable, "-m", "recaptcha_tf", "convert-multilabel"]
    ok = subprocess.run(
        run + [str(tmp_path / "train.parquet"), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert "wrote 5 images" in ok.stdout and os.path.isfile(tmp_path / "out" / "labels.csv")
    bad = subprocess.run(
        run + [str(tmp_path / "nothing.parquet"), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error:") and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("out", ["same", "inside", "around"])
def test_convert_multilabel_refuses_to_write_into_its_own_source(tmp_path, capsys, out):
    from recaptcha_tf.cli.main import main

    source = tmp_path / "data" / "source"
    source.mkdir(parents=True)
    target = {"same": source, "inside": source / "converted", "around": tmp_path / "data"}[out]
    assert main(["convert-multilabel", str(source), "--out", str(target)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "overlap" in errors[0]
    assert os.listdir(source) == []  # nothing written into the source
