"""The run folder names each of its files once, and writes JSON atomically."""

from __future__ import annotations

import json
import os
import pathlib

from recaptcha_tf.utils.run_folder import RunFolder, write_json

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "recaptcha_tf"


def test_paths_are_inside_the_folder(tmp_path):
    run = RunFolder(tmp_path / "run")
    assert run.path == str(tmp_path / "run")
    assert run.model == os.path.join(run.path, "model.keras")
    assert run.backup(1) != run.backup(2) and os.path.dirname(run.backup(1)) == run.path
    assert {run.config, run.split, run.history, run.summary, run.test_report} <= {
        run.file(name) for name in RunFolder.TRAINING_STATE
    }
    assert RunFolder.EXPORT not in RunFolder.TRAINING_STATE  # --overwrite never deletes the user's exports


def test_json_round_trip_and_missing_file(tmp_path):
    run = RunFolder(tmp_path / "new" / "run")
    assert run.read_json(RunFolder.SUMMARY) is None
    run.write_json({"top1": 0.5}, RunFolder.SUMMARY)
    assert run.read_json(RunFolder.SUMMARY) == {"top1": 0.5}
    assert os.listdir(run.path) == ["summary.json"]  # no temporary file left behind


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = str(tmp_path / "summary.json")
    write_json({"ok": 1}, path)
    try:
        write_json({"bad": object()}, path)
    except TypeError:
        pass
    with open(path) as f:
        assert json.load(f) == {"ok": 1}
    assert os.listdir(tmp_path) == ["summary.json"]


def test_run_file_names_are_spelled_only_in_the_run_folder_module():
    files = ("summary.json", "history.csv", "test_report.json", "model.keras", "split.json", "phase2_plan.json")
    names = [f'"{n}"' for n in (*files, "phase1.weights.h5", "backup_phase1")]
    spelled = sorted(
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "run_folder.py" or path.parent.name != "utils"
        for name in names
        if name in path.read_text()
    )
    assert spelled == []
