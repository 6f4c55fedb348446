import logging
import os

import numpy as np
import pytest
from conftest import make_class_folders
from PIL import Image

from recaptcha_tf.data.folders import DatasetError, class_key, scan_class_folders
from recaptcha_tf.data.images import CorruptImageError, check_image_size, load_image_array


def test_kaggle_and_tidy_layouts_give_the_same_classes(tmp_path):
    make_class_folders(str(tmp_path / "k"), layout="kaggle", per_class=3)
    make_class_folders(str(tmp_path / "t"), layout="tidy", per_class=3)
    kaggle = scan_class_folders(str(tmp_path / "k"))
    tidy = scan_class_folders(str(tmp_path / "t"))
    assert kaggle.class_names == tidy.class_names == ["bus", "hydrant", "traffic_light"]
    assert kaggle.counts() == [3, 3, 3]
    assert any("Traffic Light" in p and "(1).png" in p for p in kaggle.paths)
    # A tidy-trained model's class list maps onto the Kaggle folders.
    again = scan_class_folders(str(tmp_path / "k"), class_names=tidy.class_names)
    assert sorted(set(again.labels)) == [0, 1, 2]


def test_class_key_ignores_case_spaces_and_underscores():
    assert class_key("Traffic Light") == class_key("traffic_light") == class_key("TRAFFIC-light")


def test_mixed_sizes_and_modes_load(tmp_path):
    root = str(tmp_path / "d")
    make_class_folders(root, per_class=5, sizes=(100, 120), modes=("RGB", "RGBA", "L", "P", "I;16"))
    ds = scan_class_folders(root)
    assert len(ds.paths) == 15 and not ds.skipped
    modes = {Image.open(p).mode for p in ds.paths}
    assert {"RGB", "RGBA", "L", "P"} <= modes and any(m.startswith("I") for m in modes)
    for p in ds.paths:
        arr = load_image_array(p, channels=3)
        assert arr.dtype == np.uint8 and arr.shape[2] == 3 and arr.shape[0] in (100, 120)
    # 16-bit PNG keeps its range when reduced to 8 bits (not clipped to black or white).
    sixteen = [p for p in ds.paths if Image.open(p).mode.startswith("I")][0]
    ref = np.asarray(Image.open(sixteen), dtype=np.float64) / 257.0
    got = load_image_array(sixteen, channels=1)[..., 0]
    assert np.abs(got - ref).max() <= 1.01


def test_corrupt_and_non_image_files(tmp_path, caplog):
    root = str(tmp_path / "d")
    make_class_folders(root, per_class=4)
    with open(os.path.join(root, "bus", "broken.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    with open(os.path.join(root, "hydrant", "truncated.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0")
    with open(os.path.join(root, "bus", "notes.txt"), "w") as f:
        f.write("not an image")
    with open(os.path.join(root, "bus", ".DS_Store"), "wb") as f:
        f.write(b"\0" * 10)
    with caplog.at_level(logging.WARNING, logger="recaptcha_tf"):
        ds = scan_class_folders(root)
    assert len(ds.paths) == 12
    assert sorted(os.path.basename(p) for p in ds.skipped) == ["broken.png", "truncated.jpg"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "Skipped 2" in warnings[0] and "broken.png" in warnings[0] and "truncated.jpg" in warnings[0]
    assert not any(p.endswith(".txt") for p in ds.paths)


def test_jpeg_saved_as_png_decodes_by_content(tmp_path):
    root = str(tmp_path / "d")
    make_class_folders(root, per_class=2)
    Image.new("RGB", (30, 20), (200, 10, 10)).save(os.path.join(root, "bus", "really_a_jpeg.png"), format="JPEG")
    ds = scan_class_folders(root)
    assert any(p.endswith("really_a_jpeg.png") for p in ds.paths) and not ds.skipped


def test_empty_class_folder_is_a_clear_error(tmp_path):
    root = str(tmp_path / "d")
    make_class_folders(root, per_class=2)
    os.makedirs(os.path.join(root, "Chimney"))
    with pytest.raises(DatasetError, match="Empty class folder.*Chimney"):
        scan_class_folders(root)


def test_missing_root_and_no_classes(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        scan_class_folders(str(tmp_path / "nope"))
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"x")
    with pytest.raises(DatasetError, match="no class sub-folders"):
        scan_class_folders(str(tmp_path / "flat"))


def test_class_mismatch_names_both_sides(tmp_path):
    root = str(tmp_path / "d")
    make_class_folders(root, per_class=2, classes=("bus", "hydrant", "palm"))
    with pytest.raises(DatasetError) as err:
        scan_class_folders(root, class_names=["bus", "hydrant", "traffic_light"])
    assert "palm" in str(err.value) and "traffic_light" in str(err.value)


def test_duplicate_class_folders(tmp_path):
    root = tmp_path / "d"
    for name in ("Traffic Light", "traffic_light"):
        (root / name).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(root / name / "a.png")
    with pytest.raises(DatasetError, match="same class"):
        scan_class_folders(str(root))


def test_image_size_cap_refuses_bombs_before_decoding():
    import io

    buf = io.BytesIO()
    Image.new("L", (4000, 4000)).save(buf, format="PNG")
    with pytest.raises(CorruptImageError, match="over the limit"):
        check_image_size(buf.getvalue(), max_pixels=1_000_000)
    with pytest.raises(CorruptImageError):
        load_image_array(b"definitely not an image")


def test_the_unzipped_kaggle_download_is_read_through_its_wrapper_folders(tmp_path):
    """kagglehub's `test-dataset/versions/1/Google_Recaptcha_V2_Images_Dataset/images/<Class>/`, given at the top."""
    download = tmp_path / "versions" / "1"
    make_class_folders(str(download / "Google_Recaptcha_V2_Images_Dataset" / "images"), layout="kaggle", per_class=2)
    (download / "README.txt").write_text("readme beside the folder")
    direct = scan_class_folders(str(download / "Google_Recaptcha_V2_Images_Dataset" / "images"))
    wrapped = scan_class_folders(str(download))
    assert wrapped.class_names == direct.class_names == ["bus", "hydrant", "traffic_light"]
    assert wrapped.paths == direct.paths and wrapped.root == direct.root
    # A folder with a single class folder of images is not entered: that is a one-class set, not a wrapper.
    single = tmp_path / "single"
    make_class_folders(str(single), layout="tidy", classes=("bus",), per_class=2)
    assert scan_class_folders(str(single)).class_names == ["bus"]


def test_a_download_folder_and_its_class_folder_are_the_same_data(tmp_path):
    from recaptcha_tf.data.sources import same_folder

    classes = tmp_path / "dl" / "Google_Recaptcha_V2_Images_Dataset" / "images"
    make_class_folders(str(classes), layout="kaggle", per_class=1)
    make_class_folders(str(tmp_path / "other"), layout="kaggle", per_class=1)
    assert same_folder(str(tmp_path / "dl"), str(classes))
    assert not same_folder(str(tmp_path / "dl"), str(tmp_path / "other"))


def test_a_finished_run_is_recognised_under_the_other_spelling_of_its_data(tmp_path):
    import json

    from recaptcha_tf.training.run_folder import finished_summary

    classes = tmp_path / "dl" / "Google_Recaptcha_V2_Images_Dataset" / "images"
    make_class_folders(str(classes), layout="kaggle", per_class=1)
    out = tmp_path / "run"
    out.mkdir()
    config = {"task": "tiles", "epochs": 3, "data": str(tmp_path / "dl")}
    (out / "config.json").write_text(json.dumps(config))
    (out / "summary.json").write_text(json.dumps({"epochs_run": 3}))
    assert finished_summary(str(out), {**config, "data": str(classes)})["epochs_run"] == 3
    assert finished_summary(str(out), {**config, "data": str(tmp_path)}) is None  # other data: not this run
    assert finished_summary(str(out), {**config, "epochs": 4}) is None


def test_a_zip_made_on_a_mac_loads_without_its_macosx_folder(tmp_path):
    root = str(tmp_path / "tiles")
    make_class_folders(root, classes=("Bus", "Traffic Light"), per_class=3)
    os.makedirs(os.path.join(root, "__MACOSX", "Bus"))
    with open(os.path.join(root, "__MACOSX", "Bus", "._0000.png"), "wb") as f:
        f.write(b"\x00\x05\x16\x07 resource fork")
    ds = scan_class_folders(root)
    assert ds.class_names == ["bus", "traffic_light"] and len(ds.paths) == 6
