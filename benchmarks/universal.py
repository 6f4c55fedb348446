"""The universal text reader with no training: zero-shot exact match on each text set's test split, and its latency.

    python benchmarks/universal.py [--model universal] [--rows captcha-v2 multicolour ...]

Each row is one set of ``benchmarks/text_robustness.py`` (built the same way, into ``--work``), scored on the test
split that ``recaptcha-tf train --task text --data SET`` draws by default (seed 0, 70/15/15), case-insensitively
(``evaluate --case lower``), as ``recaptcha-tf evaluate --model universal --data SET --case lower`` would score it
on that split. Rows are grouped by where their images come from:

* ``real``: captcha-v2 as it is;
* ``real, altered``: captcha-v2 inverted, on a transparent background, on a large canvas, struck through or
  JPEG-compressed;
* ``drawn by the benchmarks``: multicolour;
* ``this package's generators``: the ``project`` and ``captcha-lib`` styles (digits, long labels, ...), which share
  code with the ``wild`` style the reader was trained on: in-distribution-ish, reported apart from real sets.

The latency is the median wall time of reading one image at a time (decode, resize, network, decode the text) on
this machine's CPU, over ``--latency-images`` images. Writes ``benchmarks/results/universal.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import DEFAULT_TEXT, RESULTS, latency_ms, machine, shipped_version, table, write_results
from text_robustness import GENERATOR_OPTIONS, build_variant

ROWS = (
    "captcha-v2",
    "inverted",
    "rgba-transparent",
    "small-on-canvas",
    "strike-through",
    "jpeg-q10",
    "multicolour",
    "generator-project",
    "generator-captcha-lib",
    "digits-4",
    "long-7-8",
    "six-200x80",
)


def origin(row: str) -> str:
    if row == "captcha-v2":
        return "real"
    if row in GENERATOR_OPTIONS:
        return "this package's generators"
    if row == "multicolour":
        return "drawn by the benchmarks"
    return "real, altered"


def test_subset(data: str, work: str):
    """The test split ``train --task text`` draws by default (seed 0, 70/15/15), as a TextDataset."""
    from recaptcha_tf.data.text.task_data import text_task_data

    text = text_task_data(data, work, case="lower", write_split=False)
    return text.dataset.subset(text.parts["test"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="universal")
    parser.add_argument("--data", default=DEFAULT_TEXT, help="captcha-v2 (the source of the altered rows)")
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS))
    parser.add_argument("--work", default="models/bench-universal")
    parser.add_argument("--latency-images", type=int, default=50)
    parser.add_argument("--results", default=RESULTS)
    args = parser.parse_args(argv)

    from recaptcha_tf.evaluation.workflow import evaluate_text_dataset
    from recaptcha_tf.inference.loading import resolve_model_path

    model = resolve_model_path(args.model)
    rows, latency = [], None
    for row in args.rows:
        data = args.data if row == "captcha-v2" else os.path.join(args.work, "data", row)
        if row != "captcha-v2" and not os.path.isdir(data):
            build_variant(row, args.data, data)
        test = test_subset(data, os.path.join(args.work, "splits", row))
        report = evaluate_text_dataset(model, test, case="lower")
        at_99 = report["abstention"]
        rows.append(
            {
                "set": row,
                "origin": origin(row),
                "test_n": report["n"],
                "exact_match": round(report["exact_match"], 4),
                "cer": round(report["cer"], 4),
                "coverage_at_99": round(at_99["coverage_at_target"], 4),
                "threshold_at_99": at_99["threshold_for_target"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
        if latency is None:
            latency = latency_ms(model, test.sources, args.latency_images)
    payload = {
        "benchmark": "universal",
        "model": args.model,
        "version": shipped_version(args.model),
        "command": "python benchmarks/universal.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "cpu_ms_per_image": None if latency is None else round(latency, 1),
        "rows": rows,
    }
    payload["table"] = table(rows, ["set", "origin", "test_n", "exact_match", "cer", "coverage_at_99"])
    print("wrote", write_results("universal", payload, folder=args.results))
    print(payload["table"])
    print(f"CPU latency: {payload['cpu_ms_per_image']} ms an image")
    return 0


if __name__ == "__main__":
    sys.exit(main())
