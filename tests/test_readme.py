"""README.md's shell examples run as written, in a temporary folder, and exit 0.

Every ```bash / ```sh / ```console block is read; each command line runs through ``bash`` (``$(...)`` included) in one
temporary folder, in order, so later lines see what earlier ones wrote. The rule for what runs, by command, so a new
README line is covered without editing this test:

* skipped: ``pip`` and ``make`` (installing, the demo and the whole suite), ``recaptcha-tf tune`` and ``demo``
  (minutes of training), ``recaptcha-tf serve`` (runs until stopped), and any line ending in ``# readme-test: skip``;
* shortened: ``recaptcha-tf train`` runs with :data:`FAST_TRAIN` appended for its task (later flags win in argparse),
  so the run folder the next lines evaluate, predict from and export exists after seconds, not minutes;
* everything else runs as written (``python -c ...``, ``generate``, ``evaluate``, ``predict``, ``export``, ...).
"""

from __future__ import annotations

import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
SKIP = re.compile(r"^(pip|make)\b|^recaptcha-tf\s+(tune|demo|serve)\b|#\s*readme-test:\s*skip\s*$")
TINY = ["--model-arg", "conv_layers=1", "--model-arg", "filters=4", "--model-arg", "dense_units=8"]
FAST_TRAIN = {
    "tiles": ["--epochs", "1", "--image-size", "24", "--balance", "0", "--logdir", "", *TINY],
    "chars": ["--model", "cnn", "--epochs", "1", "--image-size", "24", "--logdir", "", *TINY],
    "text": ["--steps", "4", "--time-budget", "0", "--logdir", ""],
}


def shell_commands(text: str) -> list[str]:
    """The command lines of the shell blocks, continuation lines joined, comments-only and blank lines left out."""
    commands = []
    for block in re.findall(r"^```(?:bash|sh|console)\n(.*?)^```", text, flags=re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def planned(command: str) -> str | None:
    """The command as the test runs it (see the module's rule), or ``None`` when it is skipped."""
    if SKIP.search(command):
        return None
    if re.match(r"^recaptcha-tf\s+train\b", command):
        words = shlex.split(command.split(" #")[0])
        task = words[words.index("--task") + 1] if "--task" in words else "tiles"
        return shlex.join(words + FAST_TRAIN[task])
    return command


def test_the_rule_reads_the_readme():
    commands = shell_commands(README.read_text())
    runs = [c for c in map(planned, commands) if c]
    assert any(c.startswith("recaptcha-tf generate") for c in runs)
    assert any(c.startswith("recaptcha-tf train") and "--epochs 1" in c for c in runs)
    assert not any(c.startswith(("pip", "make", "recaptcha-tf serve")) for c in runs)


def test_readme_shell_examples_run(tmp_path):
    env = {
        **os.environ,
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    }
    env.pop("RECAPTCHA_TF_PRETRAINED_DIR", None)  # the package's own shipped models, as a reader of the README has
    ran = 0
    for command in shell_commands(README.read_text()):
        line = planned(command)
        if line is None:
            continue
        done = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{line}\nexit {done.returncode}\n{done.stderr[-3000:]}"
        ran += 1
    assert ran >= 8
