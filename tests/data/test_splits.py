import json
import os

import pytest

from recaptcha_tf.data.splits import SplitError, load_manifest, parse_fractions, save_manifest, stratified_split


def _data(counts):
    paths, labels = [], []
    for c, n in enumerate(counts):
        paths += [f"/d/c{c}/{i:03d}.png" for i in range(n)]
        labels += [c] * n
    return paths, labels


def test_stratified_proportions_and_coverage():
    paths, labels = _data([100, 20, 7, 3])
    split = stratified_split(paths, labels, ["a", "b", "c", "d"], (0.7, 0.15, 0.15), seed=1)
    counts = split.counts()
    assert counts["train"][0] == 70 and counts["val"][0] == 15 and counts["test"][0] == 15
    assert counts["train"][1] == 14 and counts["val"][1] == 3 and counts["test"][1] == 3
    for name in ("train", "val", "test"):
        assert all(n >= 1 for n in counts[name]), (name, counts[name])
    every = [p for p, _ in split.train + split.val + split.test]
    assert sorted(every) == sorted(paths) and len(set(every)) == len(paths)


def test_split_is_deterministic_and_seeded():
    paths, labels = _data([50, 30])
    a = stratified_split(paths, labels, ["a", "b"], seed=3)
    b = stratified_split(list(reversed(paths)), list(reversed(labels)), ["a", "b"], seed=3)
    c = stratified_split(paths, labels, ["a", "b"], seed=4)
    assert a.to_dict() == b.to_dict()
    assert a.val != c.val


def test_seed_project_70_30_has_no_test():
    paths, labels = _data([10, 10])
    split = stratified_split(paths, labels, ["a", "b"], "70/30")
    assert split.test == [] and len(split.train) == 14 and len(split.val) == 6


def test_too_small_class_says_why():
    paths, labels = _data([10, 2])
    with pytest.raises(SplitError, match="'b' has 2 image"):
        stratified_split(paths, labels, ["a", "b"], (0.7, 0.15, 0.15))


def test_bad_fractions():
    with pytest.raises(SplitError):
        parse_fractions("abc")
    with pytest.raises(SplitError):
        parse_fractions("70/0/30")
    assert parse_fractions("70/15/15") == pytest.approx((0.7, 0.15, 0.15))


def test_manifest_round_trip(tmp_path):
    paths, labels = _data([6, 6])
    split = stratified_split(paths, labels, ["a", "b"], seed=2, root="/d")
    path = save_manifest(split, str(tmp_path))
    assert json.load(open(path))["class_names"] == ["a", "b"]
    assert load_manifest(str(tmp_path)).to_dict() == split.to_dict()


def test_text_split_is_written_reused_and_refuses_a_changed_dataset(tmp_path):
    """A text run's split.json is written once, read back on resume, and a name no longer in the data is an error."""
    from recaptcha_tf.data.folders import DatasetError
    from recaptcha_tf.data.text.task_data import text_split_parts

    names = [f"{i:05d}.png" for i in range(40)]
    out = str(tmp_path / "run")
    parts = text_split_parts(names, "data", out, "70/15/15", seed=3)
    assert sorted(i for v in parts.values() for i in v) == list(range(40))
    assert [len(parts[k]) for k in ("train", "val", "test")] == [28, 6, 6]
    saved = json.load(open(tmp_path / "run" / "split.json"))
    assert saved["version"] == 2 and saved["root"] == os.path.abspath("data")  # the schema of every run
    assert [path for path, _ in saved["val"]] == [names[i] for i in parts["val"]]

    # Resume: the same split even with another seed, and with the names listed in another order.
    shuffled = list(reversed(names))
    resumed = text_split_parts(shuffled, "data", out, "70/15/15", seed=99)
    assert {k: sorted(shuffled[i] for i in v) for k, v in resumed.items()} == {
        k: sorted(names[i] for i in v) for k, v in parts.items()
    }

    # A worker that must not write leaves no manifest behind.
    assert text_split_parts(names, "data", str(tmp_path / "worker"), seed=3, write=False) == parts
    assert not (tmp_path / "worker").exists()

    with pytest.raises(DatasetError, match=r"names 1 image\(s\) that are not in 'data'"):
        text_split_parts(names[1:], "data", out, seed=3)


def test_random_split_is_seeded_disjoint_and_complete():
    from recaptcha_tf.data.splits import SplitError, random_split

    parts = random_split(40, "70/15/15", seed=3)
    assert parts == random_split(40, "70/15/15", seed=3)
    assert parts != random_split(40, "70/15/15", seed=4)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [28, 6, 6]
    assert sorted(parts["train"] + parts["val"] + parts["test"]) == list(range(40))
    with pytest.raises(SplitError, match="too few"):
        random_split(1, "70/15/15")


def test_text_split_manifest_given_as_split_is_repeated_in_a_new_run(tmp_path):
    """``train --task text --split OLD/split.json`` repeats that split in a new run folder and records it there."""
    from recaptcha_tf.data.folders import DatasetError
    from recaptcha_tf.data.splits import random_split
    from recaptcha_tf.data.text.task_data import text_split_parts

    names = [f"{i:05d}.png" for i in range(40)]
    first = text_split_parts(names, "data", str(tmp_path / "first"), "70/15/15", seed=3)
    manifest = str(tmp_path / "first" / "split.json")
    repeated = text_split_parts(names, "data", str(tmp_path / "second"), manifest, seed=99)
    assert repeated == first
    assert random_split(40, "70/15/15", 99) != first  # not a fresh split with the seed given now
    again = json.load(open(tmp_path / "second" / "split.json"))
    assert again["seed"] == 3 and [p for p, _ in again["test"]] == [names[i] for i in first["test"]]
    with pytest.raises(DatasetError, match="not in 'data'"):
        text_split_parts(names[5:], "data", str(tmp_path / "third"), manifest)
    with pytest.raises(DatasetError, match="no such manifest"):
        text_split_parts(names, "data", str(tmp_path / "fourth"), str(tmp_path / "missing.json"))


def _files(root, counts, seed=0):
    """Distinct small files per class (``root/c<k>/<i>.png``, bytes only: splits never decode)."""
    paths, labels = [], []
    for c, n in enumerate(counts):
        os.makedirs(os.path.join(root, f"c{c}"), exist_ok=True)
        for i in range(n):
            path = os.path.join(root, f"c{c}", f"{i:03d}.png")
            with open(path, "wb") as f:
                f.write(f"image {c} {i} {seed}".encode())
            paths.append(path)
            labels.append(c)
    return paths, labels


def test_byte_identical_images_stay_in_one_split(tmp_path, caplog):
    paths, labels = _files(str(tmp_path), [40, 40])
    plain = stratified_split(paths, labels, ["car", "bus"], seed=3, root=str(tmp_path))
    assert "identical_images" not in plain.extra  # distinct files: the split is what it always was
    # five copies of one car image among the cars, and the same image filed once as a bus
    original = open(paths[0], "rb").read()
    for i in (1, 2, 3, 4, 5, 45):
        with open(paths[i], "wb") as f:
            f.write(original)
    with caplog.at_level("WARNING", logger="recaptcha_tf"):
        split = stratified_split(paths, labels, ["car", "bus"], seed=3, root=str(tmp_path))
    where = {p: name for name in ("train", "val", "test") for p, _ in split.subset(name)}
    copies = [paths[i] for i in (0, 1, 2, 3, 4, 5)]
    assert len({where[p] for p in copies}) == 1  # every copy of the car image in one split
    assert paths[45] not in where  # the bus copy of a car image is dropped: one image, one answer
    every = [p for name in ("train", "val", "test") for p, _ in split.subset(name)]
    assert sorted(every) == sorted(set(paths) - {paths[45]})
    (group,) = split.extra["identical_images"]
    assert group["label"] == "car" and group["dropped_labels"] == ["bus"] and len(group["files"]) == 7
    lines = [r.getMessage() for r in caplog.records if "byte-identical" in r.getMessage()]
    assert len(lines) == 1 and "1 groups of byte-identical images (7 files)" in lines[0]
    assert "000.png keeps car (drops bus)" in lines[0]
    # the record travels with the manifest, and an old manifest without it still loads
    save_manifest(split, str(tmp_path / "split.json"))
    assert load_manifest(str(tmp_path / "split.json")).extra["identical_images"][0]["files"][0] == "c0/000.png"


def test_byte_identical_text_images_stay_in_one_part(tmp_path, caplog):
    from recaptcha_tf.data.text.task_data import text_split_parts

    folder = tmp_path / "text"
    folder.mkdir()
    names = [f"w{i:02d}x.png" for i in range(40)]
    for i, name in enumerate(names):
        (folder / name).write_bytes(f"distinct {i}".encode())
    for i in (1, 2, 3, 4, 5, 6):  # the same image saved under seven names
        (folder / names[i]).write_bytes(b"one image")
    (folder / names[0]).write_bytes(b"one image")
    sources = [str(folder / n) for n in names]
    labels = ["w00x"] * 7 + [n[:4] for n in names[7:]]
    with caplog.at_level("WARNING", logger="recaptcha_tf"):
        parts = text_split_parts(names, str(folder), str(tmp_path / "run"), seed=1, labels=labels, sources=sources)
    where = {i: part for part, indices in parts.items() for i in indices}
    assert len({where[i] for i in range(7)}) == 1 and sorted(where) == list(range(40))
    assert sum("byte-identical" in r.getMessage() for r in caplog.records) == 1


def test_byte_identical_parquet_rows_stay_in_one_part(tmp_path):
    from recaptcha_tf.data.splits import random_split
    from recaptcha_tf.data.text.task_data import text_split_parts

    plain = random_split(40, "70/15/15", 1)
    same = [plain["train"][0], plain["val"][0], plain["test"][0]]  # one row in each part of the plain split
    rows = [f"row {i}".encode() for i in range(40)]
    for i in same:
        rows[i] = b"the same image bytes"
    names = [f"parquet:set.parquet#{i}" for i in range(40)]
    parts = text_split_parts(names, "set.parquet", str(tmp_path / "run"), seed=1, labels=["ab"] * 40, sources=rows)
    where = {i: part for part, indices in parts.items() for i in indices}
    assert len({where[i] for i in same}) == 1 and sorted(where) == list(range(40))


def test_a_resumed_multi_label_split_refuses_other_data_or_labels(tmp_path):
    """As a single-label run does: ``--out`` holding a multi-label run on one folder and labels CSV is not resumed
    with another."""
    from conftest import make_class_folders

    from recaptcha_tf.data.class_split import prepare_multilabel_split
    from recaptcha_tf.data.folders import DatasetError

    data, other = str(tmp_path / "a"), str(tmp_path / "b")
    make_class_folders(data, per_class=6)
    make_class_folders(other, per_class=6)
    out = str(tmp_path / "run")
    first = prepare_multilabel_split(data, out, None)
    assert prepare_multilabel_split(data, out, None).train == first.train  # the same run resumes
    with pytest.raises(DatasetError, match="holds a run on"):
        prepare_multilabel_split(other, out, None)
    labels = tmp_path / "labels.csv"
    labels.write_text("path,labels\n")
    with pytest.raises(DatasetError, match="labels"):
        prepare_multilabel_split(data, out, str(labels))
