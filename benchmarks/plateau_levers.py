"""The CTC blank plateau on a diverse set: which training lever leaves it, and how far each one reads.

Every row trains ``recaptcha-tf train --task text`` from scratch on the same ``wild-8000`` set (8,000
``generate --style wild`` CAPTCHAs, data seed 0, built by ``benchmarks/text_robustness.py``) with the text
defaults plus one lever, and scores the test split case-insensitively (``evaluate --case lower``):

* ``defaults``: nothing added (the baseline; the same command as the ``wild-8000`` robustness row);
* ``taller``: ``--image-size 64x256`` (the fit picks 48 px high; wild glyphs can be 15% of the canvas);
* ``pad``: ``--colour gray`` (aspect kept, the rest padded: the text task pads only in its grayscale mode; with
  the ink map a black pad would read as ink on a light background, since the model pads before it maps ink);
* ``lower``: ``--case lower`` (36 classes instead of 62; the row is scored case-insensitively anyway);
* ``wider``: ``--model-arg filters=[32,64,128,128]`` (the CRNN trunk of the keras-io OCR example's width; about
  three times the multiply-adds, so fewer steps fit the time budget);
* ``warmup``: ``--warmup-fraction 0.15`` (linear warm-up over 15% of the steps instead of 5%);
* ``curriculum``: ``--curriculum 0.5`` (the first half of the steps trains on labels of growing length: the
  shortest, then one character longer, ... in equal stages, as SortaGrad orders a first epoch; every image then);
* ``extension``: ``--plateau-extension 0.5`` (a budget that notices the plateau and extends: every evaluation
  after the warm-up that still reads blanks is added to the run, up to half the steps more, and held out of the
  learning-rate schedule; ``training.plateau.PlateauExtension``; ``--time-budget``'s hard limit still holds);
* ``extension+lower``, ``extension+warmup``, ``extension+wider``: the extension with one more lever each.

The per-image content crop is no row: the fit measures each image's text box on a sample of the training
images first (``config.json``'s ``fit_stats``), and on ``wild`` images it spans the canvas, so the crop it would
cut is the whole image (``content_share`` in the JSON: the median text box as shares of the height and width).

Each row records exact match and CER on the 1,200 test images, the training steps and minutes, and
``left_plateau_step``: the optimizer steps done at the first evaluation whose validation reads fewer than half
of its images blank (empty: never). Finished rows are kept in the JSON (``--rerun NAME`` repeats one); a killed
row resumes from its run folder.

    python benchmarks/plateau_levers.py [--levers taller lower ...] [--work models/bench-plateau-levers]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import RESULTS, machine, run_cli, table

LEVERS = {
    "defaults": [],
    "taller": ["--image-size", "64x256"],
    "lower": ["--case", "lower"],
    "pad": ["--colour", "gray"],
    "wider": ["--model-arg", "filters=[32,64,128,128]"],
    "warmup": ["--warmup-fraction", "0.15"],
    "curriculum": ["--curriculum", "0.5"],
    "extension": ["--plateau-extension", "0.5"],
    "extension+lower": ["--plateau-extension", "0.5", "--case", "lower"],
    "extension+warmup": ["--plateau-extension", "0.5", "--warmup-fraction", "0.15"],
    "extension+wider": ["--plateau-extension", "0.5", "--model-arg", "filters=[32,64,128,128]"],
}
COLUMNS = [
    "lever",
    "exact_match",
    "cer",
    "left_plateau_step",
    "best_val_cer",
    "steps",
    "train_minutes",
    "input",
]


def left_plateau_step(history: list[dict], steps_per_epoch: int) -> int | str:
    """Optimizer steps at the end of the first epoch (``history.csv`` rows) whose validation reads under half of
    its images blank."""
    for row in history:
        if float(row["val_blank_fraction"]) < 0.5:
            return (int(row["epoch"]) + 1) * steps_per_epoch
    return ""


def run_lever(name: str, data: str, work: str) -> dict:
    from recaptcha_tf.evaluation.workflow import evaluate
    from recaptcha_tf.training.callbacks import read_history
    from recaptcha_tf.utils.run_folder import RunFolder

    out = os.path.join(work, name)
    command = ["train", "--task", "text", "--data", data, "--out", out, "--logdir", "", *LEVERS[name]]
    folder = RunFolder(out)
    # a finished run (its summary written) is only scored again; an unfinished one resumes
    wall = None if os.path.isfile(folder.summary) else run_cli(command)
    summary, config = folder.read_json(RunFolder.SUMMARY), folder.read_json(RunFolder.CONFIG)
    test = evaluate(out, data, subset="test", case="lower", report=os.path.join(out, "test_report_lower.json"))
    history = read_history(folder.history)[1]
    size = config["image_size"]
    return {
        "lever": name,
        "exact_match": test["exact_match"],
        "cer": test["cer"],
        "test_n": test["n"],
        "left_plateau_step": left_plateau_step(history, config["steps_per_epoch"]),
        "best_val_cer": min(float(row["val_cer"]) for row in history),
        "steps": summary.get("steps"),
        "train_minutes": round(summary["train_seconds"] / 60, 2),
        "command_minutes": round(wall / 60, 2) if wall else "",
        "input": f"{size[0]}x{size[1]}",
        "plateau": summary.get("plateau", ""),
        "content_share": config.get("fit_stats", {}).get("text_share_of_crop"),
        "command": "recaptcha-tf " + " ".join(command) + f" && recaptcha-tf evaluate --model {out} --data {data} "
        "--subset test --case lower",
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="models/bench-text-robustness/data/wild-8000", help="the wild-8000 set")
    parser.add_argument("--work", default="models/bench-plateau-levers", help="run folders, one per lever")
    parser.add_argument("--levers", nargs="+", choices=LEVERS, default=list(LEVERS))
    parser.add_argument("--rerun", nargs="+", choices=LEVERS, default=[], help="run these levers again")
    args = parser.parse_args()
    if not os.path.isdir(args.data):
        parser.error(f"no set at {args.data}: python benchmarks/text_robustness.py --only wild-8000 builds it")
    path = os.path.join(RESULTS, "plateau_levers.json")
    rows = {r["lever"]: r for r in (json.load(open(path))["rows"] if os.path.exists(path) else [])}
    for name in args.levers:
        if name in rows and name not in args.rerun:
            continue
        if name in args.rerun:
            import shutil

            shutil.rmtree(os.path.join(args.work, name), ignore_errors=True)
        rows[name] = {**run_lever(name, args.data, args.work), "machine": machine()}
        # the levers in their order, then rows measured with earlier code (kept, with the commit they ran)
        ordered = [rows[k] for k in LEVERS if k in rows] + [r for k, r in rows.items() if k not in LEVERS]
        os.makedirs(RESULTS, exist_ok=True)
        with open(path + ".tmp", "w") as f:
            json.dump({"set": "wild-8000", "rows": ordered}, f, indent=2)
        os.replace(path + ".tmp", path)
        print(table([rows[name]], COLUMNS), flush=True)
    print(table(list(rows.values()), COLUMNS))
    print("wrote", path)


if __name__ == "__main__":
    main()
