"""Load test of the Gradio demo: latency percentiles and errors under concurrent clients.

    python benchmarks/serve_load.py --model models/tiles-cnn --images ../shared/data/recaptcha-tiles

Starts `recaptcha-tf serve` in this process on a free localhost port, then sends
--requests uploads (default 200) from --clients concurrent `gradio_client`
clients (default 8), cycling through the real images under --images. The
endpoint follows the model: /predict_tile for classifiers, /predict_text for
text models; --grid sends 3x3 grids built from the images to /select_cells.
Latency is per request as a client sees it (upload, queue, inference, result).
The server runs one prediction at a time (Gradio queue, concurrency 1), so
latency under load is mostly queueing.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine, table, write_results  # noqa: E402


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
        arr = np.concatenate([np.concatenate([np.asarray(t) for t in tiles[r * 3:r * 3 + 3]], axis=1)
                              for r in range(3)])
        path = os.path.join(out_dir, f"grid{g}.png")
        Image.fromarray(arr).save(path)
        grids.append(path)
    return grids


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="run folder or .keras file")
    parser.add_argument("--images", required=True, help="folder with real images (searched recursively)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--grid", action="store_true", help="classifiers: load /select_cells with 3x3 grids")
    parser.add_argument("--name", default="serve_load", help="results/<name>.json")
    args = parser.parse_args()

    import numpy as np
    from gradio_client import Client, handle_file

    from recaptcha_tf.app import Predictor, build_app, launch
    from recaptcha_tf.export import list_images

    files = list_images(args.images)
    if not files:
        sys.exit(f"error: no images under {args.images}")
    files = [files[i] for i in np.random.default_rng(0).permutation(len(files))]
    port = free_port()
    start = time.perf_counter()
    predictor = Predictor(args.model)
    demo = build_app(args.model, predictor=predictor)
    launch(demo, port=port, block=False)
    startup = time.perf_counter() - start
    target = None
    if predictor.is_text:
        endpoint = "/predict_text"
    elif args.grid:
        import tempfile

        endpoint, target = "/select_cells", predictor.info.names[0]
        files = make_grids(files, tempfile.mkdtemp(prefix="serve_load_"))
    else:
        endpoint = "/predict_tile"
    url = f"http://127.0.0.1:{port}/"
    clients = [Client(url, verbose=False) for _ in range(args.clients)]
    # one warm-up request so the first timed one does not pay for graph tracing
    clients[0].predict(handle_file(files[0]), *([target, "3x3"] if target else []), api_name=endpoint)

    counter = iter(range(args.requests))
    lock = threading.Lock()
    latencies, errors = [], []

    def worker(client):
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            extra = [target, "3x3"] if target else []
            t = time.perf_counter()
            try:
                client.predict(handle_file(files[i % len(files)]), *extra, api_name=endpoint)
                ok = True
            except Exception as err:  # counted, reported
                ok = False
                with lock:
                    errors.append(f"{files[i % len(files)]}: {str(err)[:200]}")
            elapsed = time.perf_counter() - t
            if ok:
                with lock:
                    latencies.append(elapsed)

    wall = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - wall
    demo.close()

    ms = np.array(latencies) * 1000
    row = {"endpoint": endpoint, "requests": args.requests, "clients": args.clients, "ok": len(latencies),
           "errors": len(errors),
           "p50_ms": float(np.percentile(ms, 50)) if len(ms) else None,
           "p95_ms": float(np.percentile(ms, 95)) if len(ms) else None,
           "max_ms": float(ms.max()) if len(ms) else None,
           "requests_per_s": len(latencies) / wall, "startup_s": startup}
    print(table([row], list(row)))
    if errors:
        print("first errors:", *errors[:5], sep="\n  ")
    path = write_results(args.name, {"command": "python benchmarks/serve_load.py " + " ".join(sys.argv[1:]),
                                     "machine": machine(), "model": os.path.abspath(args.model), "result": row,
                                     "errors": errors[:20]})
    print("wrote", path)


if __name__ == "__main__":
    main()
