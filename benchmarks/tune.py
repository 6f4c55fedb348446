"""Hyperparameter search benchmark: the optimizer grid and a reduced architecture grid on the tiles.

Runs, exactly as a user would:

    recaptcha-tf tune --task tiles --data DIR --search optimizers --tuner grid --epochs E --image-size S ...
    recaptcha-tf tune --task tiles --data DIR --space <reduced architecture grid> --tuner grid --epochs E ...

and reports, per grid: trials, wall time per trial, the best configuration, its
validation objective and its held-out test metrics (the best trial's model on
the test split), next to the CNN defaults' test metrics from
benchmarks/results/tiles.json (`python benchmarks/tiles.py`).

    python benchmarks/tune.py --data ../shared/data/recaptcha-tiles
    python benchmarks/tune.py --only architecture --epochs 4      # one grid

The full optimizer grid has 5 optimizers x 3 losses x 4 activations x 2 learning
rates = 120 trials; at 64 px a trial of 4 epochs took 62 s on average on 2 CPU
cores (124 minutes in all; ``--max-trials`` caps it; a stopped run resumes where
it stopped when started again without ``--overwrite``). Each grid's plot of the
objective per trial and per value is copied to results/tune_<grid>.png.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import DEFAULT_TILES, RESULTS, machine, run_cli, table, write_results

# A reduced optimizer grid (15 of the 120 built-in combinations): every optimizer x loss, one activation and
# learning rate; `--optimizer-grid full` runs the built-in 120.
REDUCED_OPTIMIZERS = {
    "optimizer": ["adam", "rmsprop", "sgd+momentum", "nadam", "adamw"],
    "loss": ["sparse_categorical_crossentropy", "label_smoothed_crossentropy", "focal"],
    "activation": ["leaky_relu"],
    "learning_rate": [0.002],
}
# A reduced architecture grid (8 of the 72 built-in combinations).
REDUCED_ARCHITECTURE = {
    "c2d_layers": [3, 5],
    "c2d_filters": [16, 32],
    "dense_layers": [1],
    "dense_neurons": [128, 256],
    "dropout": [0.2],
}


def _baseline() -> dict | None:
    path = os.path.join(RESULTS, "tiles.json")
    if not os.path.exists(path):
        return None
    r = json.load(open(path))["result"]
    return {
        "grid": "cnn defaults (benchmarks/tiles.py)",
        "trials": 1,
        "best": f"defaults, {r['epochs']} epochs",
        "test_top1": r["top1"],
        "test_macro_f1": r["macro_f1"],
        "test_balanced_accuracy": r["balanced_accuracy"],
    }


def _number(text: str):
    try:
        return float(text) if "." in text or "e" in text else int(text)
    except ValueError:
        return text


def run_grid(label: str, space_args: list[str], args, out_root: str) -> dict:
    name = f"bench-{label}"
    out = os.path.join(out_root, name)
    command = [
        "tune",
        "--task",
        "tiles",
        "--data",
        args.data,
        *space_args,
        "--tuner",
        "grid",
        "--epochs",
        str(args.epochs),
        "--image-size",
        str(args.image_size),
        "--objective",
        args.objective,
        "--logdir",
        args.logdir,
        "--name",
        name,
        "--out",
        out,
        "--seed",
        str(args.seed),
    ]
    if args.max_trials:
        command += ["--max-trials", str(args.max_trials)]
    if args.overwrite:
        command.append("--overwrite")
    wall = run_cli(command)
    summary = json.load(open(os.path.join(out, "summary.json")))
    import csv

    rows = list(csv.DictReader(open(os.path.join(out, "results.csv"))))
    plot = os.path.join(RESULTS, f"tune_{label}.png")  # objective per trial and per value, for the README
    shutil.copyfile(os.path.join(out, "results.png"), plot)
    seconds = [float(r["seconds"]) for r in rows if r.get("seconds")]
    objective = summary["objective"]
    return {
        "grid": label,
        "trials": summary["completed"],
        "grid_size": summary["grid_size"],
        "sec_per_trial_mean": statistics.mean(seconds) if seconds else None,
        "sec_per_trial_median": statistics.median(seconds) if seconds else None,
        "search_minutes": wall / 60,  # this invocation's wall time (a resumed search counts only what it ran)
        "trial_minutes": sum(seconds) / 60,  # every trial's own time, whichever invocation ran it
        "best": ", ".join(f"{k}={v}" for k, v in summary["best"]["hyperparameters"].items()),
        f"best_{objective}": summary["best"][objective],
        "test_top1": summary["test"]["top1"],
        "test_macro_f1": summary["test"]["macro_f1"],
        "test_balanced_accuracy": summary["test"]["balanced_accuracy"],
        "command": "recaptcha-tf " + " ".join(command),
        "out": out,
        "plot": os.path.relpath(plot, os.path.dirname(RESULTS)),
        "top5": [{k: _number(v) for k, v in r.items()} for r in rows[:5]],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_TILES)
    parser.add_argument("--only", choices=("optimizers", "architecture"), default=None, help="run one grid")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per trial (early stopping patience 3)")
    parser.add_argument("--image-size", type=int, default=64, help="tile size for every trial")
    parser.add_argument("--objective", default="macro_f1")
    parser.add_argument("--max-trials", type=int, default=None, help="cap each grid at this many trials")
    parser.add_argument("--out-root", default="models", help="search folders go to OUT_ROOT/bench-<grid>")
    parser.add_argument("--logdir", default="logs/tune", help="TensorBoard root (HParams)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="start the grids afresh instead of resuming")
    parser.add_argument(
        "--optimizer-grid",
        choices=("reduced", "full"),
        default="reduced",
        help="reduced: 5 optimizers x 3 losses (15 trials); full: the built-in 120",
    )
    args = parser.parse_args()

    rows = []
    if args.only in (None, "optimizers"):
        if args.optimizer_grid == "full":
            rows.append(run_grid("optimizers", ["--search", "optimizers"], args, args.out_root))
        else:
            os.makedirs(args.out_root, exist_ok=True)
            space = os.path.join(args.out_root, "bench-optimizers-space.yaml")
            with open(space, "w") as f:
                yaml.safe_dump(REDUCED_OPTIMIZERS, f, sort_keys=False)
            rows.append(run_grid("optimizers-reduced", ["--space", space], args, args.out_root))
    if args.only in (None, "architecture"):
        os.makedirs(args.out_root, exist_ok=True)
        space = os.path.join(args.out_root, "bench-architecture-space.yaml")
        with open(space, "w") as f:
            yaml.safe_dump(REDUCED_ARCHITECTURE, f, sort_keys=False)
        rows.append(run_grid("architecture", ["--space", space], args, args.out_root))
    baseline = _baseline()
    columns = [
        "grid",
        "trials",
        "sec_per_trial_mean",
        "sec_per_trial_median",
        "trial_minutes",
        "search_minutes",
        "best",
        f"best_val_{args.objective.removeprefix('val_')}",
        "test_top1",
        "test_macro_f1",
        "test_balanced_accuracy",
    ]
    print(table(rows + ([baseline] if baseline else []), columns))
    for r in rows:
        print(f"\n{r['grid']}: top trials\n" + table(r["top5"], list(r["top5"][0]) if r["top5"] else []))
    path = write_results(
        "tune",
        {
            "machine": machine(),
            "epochs_per_trial": args.epochs,
            "image_size": args.image_size,
            "reduced_architecture_grid": REDUCED_ARCHITECTURE,
            "optimizer_grid": REDUCED_OPTIMIZERS if args.optimizer_grid == "reduced" else "built-in optimizers (120)",
            "grids": rows,
            "baseline": baseline,
        },
    )
    print("wrote", path)


if __name__ == "__main__":
    main()
