"""Backbone benchmark: the model zoo on the same seeded 70/15/15 split of the reCAPTCHA tiles.

For each model: parameters, training wall time per epoch, inference ms per image
(batch 64, raw JPEG files in), test top-1, macro-F1 and the challenge-level
score (share of seeded 3x3 / 4x4 grids of test tiles solved exactly).

    python benchmarks/backbones.py --data ../shared/data/recaptcha-tiles \\
        --weights ../shared/weights/mobilenetv2_0.35_224_imagenet_notop.weights.h5

The first row is the full recipe (ImageNet MobileNetV2, two-phase fine-tuning,
the README's command). The others train from scratch on a short budget
(``--short-epochs`` at ``--short-size`` px): their seconds per epoch and
inference cost are what they measure; their accuracy is only indicative, as
they have not converged. Every run goes through ``recaptcha-tf train`` as a
user would, one after the other.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import DEFAULT_TILES, machine, run_cli, table, write_results  # noqa: E402

DEFAULT_WEIGHTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "weights",
                               "mobilenetv2_0.35_224_imagenet_notop.weights.h5")


def recipe(args) -> list[str]:
    """The full fine-tuning recipe quoted in README."""
    return ["--model", "mobilenetv2", "--alpha", "0.35", "--weights", args.weights, "--image-size",
            str(args.size), "--epochs", str(args.epochs), "--freeze-epochs", "2", "--batch-size", "32",
            "--learning-rate", "1e-3", "--fine-tune-learning-rate", str(args.fine_tune_lr)]


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


def run(label: str, weights: str, extra: list[str], data: str, out_root: str) -> dict:
    out = os.path.join(out_root, label.replace(" ", "_").replace("(", "").replace(")", ""))
    shutil.rmtree(out, ignore_errors=True)
    command = ["train", "--task", "tiles", "--data", data, "--out", out, "--logdir", "logs/bench-backbones",
               *extra]
    wall = run_cli(command)
    summary = json.load(open(os.path.join(out, "summary.json")))
    report = json.load(open(os.path.join(out, "test_report.json")))
    return {
        "model": label, "weights": weights, "params_M": summary["parameters"] / 1e6,
        "epochs": summary["epochs_run"], "s_per_epoch": summary["seconds_per_epoch"],
        "train_min": summary["train_seconds"] / 60, "command_min": wall / 60,
        "ms_per_image": report["ms_per_image"], "top1": report["top1"], "macro_f1": report["macro_f1"],
        "balanced_acc": report["balanced_accuracy"],
        "grid3x3_solved": report["challenge"]["3x3"]["solved"], "grid4x4_solved": report["challenge"]["4x4"]["solved"],
        "command": "recaptcha-tf " + " ".join(command),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_TILES)
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS, help="MobileNetV2-0.35 ImageNet backbone weights")
    parser.add_argument("--size", type=int, default=160, help="image size of the full recipe")
    parser.add_argument("--epochs", type=int, default=12, help="epochs of the full recipe")
    parser.add_argument("--fine-tune-lr", type=float, default=3e-4)
    parser.add_argument("--models", nargs="*", default=["resnet18", "efficientnetb0", "vit-tiny"],
                        help=f"from-scratch models on the short budget; any of {sorted(SHORT)}")
    parser.add_argument("--short-epochs", type=int, default=2)
    parser.add_argument("--short-size", type=int, default=96)
    parser.add_argument("--skip-recipe", action="store_true", help="only the short from-scratch runs")
    parser.add_argument("--out", default="models/bench-backbones")
    args = parser.parse_args()

    rows = []
    if not args.skip_recipe:
        rows.append(run("mobilenetv2 a0.35 (recipe)", "imagenet (file)", recipe(args), args.data,
                        args.out))
        print(table(rows, list(rows[0])[:-1]), flush=True)
    for name in args.models:
        extra = ["--model", name, "--image-size", str(args.short_size), "--epochs", str(args.short_epochs),
                 "--patience", "0", *SHORT[name]]
        rows.append(run(f"{name} (scratch, {args.short_epochs} ep)", "none", extra, args.data, args.out))
        print(table(rows, list(rows[0])[:-1]), flush=True)
    columns = list(rows[0])[:-1]
    print("\n" + table(rows, columns))
    path = write_results("backbones", {"machine": machine(), "rows": rows})
    print("wrote", path)


if __name__ == "__main__":
    main()
