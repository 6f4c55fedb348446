"""Old option spellings keep working for one release, with one warning line; old and new together is an error."""

from __future__ import annotations

from conftest import make_class_folders


def test_tune_name_is_run_name_with_a_warning(tmp_path, capsys):
    from recaptcha_tf.cli.main import main

    data = str(tmp_path / "tiles")
    make_class_folders(data, per_class=2)
    assert main(["tune", "--data", data, "--task", "tiles", "--name", "old", "--dry-run"]) == 0
    assert "tune --name is deprecated" in capsys.readouterr().err
    assert main(["tune", "--data", data, "--task", "tiles", "--run-name", "new", "--dry-run"]) == 0
    assert "deprecated" not in capsys.readouterr().err
    assert main(["tune", "--data", data, "--task", "tiles", "--name", "a", "--run-name", "b", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:") and "--run-name" in err[-1]


def test_balance_per_class_is_balance_with_a_warning(tmp_path, capsys):
    from recaptcha_tf.cli.main import main

    data = str(tmp_path / "tiles")
    make_class_folders(data, per_class=8)
    assert main(["balance", "--data", data, "--out", str(tmp_path / "old"), "--per-class", "9"]) == 0
    assert "balance --per-class is deprecated" in capsys.readouterr().err
    assert main(["balance", "--data", data, "--out", str(tmp_path / "b"), "--per-class", "9", "--balance", "10"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error:")
