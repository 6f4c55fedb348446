"""Backbone benchmark: pretrained recipes and the model zoo on the same seeded 70/15/15 split of the tiles.

Each pretrained row is the one-line command a user types, ``recaptcha-tf train
--task tiles --data DIR --model M --weights W``, with the model's registered
transfer recipe supplying image size, phases, learning rates and batch size.
Rows: MobileNetV2 0.35 and 1.0 (``.weights.h5``), EfficientNet-Lite0 (keras-hub
preset folder) and the hybrid ViT on the Lite0 trunk, single- and multi-label.
For each: parameters, training minutes, inference ms per image (raw files in),
test top-1, macro-F1, balanced accuracy, the 3x3 / 4x4 challenge score and
per-class F1 (multi-label rows: Hamming and subset accuracy)::

    python benchmarks/backbones.py --data ../shared/data/recaptcha-tiles --seeds 0 1

Rows already in ``benchmarks/results/backbones.json`` are kept (``--rerun`` redoes
them), so the benchmark can be run a row at a time (``--pretrained efficientnet-lite0``).
``--models`` adds from-scratch rows on a short budget, whose accuracy is only
indicative. Every run goes through ``recaptcha-tf train``, one after the other.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import DEFAULT_TILES, RESULTS, machine, run_cli, table, write_results

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "weights")
DEFAULT_WEIGHTS = os.path.join(WEIGHTS_DIR, "mobilenetv2_0.35_224_imagenet_notop.weights.h5")

# Pretrained rows: the one-line command (model + weights; the model's registered transfer recipe does the rest).
PRETRAINED = {
    "mobilenetv2-0.35": [
        "--model",
        "mobilenetv2",
        "--alpha",
        "0.35",
        "--weights",
        os.path.join(WEIGHTS_DIR, "mobilenetv2_0.35_224_imagenet_notop.weights.h5"),
    ],
    "mobilenetv2-1.0": [
        "--model",
        "mobilenetv2",
        "--alpha",
        "1.0",
        "--weights",
        os.path.join(WEIGHTS_DIR, "mobilenetv2_1.0_224_imagenet_notop.weights.h5"),
    ],
    "efficientnet-lite0": [
        "--model",
        "efficientnet-lite0",
        "--weights",
        os.path.join(WEIGHTS_DIR, "efficientnet_lite0_imagenet"),
    ],
    "vit-hybrid": ["--model", "vit-hybrid", "--weights", os.path.join(WEIGHTS_DIR, "efficientnet_lite0_imagenet")],
    "vit-hybrid-multilabel": [
        "--model",
        "vit-hybrid",
        "--multi-label",
        "--weights",
        os.path.join(WEIGHTS_DIR, "efficientnet_lite0_imagenet"),
    ],
}


def recipe(args) -> list[str]:
    """The earlier MobileNetV2-0.35 recipe with every setting spelled out (the --legacy-recipe row)."""
    return [
        "--model",
        "mobilenetv2",
        "--alpha",
        "0.35",
        "--weights",
        args.weights,
        "--image-size",
        str(args.size),
        "--epochs",
        str(args.epochs),
        "--freeze-epochs",
        "2",
        "--batch-size",
        "32",
        "--learning-rate",
        "1e-3",
        "--fine-tune-learning-rate",
        str(args.fine_tune_lr),
    ]


SHORT = {
    "cnn": [],
    "resnet18": [],
    "resnet34": [],
    "resnet50": [],
    "mobilenetv2": ["--alpha", "1.0"],
    "efficientnetb0": [],
    "efficientnetv2b0": [],
    "vit-tiny": ["--model-arg", "patch_size=16"],
    "vit-small": ["--model-arg", "patch_size=16"],
    "vit-b16": ["--model-arg", "patch_size=16"],
}


def run(
    label: str, weights: str, extra: list[str], data: str, out_root: str, seed: int = 0, fresh: bool = False
) -> dict:
    """One row. An interrupted row re-runs the same command, which resumes from the run's backup; ``fresh``
    removes the run folder first. Rows of other seeds reuse the seed-0 run's split (``--split``), so every
    seed is tested on the same held-out tiles and their spread and ensemble are fair."""
    base = os.path.join(out_root, label.replace(" ", "_").replace("(", "").replace(")", "").replace(",", ""))
    out = base + (f"_seed{seed}" if seed else "")
    if fresh:
        shutil.rmtree(out, ignore_errors=True)
    if seed and os.path.isfile(os.path.join(base, "split.json")):
        extra = ["--split", os.path.join(base, "split.json"), *extra]
    command = [
        "train",
        "--task",
        "tiles",
        "--data",
        data,
        "--out",
        out,
        "--logdir",
        "logs/bench-backbones",
        "--seed",
        str(seed),
        *extra,
    ]
    wall = run_cli(command)
    summary = json.load(open(os.path.join(out, "summary.json")))
    report = json.load(open(os.path.join(out, "test_report.json")))
    if "--multi-label" in extra:
        return {
            "model": label,
            "weights": weights,
            "seed": seed,
            "params_M": summary["parameters"] / 1e6,
            "epochs": summary["epochs_run"],
            "train_min": summary["train_seconds"] / 60,
            "ms_per_image": report["ms_per_image"],
            "top1": report.get("top1"),
            "hamming_accuracy": report.get("hamming_accuracy"),
            "subset_accuracy": report.get("subset_accuracy"),
            "macro_f1": report.get("macro_f1"),
            "out": out,
            "command": "recaptcha-tf " + " ".join(command),
        }
    return {
        "model": label,
        "weights": weights,
        "params_M": summary["parameters"] / 1e6,
        "epochs": summary["epochs_run"],
        "s_per_epoch": summary["seconds_per_epoch"],
        "train_min": summary["train_seconds"] / 60,
        "command_min": wall / 60,
        "ms_per_image": report["ms_per_image"],
        "top1": report["top1"],
        "macro_f1": report["macro_f1"],
        "balanced_acc": report["balanced_accuracy"],
        "grid3x3_solved": report["challenge"]["3x3"]["solved"],
        "grid4x4_solved": report["challenge"]["4x4"]["solved"],
        "seed": seed,
        "per_class_f1": {name: round(v["f1"], 3) for name, v in report.get("per_class", {}).items()},
        "out": out,
        "command": "recaptcha-tf " + " ".join(command),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_TILES)
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS, help="MobileNetV2-0.35 ImageNet backbone weights")
    parser.add_argument("--size", type=int, default=160, help="image size of the full recipe")
    parser.add_argument("--epochs", type=int, default=12, help="epochs of the full recipe")
    parser.add_argument("--fine-tune-lr", type=float, default=3e-4)
    parser.add_argument(
        "--pretrained",
        nargs="*",
        default=list(PRETRAINED),
        help=f"pretrained rows, the one-line recipe each; any of {sorted(PRETRAINED)}",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of each pretrained row")
    parser.add_argument(
        "--models", nargs="*", default=[], help=f"from-scratch models on the short budget; any of {sorted(SHORT)}"
    )
    parser.add_argument("--short-epochs", type=int, default=2)
    parser.add_argument("--short-size", type=int, default=96)
    parser.add_argument(
        "--legacy-recipe",
        action="store_true",
        help="also the earlier MobileNetV2-0.35 recipe with every setting spelled out",
    )
    parser.add_argument(
        "--rerun",
        action="store_true",
        help="run the rows asked for again, from a fresh run folder (other rows in the results file are kept)",
    )
    parser.add_argument("--out", default="models/bench-backbones")
    args = parser.parse_args()

    # Resumable: rows already in the results file are kept (each pretrained row takes up to half an hour).
    path = os.path.join(RESULTS, "backbones.json")
    old = json.load(open(path)) if os.path.isfile(path) else {}
    done = {(r["model"], r.get("seed", 0)): r for r in old.get("rows", [])}
    rows = list(done.values())

    def add(label, weights, extra, seed=0):
        if (label, seed) in done and not args.rerun:
            print(f"kept {label} seed {seed} from {path}")
            return
        row = run(label, weights, extra, args.data, args.out, seed, fresh=args.rerun) | {"machine": machine()}
        rows[:] = [r for r in rows if (r["model"], r.get("seed", 0)) != (label, seed)] + [row]
        write_results("backbones", {"machine": machine(), "rows": rows})
        print(table([row], [c for c in row if c not in ("command", "per_class_f1", "out")]), flush=True)

    for name in args.pretrained:
        for seed in args.seeds:
            add(f"{name} (recipe)", "imagenet", PRETRAINED[name], seed)
    if args.legacy_recipe:
        add("mobilenetv2 a0.35 (spelled-out recipe)", "imagenet (file)", recipe(args))
    for name in args.models:
        extra = [
            "--model",
            name,
            "--image-size",
            str(args.short_size),
            "--epochs",
            str(args.short_epochs),
            "--patience",
            "0",
            *SHORT[name],
        ]
        add(f"{name} (scratch, {args.short_epochs} ep)", "none", extra)
    columns = [
        "model",
        "seed",
        "params_M",
        "train_min",
        "ms_per_image",
        "top1",
        "macro_f1",
        "balanced_acc",
        "grid3x3_solved",
        "grid4x4_solved",
        "hamming_accuracy",
        "subset_accuracy",
    ]
    print("\n" + table(rows, columns))
    print("wrote", write_results("backbones", {"machine": machine(), "rows": rows}))


if __name__ == "__main__":
    main()
