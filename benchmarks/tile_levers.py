"""Levers on the shipped tile model's student: each trains the build's student again with one change, and every
row is scored on the same held-out test split in one run, beside the shipped build's student (the baseline: its run
folder, or the shipped file, the same weights, when the run folder is gone).

    python benchmarks/tile_levers.py [--levers other-weight-3 epochs-20 224 three-teachers] \
        [--build models/tiles-build] [--data ../shared/data/recaptcha-tiles] [--weights-dir ../shared/weights]

Each lever is ``tools/build_tiles.py``'s ``student`` command (MobileNetV2 1.0 from ImageNet weights, distilled
from ``teacher-mnv2-s0`` and ``teacher-vit-hybrid`` on their split, 60-minute ``--time-budget``) plus:

* ``other-weight-3``: ``--class-weight other=3``: the loss of `other` tiles (background scenes that a challenge
  must not select) counts three times (the default oversampling stays); measured against v1.1, and the build's
  student since v1.2 (a lever's value of an option replaces the build's);
* ``epochs-20``: ``--epochs 20``, twice the recipe's 10 (the longer schedule replaces the time budget);
* ``224``: ``--image-size 224x224``, the ImageNet weights' own resolution, instead of the recipe's 192;
* ``three-teachers``: ``teacher-mnv2-s1`` (the one-line recipe, seed 1, on the same split; trained first when it
  is missing, and timed) as a third teacher.

Each run is calibrated as every run is (temperature, ``--min-confidence``, challenge threshold on its validation
split), then scored with ``recaptcha_tf.evaluate`` on the build's test split (``teacher-mnv2-s0``'s: the build's
teachers are trained first when they are missing), plain and with flip TTA: the figures
of ``benchmarks/shipped_tiles.py`` (top-1, macro-F1, `other` F1, background false-positive rate, 3x3/4x4 challenges
at the stored threshold). A finished lever run is only scored again; an unfinished one resumes. Never two
trainings at once. Writes ``benchmarks/results/tile_levers.json`` (a docs table: ``tools/docs_pages.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from types import SimpleNamespace

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
from _common import machine, run_cli, table, write_results
from build_tiles import DEFAULT_TEACHERS, stage_commands
from shipped_tiles import link_test_split, row

RESULTS = os.path.join(HERE, "results")
LEVERS = {
    "other-weight-3": {"args": ["--class-weight", "other=3"]},
    "epochs-20": {"args": ["--epochs", "20"]},
    "224": {"args": ["--image-size", "224x224"]},
    "three-teachers": {"args": [], "teachers": (*DEFAULT_TEACHERS, "teacher-mnv2-s1")},
}
COLUMNS = ["lever", "tta", "top1", "macro_f1", "other_f1", "background_fpr", "grid3x3_threshold", "train_minutes"]


def build_commands(args, teachers=DEFAULT_TEACHERS) -> dict[str, list[str]]:
    """``tools/build_tiles.py``'s stage commands for this build, the student learning from ``teachers``."""
    spec = SimpleNamespace(
        data=args.data, weights_dir=args.weights_dir, work=args.build, teachers=teachers, student_minutes=60
    )
    return stage_commands(spec)


def lever_command(name: str, args) -> list[str]:
    """The build's student command with ``name``'s change, into ``args.work/name``."""
    lever = LEVERS[name]
    command = build_commands(args, lever.get("teachers", DEFAULT_TEACHERS))["student"]
    out = command.index("--out") + 1
    command[out] = os.path.join(args.work, name)
    return [*without_options(command, lever["args"][::2]), *lever["args"]]


def without_options(command: list[str], flags: list[str]) -> list[str]:
    """``command`` without each of ``flags`` and its value: a lever's value replaces the build's."""
    kept, skip = [], False
    for i, word in enumerate(command):
        if skip:
            skip = False
        elif word in flags and i + 1 < len(command):
            skip = True
        else:
            kept.append(word)
    return kept


def ensure_teachers(name: str, args) -> float:
    """Train the build stages that lever ``name`` learns from and the build lacks (the build's own teachers too,
    when its run folders are gone); their wall minutes."""
    minutes = 0.0
    for teacher in LEVERS[name].get("teachers", DEFAULT_TEACHERS):
        if not os.path.isfile(os.path.join(args.build, teacher, "summary.json")):
            minutes += run_cli(build_commands(args)[teacher]) / 60
    return minutes


def baseline_model(build: str) -> tuple[str, str, float | None]:
    """The baseline row's ``(name, model file, training minutes)``: the build's student run when it is there, else
    the shipped file (the same student, saved without its optimizer state; its training time from the model card's
    build, unknown here)."""
    student = os.path.join(build, "student")
    if os.path.isfile(os.path.join(student, "summary.json")):
        summary = json.load(open(os.path.join(student, "summary.json")))
        return "student (the shipped build's)", os.path.join(student, "model.keras"), summary["train_seconds"] / 60
    from recaptcha_tf.utils.shipped import resolve_shipped, shipped_models

    return f"shipped tiles v{shipped_models()['tiles'].version}", str(resolve_shipped("tiles")), None


def score(name: str, model: str, test_folder: str) -> list[dict]:
    from recaptcha_tf.evaluation.workflow import evaluate

    rows = []
    for tta in ("none", "flip"):
        report = evaluate(model, test_folder, subset="all", tta=tta)
        rows.append({"lever": name, **row(name, "test split", report)})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levers", nargs="+", choices=LEVERS, default=list(LEVERS))
    parser.add_argument("--build", default="models/tiles-build", help="tools/build_tiles.py's work folder")
    parser.add_argument("--data", default=os.path.join(ROOT, os.pardir, "shared", "data", "recaptcha-tiles"))
    parser.add_argument("--weights-dir", default=os.path.join(ROOT, os.pardir, "shared", "weights"))
    parser.add_argument("--work", default="models/tile-levers", help="one run folder per lever")
    args = parser.parse_args(argv)
    first_teacher = os.path.join(args.build, DEFAULT_TEACHERS[0])
    teacher_minutes = {name: ensure_teachers(name, args) for name in args.levers}  # before the split is read
    if not os.path.isfile(os.path.join(first_teacher, "split.json")):
        parser.error(f"no split at {first_teacher}: python tools/build_tiles.py builds it")
    test_folder = os.path.join(args.work, "test")
    link_test_split(first_teacher, test_folder)  # every stage and lever trains on this split
    path = os.path.join(RESULTS, "tile_levers.json")
    previous = json.load(open(path))["rows"] if os.path.isfile(path) else []
    rows = {(r["lever"], r["tta"]): r for r in previous}
    baseline_name, baseline, baseline_minutes = baseline_model(args.build)
    minutes = round(baseline_minutes, 1) if baseline_minutes is not None else None
    for r in score("baseline: " + baseline_name, baseline, test_folder):
        rows[(r["lever"], r["tta"])] = {**r, "train_minutes": minutes}
    for name in args.levers:
        run = os.path.join(args.work, name)
        command = lever_command(name, args)
        start = time.time()
        wall = None if os.path.isfile(os.path.join(run, "summary.json")) else run_cli(command)
        run_summary = json.load(open(os.path.join(run, "summary.json")))
        for r in score(name, os.path.join(run, "model.keras"), test_folder):
            rows[(name, r["tta"])] = {
                **r,
                "train_minutes": round(run_summary["train_seconds"] / 60, 1),
                "epochs": run_summary.get("epochs_run"),
                "command_minutes": round(wall / 60, 1) if wall else None,
                "teacher_minutes": round(teacher_minutes[name], 1) or None,
                "command": "recaptcha-tf " + " ".join(command),
                "machine": machine(),
                "scored": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(start)),
            }
        tiles = sum(len(files) for _, _, files in os.walk(test_folder))
        shown = os.path.relpath(baseline, ROOT) if os.path.abspath(baseline).startswith(ROOT + os.sep) else baseline
        payload = {"baseline": shown, "split": first_teacher, "test_tiles": tiles, "rows": list(rows.values())}
        write_results("tile_levers", payload)
        print(table([r for r in rows.values() if r["lever"] == name], COLUMNS), flush=True)
    print(table(list(rows.values()), COLUMNS))
    print("wrote", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
