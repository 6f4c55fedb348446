"""A CSV of ``path,text`` rows as a text-CAPTCHA source (one module: recaptcha_tf/data/text_csv.py)."""

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


@pytest.mark.parametrize(
    "rows, message",
    [
        ([("images/a.png", "ab"), ("images/a.png", "cd")], "listed twice"),
        ([("../outside.png", "ab")], "outside"),
        ([("images/missing.png", "ab")], None),
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
    from recaptcha_tf import runs
    from recaptcha_tf.data.generator import generate_captchas
    from recaptcha_tf.data.text.files import label_from_filename

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
    summary = runs.train_text(
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
    report = runs.evaluate(out, csv_path, subset="test")
    assert report["n"] == summary["test"]["n"] and 0.0 <= report["cer"]
