"""Memory of `recaptcha-tf serve` under a burst of small files that decode large, with and without the decode budget.

    python benchmarks/serve_memory.py [--model RUN] [--requests 64] [--size 4096]

A 4096x4096 PNG of one colour is about 50 KB on the wire and 50 MB decoded. For each configuration this starts
`recaptcha-tf serve` as a child process (a tiny tile model trained here when --model is not given), waits until it
answers, then sends --requests such PNGs to `POST /api/v1/predict` all at once from as many threads, and samples
the server's resident memory (RSS, psutil) every 20 ms: before the burst (baseline), its peak, and 15 s after the
burst (settled). The configurations run one after the other in the same process:

    no budget   --decode-budget 10**12: every request decodes at once (the behaviour before the budget)
    default     --decode-budget at its default (3 x 4096 x 4096 pixels)

Writes benchmarks/results/serve_memory.json.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine, table, write_results
from serve_load import free_port

# name: (serve options, environment). "before" is the server as it was: no budget, oneDNN's own memory pool and
# glibc's default arenas (8 per core); "default" is `recaptcha-tf serve` as it is.
CONFIGS = {
    "before": (["--decode-budget", str(10**12)], {"TF_ONEDNN_USE_SYSTEM_ALLOCATOR": "0", "MALLOC_ARENA_MAX": "16"}),
    "default": ([], {}),
}


def tiny_model(folder: str) -> str:
    """A one-epoch tile CNN on generated shapes (memory here is about decoding, not the network)."""
    from recaptcha_tf.data.synthetic import make_tile_folders

    data = os.path.join(folder, "shapes")
    make_tile_folders(data, per_class=12)
    out = os.path.join(folder, "run")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "recaptcha_tf",
            "train",
            "--task",
            "tiles",
            "--data",
            data,
            "--out",
            out,
            "--epochs",
            "1",
            "--logdir",
            "",
            "--balance",
            "0",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return out


def big_png(size: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (90, 140, 200)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def post(port: int, body: bytes) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/predict", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def measure(model: str, extra: list[str], body: bytes, requests: int, env: dict | None = None) -> dict:
    import psutil

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-P", "-m", "recaptcha_tf", "serve", "--model", model, "--port", str(port), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if post(port, big_png(64)) == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("the server did not start")
        proc = psutil.Process(server.pid)
        time.sleep(2)
        baseline = proc.memory_info().rss
        samples, stop = [], threading.Event()

        def sample():
            while not stop.is_set():
                samples.append(proc.memory_info().rss)
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        statuses: list[int] = []
        start = time.perf_counter()
        threads = [threading.Thread(target=lambda: statuses.append(post(port, body))) for _ in range(requests)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        burst = time.perf_counter() - start
        time.sleep(15)
        stop.set()
        sampler.join()
        settled = proc.memory_info().rss
        return {
            "requests": requests,
            "ok": statuses.count(200),
            "busy_503": statuses.count(503),
            "other": len(statuses) - statuses.count(200) - statuses.count(503),
            "burst_seconds": round(burst, 2),
            "baseline_mb": round(baseline / 2**20),
            "peak_mb": round(max(samples) / 2**20),
            "settled_mb": round(settled / 2**20),
            "settled_vs_baseline": round(settled / baseline - 1, 3),
        }
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="run folder (default: a tiny model trained here)")
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--size", type=int, default=4096, help="width and height of the burst's PNGs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or tiny_model(tmp)
        body = big_png(args.size)
        rows = []
        for name, (extra, env) in CONFIGS.items():
            row = {"config": name, "png_bytes": len(body), **measure(model, extra, body, args.requests, env)}
            rows.append(row)
            print(row, flush=True)
    columns = [
        "config",
        "requests",
        "ok",
        "busy_503",
        "burst_seconds",
        "baseline_mb",
        "peak_mb",
        "settled_mb",
        "settled_vs_baseline",
    ]
    print(table(rows, columns))
    command = "python benchmarks/serve_memory.py " + " ".join(sys.argv[1:])
    print(write_results("serve_memory", {"command": command.strip(), "machine": machine(), "rows": rows}))


if __name__ == "__main__":
    main()
