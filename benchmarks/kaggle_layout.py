"""Tiles in their original Kaggle download layout: does a trained model read them as well as the tidy copy?

``../shared/data/recaptcha-tiles`` is a tidy re-encoding (lower-case ``snake_case`` folders, RGB JPEG). A
user's download of the Kaggle "Google Recaptcha Image Dataset" looks different: folders ``Bicycle``, ...,
``Traffic Light``, files like ``Bus (12).png``, most of them 120x120 RGBA PNGs, about a tenth 100x100 RGB
PNGs and a few JPEG bytes saved under a ``.png`` name (``../shared/data/README.md``).

This script writes a run's held-out test split again in that layout, seeded (``--rgb-share`` of the tiles
as 100x100 RGB PNG, ``--jpeg-share`` as JPEG bytes named ``.png``, the rest 120x120 RGBA PNG), then runs
``recaptcha-tf evaluate`` twice in the same session: on the tidy test split and on the Kaggle-layout copy.
The two reports should agree to resampling noise (the copy was resized to 120 or 100 px, as the originals
are)::

    python benchmarks/kaggle_layout.py --model models/bench-backbones/efficientnet-lite0_recipe
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine, run_cli, table, write_results

DEFAULT_MODEL = "models/bench-backbones/efficientnet-lite0_recipe"
KEYS = ("n", "top1", "macro_f1", "balanced_accuracy")
FILE_PREFIX = {"crosswalk": "Cross", "traffic_light": "Tlight"}  # the download's file names: `Tlight (3).png`


def kaggle_folder(class_name: str) -> str:
    """``traffic_light`` -> ``Traffic Light`` (the download's folder names)."""
    return " ".join(part.capitalize() for part in class_name.split("_"))


def write_kaggle_copy(entries, class_names, out: str, rgb_share: float, jpeg_share: float, seed: int = 0) -> dict:
    """Write ``(path, label)`` entries as ``out/<Kaggle folder>/<Folder> (<i>).png``; returns the format counts."""
    rng = np.random.default_rng(seed)
    counts = {"rgba_120": 0, "rgb_100": 0, "jpeg_named_png": 0}
    numbers: dict[int, int] = {}
    for path, label in entries:
        folder = kaggle_folder(class_names[label])
        os.makedirs(os.path.join(out, folder), exist_ok=True)
        numbers[label] = numbers.get(label, 0) + 1
        name = f"{FILE_PREFIX.get(class_names[label], folder)} ({numbers[label]}).png"
        image = Image.open(path).convert("RGB")
        draw = rng.random()
        buffer = io.BytesIO()
        if draw < jpeg_share:
            image.resize((120, 120), Image.BILINEAR).save(buffer, format="JPEG", quality=90)
            counts["jpeg_named_png"] += 1
        elif draw < jpeg_share + rgb_share:
            image.resize((100, 100), Image.BILINEAR).save(buffer, format="PNG")
            counts["rgb_100"] += 1
        else:
            image.resize((120, 120), Image.BILINEAR).convert("RGBA").save(buffer, format="PNG")
            counts["rgba_120"] += 1
        with open(os.path.join(out, folder, name), "wb") as f:
            f.write(buffer.getvalue())
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help="a tile run folder (its split.json gives the test split)"
    )
    parser.add_argument("--out", default="models/bench-kaggle-layout")
    parser.add_argument("--rgb-share", type=float, default=0.10)
    parser.add_argument("--jpeg-share", type=float, default=0.03)
    parser.add_argument(
        "--limit", type=int, default=0, help="a seeded sample of N test tiles (0: all), for a quick look"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from recaptcha_tf.data.splits import load_manifest

    split = load_manifest(args.model)
    test = list(split.test)
    if args.limit:  # a seeded sample across the classes
        test = [test[i] for i in sorted(np.random.default_rng(args.seed).permutation(len(test))[: args.limit])]
    copy = os.path.join(args.out, "kaggle-layout")
    shutil.rmtree(copy, ignore_errors=True)
    formats = write_kaggle_copy(test, split.class_names, copy, args.rgb_share, args.jpeg_share, args.seed)
    print(f"wrote {len(test)} test tiles in the Kaggle layout to {copy}: {formats}")

    rows = []
    for name, data, subset in (("tidy test split", split.root, "test"), ("Kaggle layout copy", copy, "all")):
        if args.limit and subset == "test":
            tidy = os.path.join(args.out, "tidy")  # the same first N tiles, in the tidy layout
            shutil.rmtree(tidy, ignore_errors=True)
            for path, label in test:
                os.makedirs(os.path.join(tidy, split.class_names[label]), exist_ok=True)
                shutil.copy(path, os.path.join(tidy, split.class_names[label]))
            data, subset = tidy, "all"
        report_path = os.path.join(args.out, f"{name.split()[0].lower()}_report.json")
        seconds = run_cli(
            ["evaluate", "--model", args.model, "--data", data, "--subset", subset, "--report", report_path]
        )
        with open(report_path) as f:
            report = json.load(f)
        rows.append({"data": name, **{k: report[k] for k in KEYS}, "seconds": round(seconds, 1)})
    for key in KEYS[1:]:
        rows[1][f"{key} diff"] = round(rows[1][key] - rows[0][key], 4)
    print(table(rows, ["data", *KEYS, "seconds"]))
    print("Kaggle copy minus tidy:", {k: v for k, v in rows[1].items() if k.endswith("diff")})
    command = "python benchmarks/kaggle_layout.py " + " ".join(sys.argv[1:])
    path = write_results(
        "kaggle_layout",
        {"command": command.strip(), "machine": machine(), "model": args.model, "formats": formats, "rows": rows},
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
