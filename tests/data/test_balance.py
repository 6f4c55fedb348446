"""Augmentor balancing of the training split only, and class weights."""

import hashlib
import logging
import os
import random
import re
import time

import numpy as np
import pytest
from PIL import Image

from recaptcha_tf.data import balance
from recaptcha_tf.data.balance import augment_image, balance_split, class_weights
from recaptcha_tf.data.folders import DatasetError, scan_class_folders
from recaptcha_tf.data.splits import Split, load_manifest, stratified_split

SIZE = (16, 16)
MAGENTA = (255, 0, 255)


def make_dataset(root, counts=(3, 4, 8)):
    """Classes ``a``, ``b``, ``c`` of 16x16 noise with a bright green channel; every other file RGBA."""
    rng = np.random.default_rng(123)
    for c, n in zip("abc", counts):
        os.makedirs(root / c)
        for i in range(n):
            pixels = rng.integers(0, 256, size=(SIZE[1], SIZE[0], 4), dtype=np.uint8)
            pixels[..., 1] = 255
            mode = "RGBA" if i % 2 else "RGB"
            Image.fromarray(pixels if mode == "RGBA" else pixels[..., :3], mode).save(root / c / f"{c}{i}.png")
    return root


def make_split(tmp_path, counts=(3, 4, 8)):
    """Stratified 70/15/15 split (train counts 1, 2, 6); val/test files repainted solid magenta."""
    root = make_dataset(tmp_path / "data", counts)
    ds = scan_class_folders(str(root), validate=False)
    split = stratified_split(ds.paths, ds.labels, ds.class_names, seed=0, root=str(root))
    for path, _ in split.val + split.test:
        Image.new("RGB", SIZE, MAGENTA).save(path)
    return split


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def pixel_hash(path):
    with Image.open(path) as im:
        return hashlib.sha256(np.asarray(im.convert("RGB")).tobytes()).hexdigest()


def tree_bytes(folder):
    out = {}
    for dirpath, _, files in os.walk(folder):
        for f in files:
            p = os.path.join(dirpath, f)
            if f.endswith(".png"):
                out[os.path.relpath(p, folder)] = read_bytes(p)
    return out


def mtimes(folder):
    return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns for d, _, fs in os.walk(folder) for f in fs}


def test_balance_counts_sources_and_no_leak(tmp_path):
    split = make_split(tmp_path)
    assert split.counts()["train"] == [1, 2, 6]
    out = tmp_path / "balanced"
    result = balance_split(split, str(out), per_class=4, seed=0, progress=False)

    assert result.counts()["train"] == [4, 4, 6]
    assert result.extra["balanced"]["source_counts"] == [1, 2, 6]
    assert result.extra["balanced"]["counts"] == [4, 4, 6]
    assert result.class_names == split.class_names
    assert result.val == split.val and result.test == split.test

    train_by_stem = {os.path.splitext(os.path.basename(p))[0]: lab for p, lab in split.train}
    heldout = [p for p, _ in split.val + split.test]
    heldout_hashes = {pixel_hash(p) for p in heldout}
    heldout_real = {os.path.realpath(p) for p in heldout}
    for path, label in result.train:
        assert os.path.dirname(path) == os.path.join(str(out), split.class_names[label])
        assert os.path.realpath(path) not in heldout_real
        assert pixel_hash(path) not in heldout_hashes
        with Image.open(path) as im:
            assert im.size == SIZE
            rgb = np.asarray(im.convert("RGB"))
        # Train images have G=255; anything made from a magenta val/test image would have G~0.
        assert np.median(rgb[..., 1]) > 100
        name = os.path.basename(path)
        if name.startswith("orig_"):
            src = next(p for p, _ in split.train if os.path.basename(p) == name[len("orig_") :])
            assert read_bytes(src) == read_bytes(path)
        else:
            m = re.fullmatch(r"aug_(\d+)_(.+)\.png", name)
            assert m, name
            assert train_by_stem[m.group(2)] == label  # source is a training image of the same class
            with Image.open(path) as im:
                assert im.format == "PNG" and im.mode == "RGB"
    assert sum(os.path.basename(p).startswith("orig_") for p, _ in result.train) == len(split.train)

    loaded = load_manifest(str(out))
    assert loaded.to_dict() == result.to_dict()


def test_cap_limits_majority_class(tmp_path):
    split = make_split(tmp_path)
    result = balance_split(split, str(tmp_path / "out"), per_class=3, cap=3, seed=1, progress=False)
    assert result.counts()["train"] == [3, 3, 3]
    kept = [os.path.basename(p) for p, lab in result.train if lab == 2]
    assert all(k.startswith("orig_") for k in kept)
    with pytest.raises(ValueError, match="cap"):
        balance_split(split, str(tmp_path / "out2"), per_class=4, cap=3, progress=False)


def test_deterministic_and_restores_global_rngs(tmp_path):
    split = make_split(tmp_path)
    random.seed(7)
    np.random.seed(7)
    expected = (random.random(), np.random.random())
    random.seed(7)
    np.random.seed(7)
    balance_split(split, str(tmp_path / "one"), per_class=5, seed=3, progress=False)
    assert (random.random(), np.random.random()) == expected

    balance_split(split, str(tmp_path / "two"), per_class=5, seed=3, progress=False)
    balance_split(split, str(tmp_path / "three"), per_class=5, seed=4, progress=False)
    one, two, three = (tree_bytes(tmp_path / d) for d in ("one", "two", "three"))
    assert one == two
    assert one != three


def test_idempotent_and_rebuilds_on_change(tmp_path, monkeypatch):
    split = make_split(tmp_path)
    out = tmp_path / "out"
    first = balance_split(split, str(out), per_class=5, seed=0, progress=False)
    (out / "notes.txt").write_text("mine")
    before = mtimes(out)

    def fail(*args, **kwargs):
        raise AssertionError("nothing should be generated on an unchanged second call")

    with monkeypatch.context() as m:
        m.setattr(balance, "_augment_with_seed", fail)
        start = time.perf_counter()
        second = balance_split(split, str(out), per_class=5, seed=0, progress=False)
        assert time.perf_counter() - start < 2.0
    assert second.to_dict() == first.to_dict()
    assert mtimes(out) == before

    # Fewer per class: stale augmented files are removed, the user's file is kept.
    third = balance_split(split, str(out), per_class=3, seed=0, progress=False)
    assert third.counts()["train"] == [3, 3, 6]
    on_disk = sorted(os.path.join(d, f) for d, _, fs in os.walk(out) for f in fs if f.endswith(".png"))
    assert on_disk == sorted(p for p, _ in third.train)
    assert (out / "notes.txt").read_text() == "mine"

    # A changed training image also triggers a rebuild.
    src = split.train[0][0]
    Image.new("RGB", SIZE, (0, 255, 0)).save(src)
    os.utime(src, ns=(1, 1))
    fourth = balance_split(split, str(out), per_class=3, seed=0, progress=False)
    orig = next(p for p, _ in fourth.train if os.path.basename(p) == "orig_" + os.path.basename(src))
    assert read_bytes(orig) == read_bytes(src)


def test_interrupted_run_is_cleaned_up_by_the_next(tmp_path, monkeypatch):
    split = make_split(tmp_path)
    out = tmp_path / "out"
    real = balance._augment_with_seed
    calls = []

    def crash_after_two(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(balance, "_augment_with_seed", crash_after_two)
        with pytest.raises(KeyboardInterrupt):
            balance_split(split, str(out), per_class=4, seed=0, progress=False)
    result = balance_split(split, str(out), per_class=4, seed=0, progress=False)
    assert result.counts()["train"] == [4, 4, 6]
    on_disk = sorted(os.path.join(d, f) for d, _, fs in os.walk(out) for f in fs if f.endswith(".png"))
    assert on_disk == sorted(p for p, _ in result.train)


def test_refuses_foreign_or_overlapping_out_dir(tmp_path):
    split = make_split(tmp_path)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    with pytest.raises(DatasetError, match="balance.json"):
        balance_split(split, str(foreign), per_class=2, progress=False)
    assert os.listdir(foreign) == ["keep.txt"]
    with pytest.raises(ValueError, match="inside out_dir"):
        balance_split(split, split.root, per_class=2, progress=False)


def test_bad_inputs(tmp_path, caplog):
    split = make_split(tmp_path)
    with pytest.raises(ValueError, match="per_class"):
        balance_split(split, str(tmp_path / "o0"), per_class=0, progress=False)

    good = split.train[0][0]
    lonely = Split(class_names=["a", "b"], train=[(good, 0)], val=[], test=[])
    with pytest.raises(ValueError, match="'b'"):
        balance_split(lonely, str(tmp_path / "o1"), per_class=2, progress=False)

    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    mixed = Split(class_names=["a", "b"], train=[(good, 0), (str(junk), 0), (good, 1)], val=[], test=[])
    with caplog.at_level(logging.WARNING, logger="recaptcha_tf"):
        result = balance_split(mixed, str(tmp_path / "o2"), per_class=2, progress=False)
    assert "junk.png" in caplog.text
    assert result.counts()["train"] == [2, 2]
    assert all("junk" not in p for p, _ in result.train)

    only_junk = Split(class_names=["a", "b"], train=[(good, 0), (str(junk), 1)], val=[], test=[])
    with pytest.raises(DatasetError, match="'b'"):
        balance_split(only_junk, str(tmp_path / "o3"), per_class=2, progress=False)

    multi = Split(class_names=["a", "b"], train=[(good, [0, 1])], val=[], test=[])
    with pytest.raises(ValueError, match="multi-label"):
        balance_split(multi, str(tmp_path / "o4"), progress=False)
    assert not any(os.path.exists(tmp_path / f"o{i}") for i in (0, 1, 3, 4))


def test_augment_image_keeps_size_and_is_seeded():
    rng = np.random.default_rng(0)
    for size, mode in [((16, 16), "RGBA"), ((40, 8), "RGB"), ((8, 40), "L")]:
        image = Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 4), dtype=np.uint8), "RGBA").convert(mode)
        outs = [augment_image(image, np.random.default_rng(s)) for s in range(20)]
        assert all(o.size == size and o.mode == "RGB" for o in outs)
        again = augment_image(image, np.random.default_rng(5))
        assert np.array_equal(np.asarray(again), np.asarray(outs[5]))


def test_class_weights_hand_computed():
    split = Split(
        class_names=["a", "b", "c"],
        train=[("x", 0), ("x", 0), ("x", 1), ("x", 1), ("x", 1), ("x", 1), ("x", 2), ("x", 2)],
        val=[],
        test=[],
    )
    weights = class_weights(split)
    assert set(weights) == {0, 1, 2}
    assert weights[0] == pytest.approx(8 / (3 * 2))
    assert weights[1] == pytest.approx(8 / (3 * 4))
    assert weights[2] == pytest.approx(8 / (3 * 2))
    with pytest.raises(ValueError, match="'c'"):
        class_weights(Split(class_names=["a", "b", "c"], train=[("x", 0), ("x", 1)], val=[], test=[]))


@pytest.mark.parametrize("flip", [False, True])
def test_balancing_mirrors_only_for_tasks_whose_mirror_images_keep_their_label(tmp_path, flip):
    """Characters (``flip=False``, the ``chars`` task's ``flip_invariant``): no augmented copy is mirrored."""
    import numpy as np
    from PIL import Image

    from recaptcha_tf.data.class_split import prepare_folder_split

    data = tmp_path / "glyphs"
    for name, count in (("b", 3), ("d", 12)):
        (data / name).mkdir(parents=True)
        for i in range(count):
            pixels = np.zeros((32, 32, 3), np.uint8)
            pixels[:, 16:] = 255  # dark left half, light right half: a mirror swaps them
            pixels[0, 0] = [i, ord(name), 0]  # every file its own bytes (identical ones stay together)
            Image.fromarray(pixels).save(data / name / f"{i}.png")
    split = prepare_folder_split(str(data), str(tmp_path / "run"), seed=0, balance_per_class=12, flip=flip)
    augmented = [p for p, _ in split.train if os.path.basename(p).startswith("aug_")]
    assert augmented
    mirrored = 0
    for path in augmented:
        pixels = np.asarray(Image.open(path).convert("L"), dtype=float)
        mirrored += pixels[:, :12].mean() > pixels[:, -12:].mean()
    assert (mirrored > 0) == flip


def test_augmented_copies_start_from_the_pixels_training_decodes(tmp_path):
    """A transparent PNG and a 16-bit PNG: an augmented copy (no operation) holds what ``load_image_array`` (the
    training and inference decode) gives, not Pillow's alpha-dropped or clipped conversion."""
    import numpy as np
    from PIL import Image

    from recaptcha_tf.data.balance import balance_split
    from recaptcha_tf.data.images import load_image_array
    from recaptcha_tf.data.splits import Split

    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[4:12, 4:12] = [200, 30, 30, 255]  # an opaque square on a transparent background
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear.png")
    Image.fromarray(np.full((16, 16), 30000, np.uint16)).save(tmp_path / "deep.png")
    sources = [str(tmp_path / "clear.png"), str(tmp_path / "deep.png")]
    for i in range(2):
        Image.new("RGB", (16, 16), (i, 0, 0)).save(tmp_path / f"other{i}.png")
    train = [(sources[0], 0), (sources[1], 0), (str(tmp_path / "other0.png"), 1), (str(tmp_path / "other1.png"), 1)]
    split = Split(["a", "b"], train, [], [])
    balanced = balance_split(split, str(tmp_path / "out"), per_class=6, seed=0, progress=False, operations=())
    copies = [p for p, label in balanced.train if label == 0 and os.path.basename(p).startswith("aug_")]
    assert copies
    expected = {os.path.splitext(os.path.basename(s))[0]: load_image_array(s, 3) for s in sources}
    for path in copies:
        stem = next(k for k in expected if k in os.path.basename(path))
        np.testing.assert_array_equal(np.asarray(Image.open(path).convert("RGB")), expected[stem])
