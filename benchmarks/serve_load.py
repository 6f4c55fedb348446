"""Load test of `recaptcha-tf serve`: latency percentiles, requests/s and server-side timings under concurrent clients.

    python benchmarks/serve_load.py --model models/tiles-cnn --images ../shared/data/recaptcha-tiles

Every configuration below starts its own server in this process on a free
localhost port, sends one warm-up request, then for each --clients count (default
1 8 32) sends --requests uploads (default 200) from that many concurrent clients,
cycling through the real images under --images:

    legacy   the path before issue #15, reproduced here (not in the package): one
             request at a time (Gradio queue concurrency 1 plus a lock), a fresh
             tf.data pipeline and `model.predict` on the model as saved (its own
             precision) per request. Gradio client, /predict_tile or /predict_text.
    gradio   today's `serve`: one compiled predictor, parallel upload checks and
             decoding, micro-batches. Gradio client. Once per --runtimes entry.
    http     the plain route on the same server: POST /api/v1/predict with the raw
             bytes (one keep-alive HTTP connection per client). Once per --runtimes entry.
    noop     a do-nothing Gradio endpoint with the same file upload and queue
             settings: Gradio's own ceiling on this machine.

Each server runs in its own child process, so clients and server do not share
a GIL. Latency is per request as the client sees it. Server-side columns come from
the predictor's own timings (`Predictor.timings`): `server_p50_ms` is the p50 of
checks + decode + model per request (model = waiting for and running its
micro-batch), `model_p50_ms` the p50 of the model part alone, `batch` the mean
images per model call. `vs_legacy` is requests/s over the legacy row with the
same clients, `vs_noop` over the noop row (same run). --grid loads /select_cells
with 3x3 grids instead (gradio and legacy modes).

onnx / tflite need `recaptcha-tf export --model RUN --format onnx|tflite` first;
missing artifacts are exported (to RUN/export/, no parity check) unless --no-export.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine, table, write_results

MODES = ("legacy", "gradio", "http", "noop")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_grids(files, out_dir, count=8, size=100):
    """3x3 grids of ``size`` px tiles from the first 9*count images."""
    import numpy as np
    from PIL import Image

    os.makedirs(out_dir, exist_ok=True)
    grids = []
    for g in range(count):
        tiles = [Image.open(files[(9 * g + k) % len(files)]).convert("RGB").resize((size, size)) for k in range(9)]
        arr = np.concatenate(
            [np.concatenate([np.asarray(t) for t in tiles[r * 3 : r * 3 + 3]], axis=1) for r in range(3)]
        )
        path = os.path.join(out_dir, f"grid{g}.png")
        Image.fromarray(arr).save(path)
        grids.append(path)
    return grids


# --------------------------------------------------------------------------- the old path, for comparison


def legacy_predictor(model_path: str):
    """The serving path before issue #15: a lock, a fresh tf.data pipeline and ``model.predict`` per request."""
    import numpy as np
    import tensorflow as tf

    from recaptcha_tf.data.pipeline import fit_image, make_dataset, resizing_layer
    from recaptcha_tf.inference.loading import load_model, model_info
    from recaptcha_tf.inference.predictor import format_predictions
    from recaptcha_tf.serving.app import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, Predictor

    class LegacyPredictor(Predictor):
        def __init__(self):  # no Inference, no batcher
            self.model = load_model(model_path)
            self.info = model_info(self.model)
            self.runtime = "legacy"
            self.max_bytes, self.max_pixels = DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
            self.timings = collections.deque(maxlen=100_000)
            self.batcher = None
            self._lock = threading.Lock()
            self._resizer = resizing_layer(self.info.image_size, self.info.resize)

        def predict_upload(self, upload, top_k: int = 5) -> dict:
            start = time.perf_counter()
            data = self._read(upload)
            checked = time.perf_counter()
            with self._lock:
                ds = make_dataset(
                    [data],
                    None,
                    image_size=self.info.image_size,
                    channels=self.info.channels,
                    resize=self.info.resize,
                    batch_size=64,
                    cache=False,
                )
                outputs = self.model.predict(ds, verbose=0)
            done = time.perf_counter()
            self.timings.append(
                {
                    "checks": 1000 * (checked - start),
                    "decode": 0.0,
                    "model": 1000 * (done - checked),
                    "total": 1000 * (done - start),
                }
            )
            return format_predictions(outputs, self.info, top_k)[0]

        def cell_probabilities(self, cells):
            batch = tf.stack([fit_image(tf.convert_to_tensor(c), self._resizer) for c in cells])
            with self._lock:
                return np.asarray(self.model.predict(batch, verbose=0))

        def close(self):
            pass

    return LegacyPredictor()


def noop_app():
    """A do-nothing Gradio endpoint with a file upload: the ceiling of Gradio itself."""
    import gradio as gr

    with gr.Blocks() as demo:
        upload = gr.File(type="filepath")
        out = gr.Textbox()
        gr.Button().click(lambda f: "ok", [upload], [out], api_name="noop")
    demo.queue(default_concurrency_limit=32)
    return demo


# --------------------------------------------------------------------------- clients


def gradio_call(url, endpoint, extra):
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    return lambda path: client.predict(handle_file(path), *extra, api_name=endpoint)


def http_call(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(path):
        with open(path, "rb") as f:
            body = f.read()
        connection.request("POST", "/api/v1/predict", body=body, headers={"Content-Type": "application/octet-stream"})
        response = connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {payload[:200]!r}")
        return payload

    return call


def load(make_call, files, requests: int, clients: int):
    """Send ``requests`` calls from ``clients`` threads; returns latencies (s), errors and wall seconds."""
    calls = [make_call() for _ in range(clients)]
    counter = iter(range(requests))
    lock = threading.Lock()
    latencies, errors = [], []

    def worker(call):
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            path = files[i % len(files)]
            t = time.perf_counter()
            try:
                call(path)
            except Exception as err:  # noqa: BLE001  counted, reported
                with lock:
                    errors.append(f"{path}: {str(err)[:200]}")
                continue
            elapsed = time.perf_counter() - t
            with lock:
                latencies.append(elapsed)

    wall = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors, time.perf_counter() - wall


def summarise(label, runtime, endpoint, clients, requests, latencies, errors, wall, timings, batches):
    import numpy as np

    ms = np.array(latencies) * 1000
    row = {
        "mode": label,
        "runtime": runtime,
        "endpoint": endpoint,
        "clients": clients,
        "requests": requests,
        "ok": len(latencies),
        "errors": len(errors),
        "p50_ms": float(np.percentile(ms, 50)) if len(ms) else None,
        "p95_ms": float(np.percentile(ms, 95)) if len(ms) else None,
        "max_ms": float(ms.max()) if len(ms) else None,
        "requests_per_s": len(latencies) / wall,
    }
    if timings:
        row["server_p50_ms"] = float(np.median([t["total"] for t in timings]))
        row["model_p50_ms"] = float(np.median([t["model"] for t in timings]))
        row["decode_p50_ms"] = float(np.median([t["decode"] for t in timings]))
    if batches:
        row["batch"] = float(np.mean([b[1] for b in batches]))
        row["model_call_p50_ms"] = float(np.median([b[2] for b in batches]))
    return row


def ensure_export(model_path: str, runtime: str, export: bool) -> None:
    from recaptcha_tf.export import export_model
    from recaptcha_tf.inference.predictor import resolve_artifact

    try:
        resolve_artifact(model_path, runtime)
    except FileNotFoundError:
        if not export:
            raise
        print(f"exporting {runtime} (no parity check) ...")
        export_model(model_path, runtime)


def start_server(args, mode: str, runtime: str, port: int):
    """Build and launch one server in this process; returns ``(demo, predictor or None)``."""
    from recaptcha_tf.serving.app import Predictor, build_app, launch

    if mode == "noop":
        demo = noop_app()
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False)
        return demo, None
    predictor = (
        legacy_predictor(args.model)
        if mode == "legacy"
        else Predictor(
            args.model, runtime=runtime, max_batch_size=args.max_batch_size, batch_wait_ms=args.batch_wait_ms
        )
    )
    demo = build_app(args.model, predictor=predictor, examples=0, concurrency=1 if mode == "legacy" else 32)
    launch(demo, port=port, block=False)
    return demo, predictor


def serve_child(args) -> None:
    """``--serve-child MODE:RUNTIME:PORT``: run one server until killed, with a benchmark-only timings route."""
    mode, runtime, port = args.serve_child.split(":")
    start = time.perf_counter()
    demo, predictor = start_server(args, mode, runtime, int(port))

    def timings():
        if predictor is None:
            return {"timings": [], "batches": [], "is_text": False, "names": []}
        return {
            "timings": list(predictor.timings),
            "batches": list(predictor.batcher.history) if predictor.batcher else [],
            "is_text": predictor.is_text,
            "names": list(predictor.info.names),
        }

    demo.app.add_api_route("/_bench/timings", timings, methods=["GET"])
    print(f"READY {time.perf_counter() - start:.3f}", flush=True)
    demo.block_thread()


class RemoteServer:
    """A server in a child process (clients and server do not share a GIL)."""

    def __init__(self, mode: str, runtime: str, argv: list[str]):
        import subprocess

        self.port = free_port()
        start = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), *argv, "--serve-child", f"{mode}:{runtime}:{self.port}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for line in self.process.stdout:
            if line.startswith("READY"):
                self.startup = float(line.split()[1])
                break
        else:
            raise RuntimeError(f"the {mode}/{runtime} server did not start (exit {self.process.wait()})")
        self.wall_startup = time.perf_counter() - start

    def state(self) -> dict:
        import json
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_bench/timings") as r:
            return json.loads(r.read())

    def close(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except Exception:  # noqa: BLE001
            self.process.kill()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="run folder or .keras file")
    parser.add_argument("--images", required=True, help="folder with real images (searched recursively)")
    parser.add_argument("--requests", type=int, default=200, help="requests per row")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32], help="concurrent clients, one row each")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument(
        "--runtimes",
        nargs="+",
        choices=("keras", "onnx", "tflite"),
        default=["keras", "onnx", "tflite"],
        help="runtimes for the gradio and http modes",
    )
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--batch-wait-ms", type=float, default=2.0)
    parser.add_argument("--grid", action="store_true", help="classifiers: load /select_cells with 3x3 grids")
    parser.add_argument("--no-export", action="store_true", help="fail instead of exporting missing onnx/tflite files")
    parser.add_argument("--name", default="serve_load", help="results/<name>.json")
    parser.add_argument("--serve-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_child:
        return serve_child(args)

    import numpy as np

    from recaptcha_tf.export import list_images

    files = list_images(args.images)
    if not files:
        sys.exit(f"error: no images under {args.images}")
    files = [files[i] for i in np.random.default_rng(0).permutation(len(files))]

    configs = []  # (mode, runtime)
    for mode in args.modes:
        if mode in ("gradio", "http"):
            configs += [(mode, r) for r in args.runtimes]
        else:
            configs.append((mode, "keras" if mode == "legacy" else ""))
    for runtime in {r for m, r in configs if r in ("onnx", "tflite")}:
        ensure_export(args.model, runtime, not args.no_export)

    child_argv = [
        "--model",
        args.model,
        "--images",
        args.images,
        "--max-batch-size",
        str(args.max_batch_size),
        "--batch-wait-ms",
        str(args.batch_wait_ms),
    ]
    rows, errors_seen, startup = [], {}, {}
    grid_files = None
    for mode, runtime in configs:
        server = RemoteServer(mode, runtime, child_argv)
        port = server.port
        url = f"http://127.0.0.1:{port}/"
        startup[f"{mode}/{runtime}"] = server.wall_startup
        state = server.state()
        extra, inputs = [], files
        if mode == "noop":
            endpoint = "/noop"
        elif mode == "http":
            endpoint = "/api/v1/predict"
        elif state["is_text"]:
            endpoint = "/predict_text"
        elif args.grid:
            import tempfile

            if grid_files is None:
                grid_files = make_grids(files, tempfile.mkdtemp(prefix="serve_load_"))
            endpoint, extra, inputs = "/select_cells", [state["names"][0], "3x3"], grid_files
        else:
            endpoint = "/predict_tile"
        if mode == "http":
            make_call = lambda port=port: http_call(port)
        else:
            make_call = lambda url=url, endpoint=endpoint, extra=extra: gradio_call(url, endpoint, extra)
        try:
            make_call()(inputs[0])  # warm-up
            for clients in args.clients:
                before = server.state()
                latencies, errors, wall = load(make_call, inputs, args.requests, clients)
                after = server.state()
                row = summarise(
                    mode,
                    runtime,
                    endpoint,
                    clients,
                    args.requests,
                    latencies,
                    errors,
                    wall,
                    after["timings"][len(before["timings"]) :],
                    after["batches"][len(before["batches"]) :],
                )
                rows.append(row)
                errors_seen[f"{mode}/{runtime}/{clients}"] = errors[:5]
                print(table([row], list(row)), flush=True)
        finally:
            server.close()

    for row in rows:
        for ref, key in (("legacy", "vs_legacy"), ("noop", "vs_noop")):
            base = [r for r in rows if r["mode"] == ref and r["clients"] == row["clients"]]
            if base and base[0]["requests_per_s"]:
                row[key] = row["requests_per_s"] / base[0]["requests_per_s"]
    columns = [
        "mode",
        "runtime",
        "clients",
        "ok",
        "errors",
        "p50_ms",
        "p95_ms",
        "max_ms",
        "requests_per_s",
        "vs_legacy",
        "vs_noop",
        "server_p50_ms",
        "model_p50_ms",
        "batch",
    ]
    print(table(rows, columns))
    print(
        "server start-up seconds (new process to ready: imports, model load, compile, warm-up, Gradio launch):",
        ", ".join(f"{k} {v:.1f}" for k, v in startup.items()),
    )
    if any(errors_seen.values()):
        print("first errors:", *[f"{k}: {e}" for k, es in errors_seen.items() for e in es][:10], sep="\n  ")
    path = write_results(
        args.name,
        {
            "command": "python benchmarks/serve_load.py " + " ".join(sys.argv[1:]),
            "machine": machine(),
            "model": os.path.abspath(args.model),
            "rows": rows,
            "startup_s": startup,
            "errors": errors_seen,
        },
    )
    print("wrote", path)


if __name__ == "__main__":
    main()
