"""The fault-injection benchmark in its short mode: SIGKILL a tiny training run, every re-run must resume."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # trains, converts, or starts servers, notebooks or processes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_sigkill_at_random_instants_and_mid_backup_write_lose_nothing(tmp_path):
    result = str(tmp_path / "faults.json")
    done = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "benchmarks", "faults.py"),
            "--kills",
            "2",
            "--epochs",
            "3",
            "--wall",
            "20",
            "--seed",
            "3",
            "--json",
            result,
            "--work",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.load(open(result))
    assert report["passed"] and len(report["rows"]) == 2
    assert all(r["resumes"] and r["no_epoch_lost"] for r in report["rows"])
    assert report["final"]["history_complete"] and report["final"]["epochs_run"] == 3 and report["final"]["model_loads"]
    mid = report["mid_write"]  # latest.weights.h5 truncated as a kill during its write would leave it
    assert mid["truncated_latest"] and mid["warned"] and mid["resumed_after"] == 1 and mid["history_complete"]
