"""`recaptcha-tf --version` and `recaptcha-tf models`: the registry as the task sees it."""

from __future__ import annotations

import json

import pytest

from recaptcha_tf.cli.main import main
from recaptcha_tf.utils.version import __version__


def test_version(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["--version"])
    assert raised.value.code == 0 and capsys.readouterr().out.strip() == f"recaptcha-tf {__version__}"


def test_models_lists_each_tasks_models_with_their_head(capsys):
    from recaptcha_tf.tasks import get_task

    assert main(["models", "--task", "text", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    rows = [r for r in rows if r["section"] == "registry"]  # then the shipped models (tests/cli/test_model_source.py)
    assert [r["model"] for r in rows] == get_task("text").models() and {r["head"] for r in rows} <= {"ctc", "multihead"}
    assert main(["models"]) == 0
    listed = capsys.readouterr().out
    assert "cnn " in listed and "crnn " in listed and "tiles,chars" in listed.replace("chars,tiles", "tiles,chars")
    assert main(["models", "--task", "nosuch"]) == 2


def test_verbosity_flags_go_before_or_after_the_command(tmp_path, capsys):
    from recaptcha_tf.cli.main import build_parser

    out = str(tmp_path / "g")
    parser = build_parser()
    assert parser.parse_args(["generate", "--out", out, "-v"]).verbose is True
    assert parser.parse_args(["-v", "generate", "--out", out]).verbose is True
    assert parser.parse_args(["generate", "--out", out, "-q"]).quiet is True
    assert parser.parse_args(["generate", "--out", out]).verbose is False
    assert main(["generate", "--out", out, "--count", "1", "-q"]) == 0
    assert main(["-v", "generate", "--out", out, "--count", "1", "-q"]) == 2
    assert "contradict" in capsys.readouterr().err


def test_generate_takes_height_by_width_and_the_old_size_for_one_release(tmp_path, capsys):
    from PIL import Image

    assert main(["generate", "--out", str(tmp_path / "new"), "--count", "1", "--image-size", "40x120"]) == 0
    (name,) = (tmp_path / "new").iterdir()
    assert Image.open(name).size == (120, 40)  # PIL gives (width, height)
    capsys.readouterr()
    assert main(["generate", "--out", str(tmp_path / "old"), "--count", "1", "--size", "120x40"]) == 0
    assert "--size WIDTHxHEIGHT is deprecated" in capsys.readouterr().err
    (name,) = (tmp_path / "old").iterdir()
    assert Image.open(name).size == (120, 40)
    assert main(["generate", "--out", str(tmp_path / "both"), "--size", "120x40", "--image-size", "40x120"]) == 2
