"""The shipped tile model, as a user gets it: its test-split figures beside its teachers', read in the same run.

    python benchmarks/shipped_tiles.py [--model tiles] [--run models/tiles-build/student] \
        [--baselines models/tiles-build/teacher-mnv2-s0 models/tiles-build/teacher-vit-hybrid]

The test split is the one the shipped run (``--run``) held out (seeded 70/15/15 of the shared tiles; the teachers
trained on the same split). Its images are linked into class folders, and every model reads that folder through
``recaptcha_tf.evaluate`` (``recaptcha-tf evaluate --model M --data FOLDER``), so the shipped file is scored as a
user would score it, not through its run folder. Rows:

* the shipped model (``--model``, a shipped name or a ``.keras`` file), plain and with flip TTA: top-1, macro-F1,
  ``other`` F1, 3x3/4x4 challenges solved (plain, and with tiles below the stored ``--min-confidence`` answered
  ``other``), the background false-positive rate (``other`` tiles scoring 0.7 or more for an object class;
  calibrated, and uncalibrated beside it), the expected calibration error;
* the same model on the same test tiles written again in the original Kaggle download layout (``Traffic Light``
  folders, ``Bus (12).png``, 120x120 RGBA and 100x100 RGB PNGs, JPEG bytes under ``.png``:
  ``benchmarks/kaggle_layout.py``), as tiles a user downloads;
* each ``--baselines`` run, and their ensemble (probabilities averaged), the teachers the shipped student learned
  from: the baseline of the same run.

The latency is the median wall time of classifying one tile at a time on this CPU (``--latency-images`` tiles).
Writes ``benchmarks/results/shipped_tiles.json``.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import latency_ms, machine, table, write_results
from kaggle_layout import write_kaggle_copy

COLUMNS = [
    "model",
    "data",
    "tta",
    "top1",
    "macro_f1",
    "other_f1",
    "grid3x3_solved",
    "grid4x4_solved",
    "grid3x3_abstaining",
    "grid3x3_threshold",
    "background_fpr",
    "background_fpr_uncalibrated",
    "ece",
    "min_confidence",
]


def link_test_split(run: str, out: str) -> tuple[list, list[str]]:
    """Link ``run``'s test-split images into ``out/<class>/``; returns the ``(path, label)`` entries and classes."""
    from recaptcha_tf.data.splits import load_manifest

    split = load_manifest(run)
    entries = list(split.subset("test"))
    for i, (path, label) in enumerate(entries):
        folder = os.path.join(out, split.class_names[label])
        os.makedirs(folder, exist_ok=True)
        target = os.path.join(folder, f"{i:05d}_{os.path.basename(path)}")
        if not os.path.lexists(target):
            os.symlink(os.path.abspath(path), target)
    return entries, list(split.class_names)


def row(name: str, data: str, report: dict) -> dict:
    calibration = report.get("calibration") or {}
    abstaining = calibration.get("abstaining") or {}
    challenge = report.get("challenge") or {}
    other = (report.get("per_class") or {}).get("other") or {}
    return {
        "model": name,
        "data": data,
        "tta": report.get("tta"),
        "n": report.get("n") or report.get("images"),
        "top1": report.get("top1"),
        "macro_f1": report.get("macro_f1"),
        "other_f1": other.get("f1"),
        "grid3x3_solved": challenge.get("3x3", {}).get("solved"),
        "grid4x4_solved": challenge.get("4x4", {}).get("solved"),
        "grid3x3_abstaining": ((abstaining.get("challenge") or {}).get("3x3") or {}).get("solved"),
        "grid4x4_abstaining": ((abstaining.get("challenge") or {}).get("4x4") or {}).get("solved"),
        "challenge_threshold": calibration.get("challenge_threshold"),
        "grid3x3_threshold": ((calibration.get("thresholded_challenge") or {}).get("3x3") or {}).get("solved"),
        "grid4x4_threshold": ((calibration.get("thresholded_challenge") or {}).get("4x4") or {}).get("solved"),
        "top1_abstaining": abstaining.get("top1"),
        "macro_f1_abstaining": abstaining.get("macro_f1"),
        "background_fpr": calibration.get("background_false_positive_rate"),
        "background_fpr_uncalibrated": calibration.get("background_false_positive_rate_uncalibrated"),
        "ece": calibration.get("ece"),
        "ece_uncalibrated": calibration.get("ece_uncalibrated"),
        "temperature": calibration.get("temperature"),
        "min_confidence": calibration.get("min_confidence"),
        "ms_per_image_batched": report.get("ms_per_image"),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiles", help="a shipped name or a .keras file")
    parser.add_argument("--run", default="models/tiles-build/student", help="the run whose test split is read")
    parser.add_argument("--baselines", nargs="*", default=None, help="runs to compare (default: the teachers)")
    parser.add_argument("--work", default="models/bench-shipped-tiles")
    parser.add_argument("--latency-images", type=int, default=50)
    args = parser.parse_args(argv)

    from recaptcha_tf.evaluation.workflow import evaluate
    from recaptcha_tf.utils.shipped import resolve_model_source

    model = str(resolve_model_source(args.model))
    build = os.path.dirname(os.path.abspath(args.run))
    baselines = args.baselines
    if baselines is None:
        baselines = [
            os.path.join(build, t)
            for t in ("teacher-mnv2-s0", "teacher-vit-hybrid")
            if os.path.isfile(os.path.join(build, t, "model.keras"))
        ]
    tidy = os.path.join(args.work, "test")
    entries, class_names = link_test_split(args.run, tidy)
    kaggle = os.path.join(args.work, "kaggle-layout")
    formats = write_kaggle_copy(entries, class_names, kaggle, rgb_share=0.1, jpeg_share=0.04)
    rows = []
    for tta in ("none", "flip"):
        report = evaluate(model, tidy, subset="all", tta=tta, report=os.path.join(args.work, f"shipped_{tta}.json"))
        rows.append(row(args.model, "test split", report))
    report = evaluate(model, kaggle, subset="all", report=os.path.join(args.work, "shipped_kaggle.json"))
    rows.append(row(args.model, "test split, Kaggle layout", report))
    for run in baselines:
        report = evaluate(os.path.join(run, "model.keras"), tidy, subset="all")
        rows.append(row(os.path.basename(run), "test split", report))
    if len(baselines) > 1:
        members = [os.path.join(run, "model.keras") for run in baselines]
        report = evaluate(members[0], tidy, subset="all", ensemble=members[1:])
        rows.append(row(" + ".join(os.path.basename(r) for r in baselines), "test split", report))
    paths = [p for p, _ in entries]
    payload = {
        "command": "python benchmarks/shipped_tiles.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "model": args.model,
        "model_file": os.path.relpath(model),
        "model_mb": round(os.path.getsize(model) / 1e6, 2),
        "test_tiles": len(entries),
        "kaggle_formats": formats,
        "cpu_ms_per_tile": round(latency_ms(model, paths, args.latency_images), 1),
        "rows": rows,
    }
    print(table(rows, COLUMNS))
    print(f"latency {payload['cpu_ms_per_tile']} ms a tile; wrote {write_results('shipped_tiles', payload)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
