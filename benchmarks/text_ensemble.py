"""Ensembles and test-time shifts for text CAPTCHAs, measured: do N default runs read better together than alone?

Trains ``--members`` runs of the text defaults on one set, each as a user would:

    recaptcha-tf train --task text --data DATA --out OUT/NAME/seed0 --logdir ''
    recaptcha-tf train --task text --data DATA --out OUT/NAME/seedK --logdir '' --seed K --split SEED0/split.json

(SEED0 is OUT/NAME/seed0), so every member has the default seed-0 split (``--split`` repeats it) and its own
initialisation, shuffle and augmentation (``--seed K``). Then, on that split's test images:

* ``seedK``: each member alone (its ``summary.json``);
* ``vote-N``: the first N members each reading the images, the text most of them read winning (ties: the most
  confident), which is what ``recaptcha-tf evaluate --model OUT/NAME/seed0 --data DATA --ensemble
  OUT/NAME/seed1 ...`` does (the command is run for the largest N and must give the same exact match);
* ``average-N``: the first N members with their per-frame CTC probabilities averaged before decoding;
* ``seed0-shiftK-average`` / ``-vote``: test-time augmentation of member 0: its outputs for each image and for
  the image shifted K pixels left and right (at the network's input size, edges repeated), averaged frame by
  frame or read one by one and voted on. (A shift of a whole frame, 4 pixels for the CRNN, misaligns the
  frames: averaging then reads characters twice.)

Each row: exact match, CER and the members' training minutes. Finished members are kept (a killed training
resumes where it stopped), so re-running the same command continues.

    python benchmarks/text_ensemble.py --data DIR [--name NAME] [--members 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import DEFAULT_TEXT, RESULTS, machine, run_cli, table

COLUMNS = ["set", "row", "members", "test_n", "exact_match", "cer", "train_minutes"]


def member_command(data: str, out: str, k: int, split: str) -> list[str]:
    command = ["train", "--task", "text", "--data", data, "--out", out, "--logdir", ""]
    return command if k == 0 else command + ["--seed", str(k), "--split", split]


def finished(out: str) -> dict | None:
    path = os.path.join(out, "summary.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        summary = json.load(f)
    return summary if summary.get("test") else None


def test_set(data: str, run: str):
    from recaptcha_tf.data.text.formats import load_text_dataset
    from recaptcha_tf.evaluation.workflow import run_subset

    return run_subset(load_text_dataset(data), run, "test")


def shifted(images: np.ndarray, pixels: int) -> np.ndarray:
    """``(B, H, W, C)`` images moved ``pixels`` to the right (left when negative), the edge column repeated."""
    out = np.roll(images, pixels, axis=2)
    if pixels > 0:
        out[:, :, :pixels] = images[:, :, :1]
    elif pixels < 0:
        out[:, :, pixels:] = images[:, :, -1:]
    return out


def score(name: str, members: int, readings, labels, minutes: float) -> dict:
    from recaptcha_tf.evaluation.metrics import character_error_rate

    texts = [t for t, _ in readings]
    return {
        "row": name,
        "members": members,
        "test_n": len(labels),
        "exact_match": float(np.mean([t == r for t, r in zip(texts, labels)])),
        "cer": character_error_rate(labels, texts),
        "train_minutes": round(minutes, 2),
    }


def measure(data: str, runs: list[str], summaries: list[dict], shifts: list[int]) -> list[dict]:
    from recaptcha_tf.inference.decoding import average_text_outputs, decode_text_outputs, vote_texts
    from recaptcha_tf.inference.loading import load_model
    from recaptcha_tf.inference.predictor import inference_for

    dataset = test_set(data, runs[0])
    inferences = [inference_for(load_model(r)) for r in runs]
    info = inferences[0].info
    outputs = [inf.outputs(dataset.sources) for inf in inferences]
    readings = [decode_text_outputs(o, info.names, info.kind) for o in outputs]
    minutes = [s["train_seconds"] / 60 for s in summaries]
    rows = [score(f"seed{k}", 1, r, dataset.labels, minutes[k]) for k, r in enumerate(readings)]
    for n in range(2, len(runs) + 1):
        averaged = decode_text_outputs(average_text_outputs(outputs[:n], info.kind), info.names, info.kind)
        rows.append(score(f"average-{n}", n, averaged, dataset.labels, sum(minutes[:n])))
        rows.append(score(f"vote-{n}", n, vote_texts(readings[:n]), dataset.labels, sum(minutes[:n])))
    images = np.concatenate([inferences[0].preprocess(s)[None] for s in dataset.sources])
    for k in shifts:
        views = [outputs[0]] + [inferences[0].run(shifted(images, p)) for p in (k, -k)]
        averaged = decode_text_outputs(average_text_outputs(views, info.kind), info.names, info.kind)
        rows.append(score(f"seed0-shift{k}-average", 1, averaged, dataset.labels, minutes[0]))
        voted = vote_texts([decode_text_outputs(v, info.names, info.kind) for v in views])
        rows.append(score(f"seed0-shift{k}-vote", 1, voted, dataset.labels, minutes[0]))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_TEXT, help="text CAPTCHA folder (label-named images)")
    parser.add_argument("--name", default=None, help="the set's name in the table (default: the folder's name)")
    parser.add_argument("--members", type=int, default=3, help="runs to train and combine")
    parser.add_argument("--shifts", type=int, nargs="*", default=[2, 4], help="test-time shifts, in pixels")
    parser.add_argument("--out", default="models/bench-text-ensemble")
    args = parser.parse_args()
    if args.members < 2:
        parser.error("--members must be at least 2")
    name = args.name or os.path.basename(os.path.normpath(args.data))
    folder = os.path.join(args.out, name)
    runs = [os.path.join(folder, f"seed{k}") for k in range(args.members)]
    split = os.path.join(runs[0], "split.json")
    commands = [member_command(args.data, run, k, split) for k, run in enumerate(runs)]
    for command, run in zip(commands, runs):
        if not finished(run):
            print("recaptcha-tf " + " ".join(c or "''" for c in command), flush=True)
            run_cli(command)
    summaries = [finished(r) for r in runs]
    rows = [{"set": name, **r} for r in measure(args.data, runs, summaries, args.shifts)]

    report = os.path.join(folder, f"ensemble-{args.members}.json")
    evaluate = ["evaluate", "--model", runs[0], "--data", args.data, "--ensemble", *runs[1:], "--report", report]
    subprocess.run([sys.executable, "-P", "-m", "recaptcha_tf", *evaluate], check=True, stdout=subprocess.DEVNULL)
    with open(report) as f:
        cli = json.load(f)
    mine = next(r for r in rows if r["row"] == f"vote-{args.members}")
    if cli.get("ensemble_method") != "vote" or abs(cli["exact_match"] - mine["exact_match"]) > 1e-9:
        raise SystemExit(
            f"evaluate --ensemble gave {cli.get('exact_match')} ({cli.get('ensemble_method')}), "
            f"the benchmark {mine['exact_match']}"
        )
    for r in rows:
        r["machine"] = machine()
    r0 = rows[0]
    r0["commands"] = ["recaptcha-tf " + " ".join(c or "''" for c in command) for command in commands]
    r0["evaluate"] = "recaptcha-tf " + " ".join(evaluate)

    path = os.path.join(RESULTS, "text_ensemble.json")
    results = json.load(open(path)) if os.path.exists(path) else {"rows": []}
    results["rows"] = [r for r in results["rows"] if r["set"] != name] + rows
    os.makedirs(RESULTS, exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(results, f, indent=2)
    os.replace(path + ".tmp", path)
    print(table(rows, COLUMNS))
    print("wrote", path)


if __name__ == "__main__":
    main()
