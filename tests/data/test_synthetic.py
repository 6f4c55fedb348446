"""Synthetic tile and glyph folders (recaptcha_tf.data.synthetic) used by the notebooks' SMOKE mode."""

import hashlib
import os

import numpy as np
import pytest
from PIL import Image

from recaptcha_tf.data.folders import scan_class_folders
from recaptcha_tf.data.synthetic import make_glyph_folders, make_tile_folders


def digest(paths):
    return hashlib.sha256(b"".join(open(p, "rb").read() for p in paths)).hexdigest()


def test_tile_folders_are_seeded_imbalanced_class_folders(tmp_path):
    paths = make_tile_folders(str(tmp_path / "a"), classes=("bus", "hydrant", "palm"), per_class=[5, 3, 2], size=24)
    assert len(paths) == 10
    ds = scan_class_folders(str(tmp_path / "a"))
    assert ds.class_names == ["bus", "hydrant", "palm"] and ds.counts() == [5, 3, 2]
    with Image.open(paths[0]) as im:
        assert im.size == (24, 24) and im.mode == "RGB"
    again = make_tile_folders(str(tmp_path / "b"), classes=("bus", "hydrant", "palm"), per_class=[5, 3, 2], size=24)
    assert digest(paths) == digest(again)
    other = make_tile_folders(
        str(tmp_path / "c"), classes=("bus", "hydrant", "palm"), per_class=[5, 3, 2], size=24, seed=1
    )
    assert digest(paths) != digest(other)
    # classes differ in colour: the mean colour of the centre separates bus (red) from hydrant (green)
    centre = [np.asarray(Image.open(p))[8:16, 8:16].mean((0, 1)) for p in (paths[0], paths[5])]
    assert centre[0][0] > centre[0][1] and centre[1][1] > centre[1][0]
    with pytest.raises(ValueError, match="2 counts for 3 classes"):
        make_tile_folders(str(tmp_path / "d"), classes=("bus", "hydrant", "palm"), per_class=[1, 2])


def test_glyph_folders_are_grayscale_characters(tmp_path):
    paths = make_glyph_folders(str(tmp_path / "g"), characters="a1", per_class=3, size=(32, 52))
    ds = scan_class_folders(str(tmp_path / "g"), channels=1)
    assert ds.class_names == ["1", "a"] and ds.counts() == [3, 3]
    with Image.open(paths[0]) as im:
        assert im.size == (32, 52) and im.mode == "L"
        pixels = np.asarray(im)
    assert pixels.min() < 100 < 180 < pixels.mean()  # dark ink on a light background
    assert digest(paths) == digest(make_glyph_folders(str(tmp_path / "h"), characters="a1", per_class=3))
    for bad in ("aA", "a-", "aa"):
        with pytest.raises(ValueError, match="distinct lower-case"):
            make_glyph_folders(str(tmp_path / "x"), characters=bad)
    assert not os.path.exists(tmp_path / "x")
