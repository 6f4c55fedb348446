"""--task left out: the task read from how the data is stored (recaptcha_tf/data/detect.py), and the one line."""

from __future__ import annotations

import logging
import os

import pytest
from conftest import make_class_folders, parquet_of_labels
from PIL import Image

from recaptcha_tf.data.detect import GLYPH_MAX_SIDE, choose_task, infer_task


def _images(folder, names, size=(20, 30)):
    os.makedirs(folder, exist_ok=True)
    for name in names:
        Image.new("RGB", size, "white").save(os.path.join(folder, name))


def test_images_named_by_label_are_text(tmp_path):
    _images(tmp_path / "synth", ["226md.png", "abc12-2.png"], size=(200, 50))
    task, reason = infer_task(str(tmp_path / "synth"))
    assert task == "text" and "named by their labels" in reason and "226md.png" in reason


def test_csv_and_parquet_files_and_folders_are_text(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("path,text\na.png,abc\n")
    assert infer_task(str(csv)) == ("text", f"{str(csv)!r} is a CSV file (images and their text)")
    parquet = str(tmp_path / "set" / "train.parquet")
    os.makedirs(os.path.dirname(parquet))
    parquet_of_labels(parquet, ["ab1", "cd2"])
    assert infer_task(parquet)[0] == "text" and "Parquet file" in infer_task(parquet)[1]
    assert infer_task(str(tmp_path / "set")) == ("text", f"{str(tmp_path / 'set')!r} holds Parquet files")
    assert infer_task([parquet, parquet])[0] == "text"


def test_class_folders_of_tiles_are_tiles(tmp_path):
    make_class_folders(str(tmp_path / "tiles"), per_class=2)
    task, reason = infer_task(str(tmp_path / "tiles"))
    assert task == "tiles" and "3 class folders (bus, hydrant, traffic_light)" in reason


def test_small_single_character_classes_are_chars(tmp_path):
    for char in "ab7":
        _images(tmp_path / "glyphs" / char, ["0.png", "1.png"], size=(32, 52))
    task, reason = infer_task(str(tmp_path / "glyphs"))
    assert task == "chars" and "named by one character" in reason and "52 px" in reason


def test_single_character_classes_of_large_images_are_tiles(tmp_path):
    for char in "ab":
        _images(tmp_path / "big" / char, ["0.png"], size=(GLYPH_MAX_SIDE + 1, 20))
    task, reason = infer_task(str(tmp_path / "big"))
    assert task == "tiles" and f"up to {GLYPH_MAX_SIDE + 1} px" in reason


def test_wrapper_folders_are_looked_through(tmp_path):
    make_class_folders(str(tmp_path / "download" / "images"), per_class=1)
    assert infer_task(str(tmp_path / "download"))[0] == "tiles"
    _images(tmp_path / "zip" / "samples", ["2b827.png"], size=(200, 50))
    assert infer_task(str(tmp_path / "zip"))[0] == "text"


def test_multi_label_csv_means_tiles(tmp_path):
    _images(tmp_path / "out" / "images", ["0.png"])
    (tmp_path / "out" / "labels.csv").write_text("path,labels\nimages/0.png,bus\n")
    assert infer_task(str(tmp_path / "out"), labels=str(tmp_path / "out" / "labels.csv"))[0] == "tiles"
    assert infer_task(str(tmp_path / "out"), multi_label=True)[0] == "tiles"


def test_an_empty_folder_falls_back_to_tiles_and_says_so(tmp_path):
    task, reason = infer_task(str(tmp_path))
    assert task == "tiles" and "neither class folders nor text data" in reason


def test_choose_task_logs_one_line_only_when_inferring(tmp_path, caplog):
    _images(tmp_path / "synth", ["abc.png"])
    with caplog.at_level(logging.INFO, logger="recaptcha_tf"):
        assert choose_task("tiles", str(tmp_path / "synth")) == "tiles"
        assert caplog.records == []
        assert choose_task(None, str(tmp_path / "synth")) == "text"
    (record,) = caplog.records
    assert record.getMessage().startswith("--task text (inferred: ") and "pass --task to choose" in record.getMessage()


@pytest.mark.parametrize("command", ["train", "tune"])
def test_the_command_line_infers_the_task_before_tensorflow(tmp_path, caplog, command):
    """The task is settled in ``check`` (no TensorFlow): the tiles-only --mix on text images is refused there."""
    from recaptcha_tf.cli.main import build_parser, check_args

    _images(tmp_path / "synth", ["abc.png", "abd.png"])
    argv = [command, "--data", str(tmp_path / "synth"), "--out", str(tmp_path / "run")]
    args = build_parser().parse_args(argv)
    assert args.task is None
    with caplog.at_level(logging.INFO, logger="recaptcha_tf"):
        check_args(args)
    assert args.task == "text"
    assert [r.getMessage() for r in caplog.records if "inferred" in r.getMessage()] == [
        f"--task text (inferred: {str(tmp_path / 'synth')!r} holds image files named by their labels "
        "(e.g. 'abc.png'); pass --task to choose)"
    ]
    if command == "train":
        from recaptcha_tf.cli.errors import UsageError

        with pytest.raises(UsageError, match="--mix does not apply to --task text"):
            check_args(build_parser().parse_args([*argv, "--mix", "mixup"]))


def test_task_help_says_it_is_inferred(capsys):
    from recaptcha_tf.cli.main import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "inferred from --data" in " ".join(capsys.readouterr().out.split())
