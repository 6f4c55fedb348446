"""A CSV of ``path,text`` rows as a text-CAPTCHA source (one module: recaptcha_tf/data/text/csv_format.py)."""

from __future__ import annotations

import os

import pytest
from PIL import Image


def _write(tmp_path, rows, header=True):
    (tmp_path / "images").mkdir(exist_ok=True)
    for name, _ in rows:
        if not name.startswith(".."):
            Image.new("RGB", (60, 20), "white").save(tmp_path / name)
    lines = (["path,text"] if header else []) + [f"{n},{t}" for n, t in rows]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    return str(tmp_path / "labels.csv")


def test_csv_rows_load_through_load_text_dataset(tmp_path):
    from recaptcha_tf.data.text.formats import load_text_dataset

    path = _write(tmp_path, [("images/a.png", "ab12"), ("images/b.png", "Zx9")])
    ds = load_text_dataset(path, case="lower", pattern="ignored", image_column="ignored")
    assert ds.labels == ["ab12", "zx9"] and ds.names == ["csv:images/a.png", "csv:images/b.png"]
    assert all(os.path.isfile(s) for s in ds.sources)
    assert load_text_dataset(_write(tmp_path, [("images/a.png", "ab12")], header=False)).labels == ["ab12"]
    spaced = load_text_dataset(_write(tmp_path, [("images/a.png", " ab12"), ("images/b.png", "zx9 ")]))
    assert spaced.labels == ["ab12", "zx9"]  # a space after the comma, or before the line's end, is not a character


@pytest.mark.parametrize(
    "rows, message",
    [
        ([("images/a.png", "ab"), ("images/a.png", "cd")], "listed twice"),
        # one file under other spellings is still one file: it must not land in two splits
        (
            [("images/a.png", "ab"), ("./images/a.png", "ab")],
            r"labels\.csv:3: '\./images/a\.png' is the same file as 'images/a\.png' on line 2",
        ),
        ([("images/a.png", "ab"), ("images/../images/a.png", "ab")], "the same file as 'images/a.png'"),
        ([("../outside.png", "ab")], "outside"),
        ([("images/missing.png", "ab")], None),
        ([("images/a.png", "  ")], "expected 'path,text'"),
    ],
)
def test_bad_rows_are_clear_errors(tmp_path, rows, message):
    from recaptcha_tf.data.folders import DatasetError
    from recaptcha_tf.data.text.formats import load_text_dataset

    path = _write(tmp_path, rows)
    if message is None:  # the image is missing: remove it after writing
        os.remove(tmp_path / "images" / "missing.png")
        message = "does not exist"
    with pytest.raises(DatasetError, match=message):
        load_text_dataset(path)


@pytest.mark.slow
def test_train_and_evaluate_read_a_csv(tmp_path):
    from recaptcha_tf.data.generator import generate_captchas
    from recaptcha_tf.data.text.files import label_from_filename
    from recaptcha_tf.evaluation.workflow import evaluate
    from recaptcha_tf.training.text import train_text

    generate_captchas(str(tmp_path / "generated"), count=24, length=3, charset="abc", size=(96, 32), seed=0)
    (tmp_path / "images").mkdir()
    rows = []
    for k, name in enumerate(sorted(os.listdir(tmp_path / "generated"))):  # numbered files: the labels are in the CSV
        os.rename(tmp_path / "generated" / name, tmp_path / "images" / f"{k:03d}.png")
        rows.append(f"images/{k:03d}.png,{label_from_filename(name)}")
    csv_path = str(tmp_path / "labels.csv")
    with open(csv_path, "w") as f:
        f.write("path,text\n" + "\n".join(rows) + "\n")
    out = str(tmp_path / "run")
    summary = train_text(
        csv_path,
        out,
        charset="abc",
        epochs=1,
        batch_size=4,
        logdir=None,
        patience=0,
        augment=False,
        image_size=(32, 64),
        model_kwargs={"rnn_units": 4, "filters": [4, 4, 8, 8]},
    )
    assert summary["test"]["n"] > 0
    report = evaluate(out, csv_path, subset="test")
    assert report["n"] == summary["test"]["n"] and 0.0 <= report["cer"]


def test_a_link_to_a_listed_image_is_the_same_image(tmp_path):
    from recaptcha_tf.data.folders import DatasetError
    from recaptcha_tf.data.text.formats import load_text_dataset

    path = _write(tmp_path, [("images/a.png", "ab")])
    os.symlink(tmp_path / "images" / "a.png", tmp_path / "images" / "alias.png")
    with open(path, "a") as f:
        f.write("images/alias.png,ab\n")
    with pytest.raises(DatasetError, match="same file as 'images/a.png'"):
        load_text_dataset(path)


def test_a_csv_that_is_not_utf8_is_one_error_line(tmp_path, capsys):
    from recaptcha_tf.cli.main import main
    from recaptcha_tf.data.folders import DatasetError
    from recaptcha_tf.data.text.formats import load_text_dataset

    path = _write(tmp_path, [("images/a.png", "ab")])
    with open(path, "ab") as f:
        f.write("images/a.png,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(DatasetError, match="not UTF-8"):
        load_text_dataset(path)
    capsys.readouterr()
    assert main(["train", "--task", "text", "--data", path, "--out", str(tmp_path / "run"), "--logdir", ""]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "not UTF-8" in errors[0]


def test_a_csv_saved_with_a_byte_order_mark_keeps_its_header(tmp_path):
    from recaptcha_tf.data.text.formats import load_text_dataset

    path = _write(tmp_path, [("images/a.png", "ab")])
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(b"\xef\xbb\xbf" + data)
    assert load_text_dataset(path).labels == ["ab"]


def test_a_folder_with_a_csv_is_read_through_its_csv_not_its_image_names(tmp_path):
    """``SET/labels.csv`` beside ``SET/images/``: the labels are the CSV's, not the image files' names below."""
    from recaptcha_tf.data.detect import infer_task
    from recaptcha_tf.data.text.formats import load_text_dataset, text_data_path

    _write(tmp_path, [("images/0001.png", "226md"), ("images/0002.png", "x7k2p")])
    ds = load_text_dataset(str(tmp_path))
    assert ds.labels == ["226md", "x7k2p"]
    assert text_data_path(str(tmp_path)) == str(tmp_path) and infer_task(str(tmp_path))[0] == "text"
