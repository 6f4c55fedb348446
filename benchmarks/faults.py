"""Fault injection: SIGKILL a tiny training run at random instants; every re-run must resume and lose nothing.

Each kill runs, as a user would,

    recaptcha-tf train --task tiles --data TINY --epochs E --image-size 32 --out RUN --logdir '' --patience 0

kills it with SIGKILL after a random delay (uniform between the start of training
and the end, as timed on a clean run first), then starts the same command again. Checked:

  * resumes: the re-run restores a backup (or starts afresh when no epoch had finished);
  * no finished epoch lost: it resumes after at least as many epochs as ``history.csv``
    had rows at the kill, and ``history.csv`` always holds epochs 0..k-1 once each;
  * finishes: the last run exits 0 with E rows in ``history.csv``, ``epochs_run == E``,
    and its ``model.keras`` loads (safe mode);
  * mid-write: a kill while ``latest.weights.h5`` is written is simulated by truncating
    it; the re-run must warn, fall back to ``previous.weights.h5`` and finish.

    python benchmarks/faults.py --kills 20            # full mode, writes benchmarks/results/faults.json
    python benchmarks/faults.py --kills 2 --epochs 3  # short mode (the test)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import RESULTS, table

RESUMED = re.compile(r"resuming after epoch (\d+)")


def make_data(root: str, per_class: int = 10, size: int = 24, seed: int = 0) -> str:
    """Two classes of ``per_class`` tiny images (a bright square or a dark one on noise)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c, name in enumerate(("bright", "dark")):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for k in range(per_class):
            pixels = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            pixels[6:18, 6:18] = 230 if c == 0 else 5
            Image.fromarray(pixels).save(os.path.join(root, name, f"{k:03d}.png"))
    return root


def train_command(data: str, out: str, epochs: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "recaptcha_tf",
        "train",
        "--task",
        "tiles",
        "--data",
        data,
        "--epochs",
        str(epochs),
        "--image-size",
        "32",
        "--out",
        out,
        "--logdir",
        "",
        "--patience",
        "0",
        "--balance",
        "0",
        "--model-arg",
        "conv_layers=1",
        "--model-arg",
        "filters=4",
        "--model-arg",
        "dense_units=8",
    ]


def history(out: str) -> list[int]:
    path = os.path.join(out, "history.csv")
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


def start(cmd: list[str], log_path: str) -> subprocess.Popen:
    log = open(log_path, "w")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def resumed_after(log_path: str) -> int | None:
    """The epoch a run resumed after (from its log), ``None`` when it started afresh."""
    found = RESUMED.findall(open(log_path).read())
    return int(found[0]) if found else None


def run_to_end(cmd: list[str], log_path: str, timeout: float) -> int:
    proc = start(cmd, log_path)
    return proc.wait(timeout=timeout)


def timed_clean_run(cmd: list[str], log_path: str, timeout: float) -> tuple[float, float]:
    """``(seconds until the first epoch starts, seconds in all)`` of an uninterrupted run."""
    began = time.perf_counter()
    proc = start(cmd, log_path)
    startup = None
    while proc.poll() is None and time.perf_counter() - began < timeout:
        if startup is None and "Epoch 1/" in open(log_path).read():
            startup = time.perf_counter() - began
        time.sleep(0.1)
    if proc.wait(timeout=timeout) != 0:
        raise SystemExit(f"the clean run failed (exit status {proc.returncode}); see {log_path}")
    wall = time.perf_counter() - began
    return startup or 0.0, wall


def check_finished(out: str, epochs: int) -> dict:
    """The finished run: E history rows once each, epochs_run == E, and a model that loads."""
    rows = history(out)
    summary = (
        json.load(open(os.path.join(out, "summary.json"))) if os.path.exists(os.path.join(out, "summary.json")) else {}
    )
    loads = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from recaptcha_tf.inference import load_model, "
            "model_info; print(model_info(load_model(sys.argv[1])).names)",
            out,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return {
        "history_complete": rows == list(range(epochs)),
        "epochs_run": summary.get("epochs_run"),
        "model_loads": loads.returncode == 0,
        "backup_removed": not os.path.exists(os.path.join(out, "backup")),
    }


def kill_loop(
    data: str, work: str, epochs: int, kills: int, window: tuple[float, float], rng: random.Random, timeout: float
):
    """SIGKILL the run ``kills`` times at instants drawn uniformly from ``window`` (seconds after each start:
    from when training begins to when a clean run ends); returns one row per kill, the run folder, exit status."""
    out = os.path.join(work, "run")
    cmd = train_command(data, out, epochs)
    rows, k, attempt = [], 0, 0
    log_path = os.path.join(work, "attempt0.log")
    proc, began = start(cmd, log_path), time.perf_counter()
    while k < kills:
        delay = rng.uniform(*window)
        try:
            proc.wait(timeout=delay)
            finished = True  # it ended before the kill: start a fresh run folder, not a kill
        except subprocess.TimeoutExpired:
            finished = False
        if finished:
            shutil.rmtree(out, ignore_errors=True)
            # A faster machine (or a --wall from a slower one): draw the next instants within this run's length,
            # or every run would end before its kill and the loop would never count one.
            elapsed = time.perf_counter() - began
            window = (min(window[0], 0.3 * elapsed), min(window[1], 0.9 * elapsed))
        else:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            k += 1
            logged = history(out)
            backups = (
                sorted(os.listdir(os.path.join(out, "backup"))) if os.path.isdir(os.path.join(out, "backup")) else []
            )
        attempt += 1
        log_path = os.path.join(work, f"attempt{attempt}.log")
        proc, began = start(cmd, log_path), time.perf_counter()
        if finished:
            continue
        # Wait until the re-run has restored (or decided to start afresh): its log says so before epoch 1 ends.
        deadline = time.time() + timeout
        while (
            time.time() < deadline
            and proc.poll() is None
            and resumed_after(log_path) is None
            and "Epoch 1/" not in open(log_path).read()
            and "Epoch 2/" not in open(log_path).read()
        ):
            time.sleep(0.2)
        after = resumed_after(log_path)
        rows.append(
            {
                "kill": k,
                "delay_s": round(delay, 2),
                "epochs_logged_at_kill": len(logged),
                "history_consecutive": logged == list(range(len(logged))),
                "backup_files": " ".join(backups) or "-",
                "resumed_after": after if after is not None else 0,
                "resumes": after is not None or not logged,
                "no_epoch_lost": (after or 0) >= len(logged),
            }
        )
    rc = proc.wait(timeout=timeout)
    return rows, out, rc


def mid_write_scenario(data: str, work: str, epochs: int, timeout: float) -> dict:
    """Kill after two backed-up epochs, truncate latest.weights.h5 as a mid-write kill would, re-run."""
    out = os.path.join(work, "midwrite")
    cmd = train_command(data, out, epochs)
    proc = start(cmd, os.path.join(work, "midwrite0.log"))
    previous = os.path.join(out, "backup", "previous.weights.h5")
    deadline = time.time() + timeout
    while proc.poll() is None and not os.path.exists(previous) and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    latest = os.path.join(out, "backup", "latest.weights.h5")
    truncated = os.path.exists(latest)
    if truncated:
        with open(latest, "r+b") as f:
            f.truncate(os.path.getsize(latest) // 3)
    log_path = os.path.join(work, "midwrite1.log")
    rc = run_to_end(cmd, log_path, timeout)
    text = open(log_path).read()
    return {
        "truncated_latest": truncated,
        "rc": rc,
        "warned": "latest.weights.h5 is unreadable" in text,
        "resumed_after": resumed_after(log_path),
        **check_finished(out, epochs),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--kills", type=int, default=20, help="SIGKILLs at random instants (at least 20 for the record)"
    )
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one, removed)")
    parser.add_argument("--json", default=os.path.join(RESULTS, "faults.json"), help="results file")
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed for one run")
    parser.add_argument(
        "--wall",
        type=float,
        default=None,
        help="seconds of a clean run, to skip measuring it (kills then fall in its second half)",
    )
    args = parser.parse_args(argv)

    work = args.work or tempfile.mkdtemp(prefix="faults-")
    os.makedirs(work, exist_ok=True)
    rng = random.Random(args.seed)
    data = make_data(os.path.join(work, "tiny"))
    try:
        if args.wall is None:
            startup, wall = timed_clean_run(
                train_command(data, os.path.join(work, "clean"), args.epochs),
                os.path.join(work, "clean.log"),
                args.timeout,
            )
        else:
            startup, wall = args.wall / 2, args.wall
        rows, out, rc = kill_loop(data, work, args.epochs, args.kills, (startup, wall), rng, args.timeout)
        final = {"rc": rc, **check_finished(out, args.epochs)}
        midwrite = mid_write_scenario(data, work, args.epochs, args.timeout)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)

    columns = [
        "kill",
        "delay_s",
        "epochs_logged_at_kill",
        "backup_files",
        "resumed_after",
        "resumes",
        "no_epoch_lost",
        "history_consecutive",
    ]
    print(
        f"clean run: {wall:.1f} s for {args.epochs} epochs, training from {startup:.1f} s; "
        "SIGKILL at a uniform instant in between\n"
    )
    print(table(rows, columns))
    print(f"\nfinal run: {final}\nmid-write kill (truncated latest.weights.h5): {midwrite}")
    passed = (
        all(r["resumes"] and r["no_epoch_lost"] and r["history_consecutive"] for r in rows)
        and final["rc"] == 0
        and final["history_complete"]
        and final["epochs_run"] == args.epochs
        and final["model_loads"]
        and midwrite["truncated_latest"]
        and midwrite["warned"]
        and midwrite["rc"] == 0
        and midwrite["history_complete"]
        and midwrite["model_loads"]
    )
    payload = {
        "kills": args.kills,
        "epochs": args.epochs,
        "seed": args.seed,
        "clean_run_seconds": round(wall, 1),
        "startup_seconds": round(startup, 1),
        "rows": rows,
        "final": final,
        "mid_write": midwrite,
        "passed": passed,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(payload, f, indent=2)
    print(f"\n{'PASSED' if passed else 'FAILED'}; wrote {args.json}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
