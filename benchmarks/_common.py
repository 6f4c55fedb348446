"""Helpers shared by the benchmark scripts: machine description, tables and JSON output."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
DEFAULT_TILES = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "recaptcha-tiles"
)
DEFAULT_TEXT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "captcha-v2")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the platform's processor string elsewhere."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# the instructions that decide a CPU's training speed here: two "AMD EPYC" machines of this project ran the same
# text step in 0.14 s (with AVX-512 BF16) and 0.41 s (AVX2 only)
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_features() -> list[str]:
    """Which of :data:`SPEED_FLAGS` the CPU has (``/proc/cpuinfo``); empty where it cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return [flag for flag in SPEED_FLAGS if flag in flags]
    except OSError:
        pass
    return []


def machine() -> dict:
    import tensorflow as tf

    return {
        "cpu": cpu_model(),
        "cpu_features": cpu_features(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "cpus": os.cpu_count(),
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def table(rows: list[dict], columns: list[str]) -> str:
    """A Markdown table of ``rows`` restricted to ``columns``."""

    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write_results(name: str, payload: dict, folder: str | None = None) -> str:
    """Write ``payload`` to ``folder/name.json`` (default ``benchmarks/results``) under a temporary name, then
    rename it: a benchmark killed while writing leaves the previous results whole."""
    folder = folder or RESULTS
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(payload, f, indent=2)
    os.replace(path + ".tmp", path)
    return path


def run_cli(args: list[str]) -> float:
    """Run ``python -m recaptcha_tf ARGS`` as a user would; returns wall seconds.

    ``-P`` keeps the working directory off ``sys.path``: run from a snapshot (``PYTHONPATH=SNAPSHOT``, cwd the
    project), the command uses the snapshot's package, not the working tree's.
    """
    start = time.perf_counter()
    subprocess.run([sys.executable, "-P", "-m", "recaptcha_tf", *args], check=True)
    return time.perf_counter() - start


def latency_ms(model: str, sources, count: int = 50) -> float:
    """Median wall milliseconds to answer one image at a time (decode, model, decoding) with ``model``, over the
    first ``count`` of ``sources`` (paths or bytes), after two untimed warm-up images (trace and compile)."""
    import numpy as np

    from recaptcha_tf.inference.predictor import load_inference, predict

    inference = load_inference(model)
    predict(inference, list(sources[:2]))
    seconds = []
    for source in list(sources)[:count]:
        start = time.perf_counter()
        predict(inference, [source])
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds) * 1000)


def shipped_version(name: str | None) -> str | None:
    """The version of shipped model ``name`` (``None`` for a run folder, a file or no model): results that start
    from or score a shipped model change with each version."""
    from recaptcha_tf.utils.shipped import shipped_models

    found = shipped_models().get(name) if name else None
    return found.version if found else None
