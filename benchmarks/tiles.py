"""Tile CNN benchmark: the defaults of `recaptcha-tf train --task tiles --model cnn --data DIR`.

Trains from scratch on a seeded 70/15/15 split of DIR and reports held-out test
top-1, macro-F1, balanced accuracy and training wall time.

    python benchmarks/tiles.py --data ../shared/data/recaptcha-tiles
    python benchmarks/tiles.py --extra --image-size 112 --balance 500 --epochs 26   # another recipe

Results go to benchmarks/results/tiles.json for the defaults; --extra runs are added to tiles_recipes.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import DEFAULT_TILES, RESULTS, machine, run_cli, table, write_results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_TILES)
    parser.add_argument("--out", default="models/bench-tiles-cnn")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="extra train arguments")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    command = [
        "train",
        "--task",
        "tiles",
        "--model",
        "cnn",
        "--data",
        args.data,
        "--out",
        args.out,
        "--logdir",
        "logs/bench",
        *args.extra,
    ]
    wall = run_cli(command)
    summary = json.load(open(os.path.join(args.out, "summary.json")))
    report = json.load(open(os.path.join(args.out, "test_report.json")))
    label = "cnn (defaults)" if not args.extra else "cnn " + " ".join(args.extra)
    row = {
        "model": label,
        "test_n": report["n"],
        "top1": report["top1"],
        "top3": report["top3"],
        "macro_f1": report["macro_f1"],
        "balanced_accuracy": report["balanced_accuracy"],
        "epochs": summary["epochs_run"],
        "fit_minutes": summary["train_seconds"] / 60,
        "command_minutes": wall / 60,
    }
    print(table([row], list(row)))
    print("\nper-class F1:", {k: round(v["f1"], 3) for k, v in report["per_class"].items()})
    payload = {
        "command": "recaptcha-tf " + " ".join(command),
        "machine": machine(),
        "result": row,
        "per_class": report["per_class"],
    }
    if args.extra:  # one entry per recipe (by label) in tiles_recipes.json; a re-run replaces its own entry
        previous = os.path.join(RESULTS, "tiles_recipes.json")
        runs = json.load(open(previous))["runs"] if os.path.exists(previous) else []
        payload = {"runs": [r for r in runs if r["result"]["model"] != label] + [payload]}
    path = write_results("tiles_recipes" if args.extra else "tiles", payload)
    print("wrote", path)


if __name__ == "__main__":
    main()
