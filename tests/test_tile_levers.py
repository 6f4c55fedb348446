"""``benchmarks/tile_levers.py``: each lever is the shipped build's student command with one change; the baseline."""

import os
import sys
from types import SimpleNamespace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_each_lever_is_the_students_command_with_its_change(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import tile_levers
    from build_tiles import stage_commands

    args = SimpleNamespace(data="TILES", weights_dir="W", build="B", work=str(tmp_path))
    build = SimpleNamespace(
        data="TILES", weights_dir="W", work="B", teachers=tile_levers.DEFAULT_TEACHERS, student_minutes=60
    )
    student = stage_commands(build)["student"]
    for name, lever in tile_levers.LEVERS.items():
        command = tile_levers.lever_command(name, args)
        assert command[command.index("--out") + 1] == os.path.join(str(tmp_path), name)
        teachers = [command[i + 1] for i, flag in enumerate(command) if flag == "--teacher"]
        expected = lever.get("teachers", tile_levers.DEFAULT_TEACHERS)
        assert teachers == [os.path.join("B", t) for t in expected]
        assert command[len(command) - len(lever["args"]) :] == lever["args"]
        if "teachers" not in lever:  # everything else as the student's command, the lever's options replaced
            base = command[: len(command) - len(lever["args"])]
            assert [c for c in base if c != command[command.index("--out") + 1]] == [
                c
                for c in tile_levers.without_options(student, lever["args"][::2])
                if c != student[student.index("--out") + 1]
            ]
        assert command.count("--class-weight") <= 1  # the build's own --class-weight other=3 is not repeated
    assert tile_levers.LEVERS["other-weight-3"]["args"] == ["--class-weight", "other=3"]
    assert student[-2:] == ["--class-weight", "other=3"]  # the build's student since v1.2
    assert tile_levers.without_options(["a", "--x", "1", "b", "--y", "2"], ["--x"]) == ["a", "b", "--y", "2"]


def test_the_baseline_is_the_builds_student_or_else_the_shipped_file(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import json

    import tile_levers

    from recaptcha_tf.utils.shipped import resolve_shipped, shipped_models

    name, model, minutes = tile_levers.baseline_model(str(tmp_path))  # the build's run folders are gone
    version = shipped_models()["tiles"].version
    assert (name, model, minutes) == (f"shipped tiles v{version}", str(resolve_shipped("tiles")), None)
    student = tmp_path / "student"
    student.mkdir()
    (student / "summary.json").write_text(json.dumps({"train_seconds": 1740.0}))
    name, model, minutes = tile_levers.baseline_model(str(tmp_path))
    assert model == str(student / "model.keras") and minutes == 29.0 and "student" in name
