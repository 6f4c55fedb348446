"""Progress bars: drawn only when asked for (the command line, not -q) and only on a terminal."""

from __future__ import annotations

import sys

import pytest

from recaptcha_tf.utils.progress import bars_enabled, progress, progress_bars


@pytest.fixture
def terminal(monkeypatch, capsys):
    """stderr that says it is a terminal (captured all the same): patched when the test body starts, since pytest
    swaps ``sys.stderr`` between a fixture's set-up and the test."""

    class Capsys:
        def readouterr(self):
            return capsys.readouterr()

    def patch():
        monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)

    Capsys.patch = staticmethod(patch)
    return Capsys()


def _drain(bar_or_iterable):
    for _ in bar_or_iterable:
        pass


def test_no_bar_unless_asked_for(terminal):
    terminal.patch()
    _drain(progress(range(50), desc="work"))
    assert terminal.readouterr().err == "" and not bars_enabled()


def test_a_bar_on_a_terminal_when_asked(terminal):
    terminal.patch()
    with progress_bars():
        assert bars_enabled()
        _drain(progress(range(50), desc="work", unit="img"))
    err = terminal.readouterr().err
    assert "work" in err and "/50 [" in err
    assert not bars_enabled()  # the block ended


def test_no_bar_off_a_terminal(capsys):
    with progress_bars():
        _drain(progress(range(50), desc="work"))
    assert capsys.readouterr().err == ""


def test_no_bar_below_the_minimum(terminal):
    terminal.patch()
    with progress_bars():
        _drain(progress(range(5), desc="work", minimum=10))
        bar = progress(total=5, desc="manual", minimum=10)
        bar.update(5)
        bar.close()
    assert terminal.readouterr().err == ""


def test_generate_shows_a_bar_unless_quiet(terminal, tmp_path):
    terminal.patch()
    from recaptcha_tf.cli.main import main

    assert main(["generate", "--out", str(tmp_path / "a"), "--count", "3"]) == 0
    assert "generate" in terminal.readouterr().err
    assert main(["generate", "--out", str(tmp_path / "b"), "--count", "3", "-q"]) == 0
    assert "generate:" not in terminal.readouterr().err
