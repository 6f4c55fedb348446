"""merge-parquet never destroys an input: links are refused, the output is written under a temporary name."""

import os

import pytest
from conftest import parquet_of_labels

TINY = dict(conv_layers=1, filters=4, dense_units=8)


def test_merge_parquet_refuses_a_link_to_an_input_and_leaves_it_intact(tmp_path, capsys):
    from recaptcha_tf.cli.main import main

    a = parquet_of_labels(str(tmp_path / "a.parquet"), ["ab1", "cd2"])
    b = parquet_of_labels(str(tmp_path / "b.parquet"), ["ef3"])
    before = open(a, "rb").read()
    link = str(tmp_path / "link.parquet")
    os.symlink(a, link)
    assert main(["merge-parquet", a, b, "--out", link]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "also an input" in err and "Traceback" not in err
    assert open(a, "rb").read() == before
    hard = str(tmp_path / "hard.parquet")
    os.link(b, hard)
    assert main(["merge-parquet", a, b, "--out", hard]) == 2
    assert open(b, "rb").read() == open(hard, "rb").read()


def test_merge_parquet_writes_a_temporary_file_and_renames_it(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from recaptcha_tf.data.text import parquet as text

    a = parquet_of_labels(str(tmp_path / "a.parquet"), ["ab1", "cd2"])
    out = str(tmp_path / "out.parquet")
    parquet_of_labels(out, ["old"])
    old = open(out, "rb").read()
    real = text._normalised_table

    def failing(*args):
        raise KeyboardInterrupt  # killed mid-merge

    monkeypatch.setattr(text, "_normalised_table", failing)
    with pytest.raises(KeyboardInterrupt):
        text.merge_parquet([a], out)
    assert open(out, "rb").read() == old  # the previous output is untouched
    assert sorted(os.listdir(tmp_path)) == ["a.parquet", "out.parquet"]  # no temporary file left behind
    monkeypatch.setattr(text, "_normalised_table", real)
    assert text.merge_parquet([a], out) == 2
    assert pq.read_table(out).column("text").to_pylist() == ["ab1", "cd2"]
