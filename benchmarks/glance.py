"""Results at a glance: one headline figure per row, read from ``benchmarks/results/*.json``.

    python benchmarks/glance.py            # prints the table
    python benchmarks/glance.py --readme   # also writes it into README.md between its glance markers

Every figure is a value some benchmark script wrote, with the command that produced it in that JSON; nothing here is
typed by hand. The full tables are in ``docs/research/lab-notebook.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
START, END = "<!-- glance:start -->", "<!-- glance:end -->"

# (task, data, model, JSON file, row selector, metric key, metric name, minutes key (or a *seconds key))
ROWS = [
    (
        "text",
        "captcha-v2 test split, no labels",
        "universal reader (shipped), zero-shot",
        "universal.json",
        {"set": "captcha-v2"},
        "exact_match",
        "exact match, case-insensitive",
        None,  # no training: the minutes are the shipped model's, on its card
    ),
    (
        "text",
        "captcha-v2 test split, 100 labels",
        "universal reader fine-tuned, 5-minute budget",
        "label_curve_captcha-v2.json",
        {"labels": 100, "start": "universal"},
        "exact_match",
        "exact match, case-insensitive",
        "train_seconds",  # the label curve's point: its run's own training time, in seconds
    ),
    (
        "text",
        "captcha-v2 (real, 834)",
        "crnn, defaults",
        "text_robustness.json",
        {"set": "captcha-v2"},
        "exact_match",
        "exact match",
        "train_minutes",
    ),
    (
        "text",
        "captcha-v2, 200 labels",
        "crnn from synthetic pretraining",
        "text_synthetic.json",
        {"set": "synthetic-captcha-lib-200"},
        "exact_match",
        "exact match",
        "train_minutes",
    ),
    (
        "text",
        "4-digit set (generated, 7,500)",
        "crnn, defaults",
        "text_robustness.json",
        {"set": "digits-4-7500"},
        "exact_match",
        "exact match",
        "train_minutes",
    ),
    (
        "text",
        "7-8 characters (generated, 7,500)",
        "crnn, defaults",
        "text_robustness.json",
        {"set": "long-7-8-7500", "seed": 0},
        "exact_match",
        "exact match",
        "train_minutes",
    ),
    (
        "chars",
        "digits (real, 1,564)",
        "resnet18, defaults",
        "text_robustness.json",
        {"set": "chars-digits"},
        "exact_match",
        "accuracy",
        "train_minutes",
    ),
    (
        "tiles",
        "recaptcha-tiles test split, no training",
        "tiles (shipped), distilled MobileNetV2",
        "shipped_tiles.json",
        {"model": "tiles", "data": "test split", "tta": "none"},
        "top1",
        "top-1",
        None,  # no training: the build's minutes are on the model card
    ),
    ("tiles", "recaptcha-tiles (real, 9,419)", "cnn, defaults", "tiles.json", None, "top1", "top-1", "fit_minutes"),
    (
        "tiles",
        "recaptcha-tiles",
        "mobilenetv2-1.0, ImageNet recipe",
        "backbones.json",
        {"model": "mobilenetv2-1.0 (recipe)", "seed": 0},
        "top1",
        "top-1",
        "train_min",
    ),
    (
        "tiles",
        "recaptcha-tiles",
        "vit-hybrid, ImageNet recipe",
        "backbones.json",
        {"model": "vit-hybrid (recipe)"},
        "macro_f1",
        "macro-F1",
        "train_min",
    ),
]


def find_row(path: str, selector: dict | None) -> dict:
    with open(os.path.join(RESULTS, path)) as f:
        data = json.load(f)
    if selector is None:  # a one-run file: its result with its command and machine
        return {**data["result"], "command": data.get("command"), "machine": data.get("machine", {})}
    for row in data["rows"]:
        if row.get("options") and "options" not in selector:
            continue  # a row with options added (text_robustness --train-args) is never a defaults row
        if all(row.get(k) == v for k, v in selector.items()):
            return {**row, "machine": row.get("machine") or data.get("machine", {})}
    raise KeyError(f"no row {selector} in {path}")


def hardware(machine: dict) -> str:
    cores = f"{machine.get('cpus', '?')} CPU cores"
    gpus = f", {machine['gpus']} GPU" if machine.get("gpus") else ""
    return f"{cores}{gpus} ({machine.get('cpu') or 'CPU model not recorded'})"


def glance_table(with_hardware: bool = True) -> str:
    """The glance table; ``with_hardware=False`` leaves out the machine column (the README names no machines: the
    docs' results page, which has it, is linked from there)."""
    columns = ["task", "data", "model", "metric", "value", "minutes"] + (["hardware"] if with_hardware else [])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for task, data, model, path, selector, key, metric, minutes in ROWS:
        row = find_row(path, selector)
        spent = 0.0 if minutes is None else float(row[minutes]) / (60 if minutes.endswith("seconds") else 1)
        cells = [task, data, model, metric, f"{row[key]:.3f}", f"{spent:.0f}"]
        lines.append("| " + " | ".join(cells + ([hardware(row["machine"])] if with_hardware else [])) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", action="store_true", help="write the table into README.md between its markers")
    args = parser.parse_args()
    text = glance_table(with_hardware=not args.readme)
    print(text)
    if args.readme:
        path = os.path.join(ROOT, "README.md")
        with open(path) as f:
            readme = f.read()
        new = re.sub(re.escape(START) + ".*?" + re.escape(END), f"{START}\n{text}\n{END}", readme, flags=re.S)
        if new == readme and START not in readme:
            raise SystemExit(f"README.md has no {START} ... {END} markers")
        tmp = path + ".partial"
        with open(tmp, "w") as f:
            f.write(new)
        os.replace(tmp, path)


if __name__ == "__main__":
    main()
