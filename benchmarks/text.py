"""Text CAPTCHA benchmark: CRNN (defaults) vs multi-head on a folder of label-named images.

Runs `recaptcha-tf train --task text --model crnn --data DIR` exactly as a user
would (defaults only, seeded 70/15/15 split, evaluation on the held-out 15%),
then the same with `--model multihead`, and reports exact match, CER, training
wall time and inference ms per image.

    python benchmarks/text.py --data ../shared/data/captcha-v2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import DEFAULT_TEXT, machine, run_cli, table, write_results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_TEXT)
    parser.add_argument("--models", nargs="+", default=["crnn", "multihead"])
    parser.add_argument("--out", default="models/bench-text")
    args = parser.parse_args()
    rows, commands = [], []
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
        commands.append("recaptcha-tf " + " ".join(command))
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
            }
        )
        print(table(rows[-1:], list(rows[-1])), flush=True)
    print()
    print(table(rows, list(rows[0])))
    path = write_results("text", {"commands": commands, "machine": machine(), "rows": rows})
    print("wrote", path)


if __name__ == "__main__":
    main()
