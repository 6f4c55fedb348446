"""Batch prediction speed: images/s of `predict` on many files, and the cold start of `recaptcha-tf predict`.

    python benchmarks/predict.py --model models/tiles-cnn --images ../shared/data/recaptcha-tiles

Throughput (in this process, --count files, default 1,000, a seeded sample of
the real images under --images), each path called twice on the same files:
`first` includes whatever the path builds on its first call (tf.data pipeline,
tracing), `warm` is the second call.

    legacy   the path before issue #15, reproduced here (not in the package): a
             tf.data pipeline (`make_dataset`) and `model.predict` on the model as
             saved (its own precision policy).
    keras    `recaptcha_tf.inference.predict` through a new `Inference` (compiled
             once; its construction is timed separately as `build_s`).
    onnx / tflite   the same through the exported artifact (`--runtime`).

Cold start: wall seconds of `python -m recaptcha_tf predict --model RUN
[--runtime R] ONE_IMAGE` in a fresh process (imports, loading, one prediction),
median of --cold-repeats runs; `legacy` runs the old path in a fresh process
the same way. `speedup` is over the legacy row of the same run.

onnx / tflite need `recaptcha-tf export --model RUN --format onnx|tflite`;
missing artifacts are exported to RUN/export/ (no parity check) unless --no-export.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine, table, write_results

LEGACY_CLI = """
import sys
from recaptcha_tf.data.pipeline import make_dataset
from recaptcha_tf.inference import load_model, model_info
model = load_model(sys.argv[1]); info = model_info(model)
ds = make_dataset(sys.argv[2:], None, image_size=info.image_size, channels=info.channels, resize=info.resize,
                  batch_size=64, cache=False)
print(model.predict(ds, verbose=0).argmax(-1))
"""


def legacy_outputs(model, files):
    from recaptcha_tf.data.pipeline import make_dataset
    from recaptcha_tf.inference.loading import model_info

    info = model_info(model)
    ds = make_dataset(
        files, None, image_size=info.image_size, channels=info.channels, resize=info.resize, batch_size=64, cache=False
    )
    return model.predict(ds, verbose=0)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def cold_start(args, runtime: str, image: str) -> float:
    if runtime == "legacy":
        command = [sys.executable, "-c", LEGACY_CLI, args.model, image]
    else:
        command = [
            sys.executable,
            "-P",
            "-m",
            "recaptcha_tf",
            "predict",
            "--model",
            args.model,
            "--runtime",
            runtime,
            image,
        ]
    times = []
    for _ in range(args.cold_repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="run folder or .keras file")
    parser.add_argument("--images", required=True, nargs="+", help="folders or files with real images")
    parser.add_argument("--count", type=int, default=1000, help="files predicted per call")
    parser.add_argument(
        "--runtimes",
        nargs="+",
        choices=("legacy", "keras", "onnx", "tflite"),
        default=["legacy", "keras", "onnx", "tflite"],
    )
    parser.add_argument("--cold-repeats", type=int, default=3, help="fresh processes per cold-start figure (0 skips)")
    parser.add_argument("--no-export", action="store_true", help="fail instead of exporting missing onnx/tflite files")
    parser.add_argument("--name", default="predict", help="results/<name>.json")
    args = parser.parse_args()

    import numpy as np

    from recaptcha_tf.export import _sample, export_model, list_images
    from recaptcha_tf.inference.loading import load_model
    from recaptcha_tf.inference.predictor import Inference, predict, resolve_artifact

    files = _sample(list_images(args.images), args.count)
    if len(files) < args.count:
        files = (files * (args.count // max(len(files), 1) + 1))[: args.count]
    print(f"{len(files)} files")
    for runtime in [r for r in args.runtimes if r in ("onnx", "tflite")]:
        try:
            resolve_artifact(args.model, runtime)
        except FileNotFoundError:
            if args.no_export:
                raise
            export_model(args.model, runtime)

    rows, reference = [], None
    for runtime in args.runtimes:
        row = {"runtime": runtime, "images": len(files)}
        if runtime == "legacy":
            model = load_model(args.model)
            row["first_s"] = timed(lambda model=model: legacy_outputs(model, files))
            row["warm_s"] = timed(lambda model=model: legacy_outputs(model, files))
            reference = np.argmax(legacy_outputs(model, files[:64]), -1)
        else:
            start = time.perf_counter()
            if runtime == "keras":
                inference = Inference.from_model(load_model(args.model))
            else:
                inference = Inference.from_artifact(resolve_artifact(args.model, runtime))
            row["build_s"] = time.perf_counter() - start
            row["first_s"] = timed(lambda inference=inference: predict(inference, files))
            row["warm_s"] = timed(lambda inference=inference: predict(inference, files))
            if reference is not None:
                row["top1_agrees"] = float(np.mean(np.argmax(inference.outputs(files[:64]), -1) == reference))
        row["images_per_s"] = len(files) / row["warm_s"]
        row["first_images_per_s"] = len(files) / row["first_s"]
        if args.cold_repeats:
            row["cold_start_s"] = cold_start(args, runtime, files[0])
        rows.append(row)
        print(table([row], list(row)), flush=True)
    base = next((r for r in rows if r["runtime"] == "legacy"), None)
    for r in rows:
        if base:
            r["speedup"] = r["images_per_s"] / base["images_per_s"]
            r["first_speedup"] = r["first_images_per_s"] / base["first_images_per_s"]
            if "cold_start_s" in r and "cold_start_s" in base:
                r["cold_vs_legacy"] = r["cold_start_s"] / base["cold_start_s"]
    columns = [
        "runtime",
        "images",
        "build_s",
        "first_s",
        "first_images_per_s",
        "first_speedup",
        "warm_s",
        "images_per_s",
        "speedup",
        "cold_start_s",
        "cold_vs_legacy",
        "top1_agrees",
    ]
    print(table(rows, columns))
    path = write_results(
        args.name,
        {
            "command": "python benchmarks/predict.py " + " ".join(sys.argv[1:]),
            "machine": machine(),
            "model": os.path.abspath(args.model),
            "rows": rows,
        },
    )
    print("wrote", path)


if __name__ == "__main__":
    main()
