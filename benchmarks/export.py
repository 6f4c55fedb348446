"""Export benchmark: speed, size and parity of Keras, SavedModel, TFLite (float / dynamic) and ONNX Runtime.

    python benchmarks/export.py --model models/tiles-cnn --data ../shared/data/recaptcha-tiles

For a trained run folder it exports every format (under OUT, default
RUN/export-bench/), then times each runtime on the same real images, resized by
the package pipeline to the model's size: milliseconds per image at batch 1 and
batch 32 (after warm-up), and the file size, each with its ratio to Keras in the
same run. Parity columns come from `recaptcha_tf.export.check_parity`.

"keras" is the saved model as loaded (mixed precision if it was trained so),
called directly (`model(x, training=False)`). TFLite runs with the XNNPACK
delegate; a TFLite text model has a fixed batch of 1, so its batch-32 figure is
32 single-image calls.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine, table, write_results

VARIANTS = [("savedmodel", None), ("tflite", None), ("tflite", "dynamic"), ("onnx", None), ("onnx", "dynamic")]


def time_runner(runner, images, batch: int, max_images: int, warmup: int = 2) -> float:
    """Milliseconds per image over up to ``max_images`` images in batches of ``batch``."""
    images = images[:max_images]
    batches = [images[i : i + batch] for i in range(0, len(images) - batch + 1, batch)] or [images]
    for b in batches[:warmup]:
        runner(b)
    start = time.perf_counter()
    count = 0
    for b in batches:
        runner(b)
        count += len(b)
    return 1000 * (time.perf_counter() - start) / count


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="trained run folder or .keras file")
    parser.add_argument("--data", required=True, nargs="+", help="folders or files with real input images")
    parser.add_argument("--out", default=None, help="where the artifacts go; default RUN/export-bench")
    parser.add_argument("--images", type=int, default=256, help="images used for timing and parity (seeded sample)")
    parser.add_argument("--batch1-images", type=int, default=100, help="images timed one at a time")
    parser.add_argument("--threads", type=int, default=None, help="TFLite/ONNX Runtime threads (default: runtime's)")
    parser.add_argument("--name", default="export", help="results/<name>.json")
    args = parser.parse_args()

    from recaptcha_tf import export as E
    from recaptcha_tf.inference.loading import load_model, model_info, resolve_model_path

    keras_file = resolve_model_path(args.model)
    out_dir = args.out or os.path.join(os.path.dirname(os.path.abspath(keras_file)), "export-bench")
    os.makedirs(out_dir, exist_ok=True)
    model = load_model(args.model)
    info = model_info(model)
    meta = E._info_dict(info)
    files = E._sample(E.list_images(args.data), args.images)
    images = E.load_images(files, meta)
    print(f"{len(files)} images at {info.image_size[0]}x{info.image_size[1]}x{info.channels}; kind {info.kind}")

    keras_runner = E.KerasRunner(model)
    keras_size = os.path.getsize(keras_file)
    rows = []
    keras_row = {
        "runtime": "keras",
        "quantize": "",
        "input": "(None, None, None, C)",
        "size_mb": keras_size / 1e6,
        "ms_b1": time_runner(keras_runner, images, 1, args.batch1_images),
        "ms_b32": time_runner(keras_runner, images, 32, len(images)),
    }
    rows.append(keras_row)
    parity = {}
    for fmt, quantize in VARIANTS:
        label = fmt + (f"+{quantize}" if quantize else "")
        suffix = "_savedmodel" if fmt == "savedmodel" else E.EXTENSIONS[fmt]
        path = os.path.join(out_dir, f"model{'_' + quantize if quantize else ''}{suffix}")
        start = time.perf_counter()
        try:
            E.export_model(args.model, fmt, out=path, quantize=quantize, model=model)
        except Exception as err:  # noqa: BLE001  report and go on with the other formats
            print(f"{label}: export failed: {err}")
            rows.append({"runtime": fmt, "quantize": quantize or "", "error": str(err)[:200]})
            continue
        export_s = time.perf_counter() - start
        runner = E.load_runner(path, threads=args.threads)
        report = E.check_parity(args.model, path, sources=files, limit=None, raw_limit=8, model=model)
        parity[label] = report
        shape = tuple(runner.input_shape)
        rows.append(
            {
                "runtime": fmt,
                "quantize": quantize or "",
                "input": str(shape),
                "size_mb": E.artifact_size(path) / 1e6,
                "ms_b1": time_runner(runner, images, 1, args.batch1_images),
                "ms_b32": time_runner(runner, images, 32, len(images)),
                "export_s": export_s,
                "max_abs_diff": report["max_abs_diff"],
                "agreement": report["agreement"],
                "parity": report["passed"],
            }
        )
    for r in rows:
        if "ms_b1" in r:
            r["size_vs_keras"] = r["size_mb"] / keras_row["size_mb"]
            r["b1_speedup"] = keras_row["ms_b1"] / r["ms_b1"]
            r["b32_speedup"] = keras_row["ms_b32"] / r["ms_b32"]
    columns = [
        "runtime",
        "quantize",
        "size_mb",
        "size_vs_keras",
        "ms_b1",
        "b1_speedup",
        "ms_b32",
        "b32_speedup",
        "max_abs_diff",
        "agreement",
        "parity",
    ]
    print(table(rows, columns))
    print(
        "speedup = Keras ms per image / runtime ms per image (same run, same images); "
        f"float parity tolerance {E.FLOAT_TOLERANCE:g}, quantized agreement >= {E.QUANTIZED_MIN_AGREEMENT:g}"
    )
    path = write_results(
        args.name,
        {
            "command": "python benchmarks/export.py " + " ".join(sys.argv[1:]),
            "machine": machine(),
            "model": os.path.abspath(keras_file),
            "model_info": meta,
            "images": len(files),
            "threads": args.threads,
            "rows": rows,
            "parity": parity,
            "note": "keras = the saved model as loaded (its own precision policy); exports compute in float32",
        },
    )
    print("wrote", path)


if __name__ == "__main__":
    main()
