"""Text CAPTCHA benchmark: CRNN (defaults) vs multi-head on a folder of label-named images.

Runs `recaptcha-tf train --task text --model crnn --data DIR` exactly as a user
would (defaults only, seeded 70/15/15 split, evaluation on the held-out 15%),
then the same with `--model multihead`, and reports exact match, CER, training
wall time and inference ms per image. Each row records its command and machine;
rows of models not run this time are kept from the previous JSON, so
``--models multihead`` re-runs one row.

    python benchmarks/text.py --data ../shared/data/captcha-v2 [--models multihead]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import DEFAULT_TEXT, RESULTS, machine, run_cli, table, write_results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_TEXT)
    parser.add_argument("--models", nargs="+", default=["crnn", "multihead"])
    parser.add_argument("--out", default="models/bench-text")
    args = parser.parse_args()
    path = os.path.join(RESULTS, "text.json")
    previous = json.load(open(path)) if os.path.exists(path) else {"rows": []}
    kept = {}
    for i, row in enumerate(previous["rows"]):  # older files kept one command list and machine for all rows
        row.setdefault("machine", previous.get("machine"))
        if "command" not in row and i < len(previous.get("commands", [])):
            row["command"] = previous["commands"][i]
        kept[row["model"]] = row
    rows = []
    for model in args.models:
        out = f"{args.out}-{model}"
        shutil.rmtree(out, ignore_errors=True)
        command = [
            "train",
            "--task",
            "text",
            "--model",
            model,
            "--data",
            args.data,
            "--out",
            out,
            "--logdir",
            "logs/bench",
        ]
        wall = run_cli(command)
        summary = json.load(open(os.path.join(out, "summary.json")))
        report = json.load(open(os.path.join(out, "test_report.json")))
        rows.append(
            {
                "model": model,
                "test_n": report["n"],
                "exact_match": report["exact_match"],
                "cer": report["cer"],
                "epochs": summary["epochs_run"],
                "fit_minutes": summary["train_seconds"] / 60,
                "command_minutes": wall / 60,
                "ms_per_image": report["ms_per_image"],
                "command": "recaptcha-tf " + " ".join(command),
                "machine": machine(),
            }
        )
        kept[model] = rows[-1]
        print(table(rows[-1:], COLUMNS), flush=True)
        path = write_results("text", {"rows": list(kept.values())})
    print()
    print(table(list(kept.values()), COLUMNS))
    print("wrote", path)


COLUMNS = ["model", "test_n", "exact_match", "cer", "epochs", "fit_minutes", "command_minutes", "ms_per_image"]

if __name__ == "__main__":
    main()
