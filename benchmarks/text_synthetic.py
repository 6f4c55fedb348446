"""Synthetic-to-real, measured: does pretraining on `recaptcha-tf generate` output help with few real labels?

On captcha-v2 with 100, 200 and all of its training labels, each size is trained twice or more:

* ``scratch-<size>``: ``recaptcha-tf train --task text --data captcha-v2`` with the defaults;
* ``synthetic-<style>-<size>``: the same with ``--weights OUT/pretrain-<style>/model.keras``, the backbone of
  a model trained (``pretrain-<style>``, defaults) on ``recaptcha-tf generate --style <style>`` output with
  captcha-v2's geometry: its image size, label length and characters (taken from its labels).

Every row is tested on the same 125 held-out images and validated on the same 125: the seed-0 70/15/15
split that ``train --task text --data captcha-v2`` makes by default, rebuilt here with the trainer's own
loader (sorted file names, undecodable files dropped) and ``random_split``. The 100 and 200 are the first
N of a seeded permutation of its train part, so the 100 are inside the 200. Each size's split is a
manifest (schema v2, written to ``OUT/splits/<size>.json``) passed as ``--split PATH.json``, which a text
run repeats and records as its own ``split.json``. Only the convolutional backbone is loaded
from the pretrained model (its tensors' shapes depend on neither the vocabulary nor the input size).

Each row: train images, test n, exact match, CER and training minutes (``summary.json``); pretraining
rows report the generator settings and their exact match on their own generated test part. Finished
rows are kept in the JSON, so re-running the same command continues with the rows still missing
(``--rerun NAME`` repeats one; re-running a pretraining also repeats its selected fine-tunes).
``--dry-run`` prints the split sizes and planned commands and writes only the manifests.

    python benchmarks/text_synthetic.py --data ../shared/data/captcha-v2 [--styles captcha-lib project]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import DEFAULT_TEXT, RESULTS, machine, run_cli, table

FRACTIONS = "70/15/15"
COLUMNS = ["set", "start", "train_images", "test_n", "exact_match", "cer", "train_minutes", "plateau", "generator"]


def real_splits(data: str, sizes: list[str], seed: int):
    """captcha-v2 as the trainer loads it, its default split, and the nested training subsets of each size."""
    from recaptcha_tf.data.splits import random_split
    from recaptcha_tf.data.text.formats import load_text_dataset

    dataset = load_text_dataset(data)  # as text_task_data: default label pattern and case, sorted file names
    parts = random_split(len(dataset.names), FRACTIONS, seed)
    order = np.random.default_rng(seed).permutation(len(parts["train"]))
    subsets = {}
    for size in sizes:
        n = len(order) if size == "all" else int(size)
        if n > len(order):
            raise SystemExit(f"--sizes {size}: the train part has only {len(order)} images")
        subsets[size] = sorted(parts["train"][i] for i in order[:n])
    return dataset, parts, subsets


def write_manifest(data: str, dataset, parts: dict, train: list[int], seed: int, path: str) -> str:
    from recaptcha_tf.data.splits import Split, parse_fractions, save_manifest

    def entries(indices):
        return [(dataset.sources[i], dataset.labels[i]) for i in indices]

    split = Split(
        class_names=[],
        train=entries(train),
        val=entries(parts["val"]),
        test=entries(parts["test"]),
        root=data,
        seed=seed,
        fractions=parse_fractions(FRACTIONS),
        extra={"task": "text", "data": os.path.abspath(data), "train_subset": len(train)},
    )
    return save_manifest(split, path)


def generator_settings(dataset, args) -> dict:
    from PIL import Image

    lengths = sorted({len(label) for label in dataset.labels})
    width, height = Image.open(dataset.sources[0]).size
    return {
        "count": str(args.generated),
        "size": f"{width}x{height}",
        "length": str(lengths[0]) if len(lengths) == 1 else f"{lengths[0]}-{lengths[-1]}",
        "charset": "".join(sorted(set("".join(dataset.labels)))),
        "seed": str(args.seed),
    }


def train_command(data: str, out: str, seed: int, weights: str | None = None, split: str | None = None) -> list[str]:
    command = ["train", "--task", "text", "--data", data, "--out", out, "--logdir", "", "--seed", str(seed)]
    return command + (["--split", split] if split else []) + (["--weights", weights] if weights else [])


def cli_text(command: list[str]) -> str:
    return "recaptcha-tf " + " ".join(c if c else '""' for c in command)


def manifest_path(args, size: str) -> str:
    return os.path.join(args.out, "splits", f"{size}.json")


def command_text(commands: list[list[str]]) -> str:
    """The row's commands as a user types them."""
    return " && ".join(cli_text(c) for c in commands)


def plan(args, gen: dict) -> dict:
    """Every row's name -> (kind, style, size, commands), in table order."""
    rows = {}
    for style in args.styles:
        data = os.path.join(args.out, "data", style)
        generate = ["generate", "--out", data, "--style", style, *[a for k, v in gen.items() for a in (f"--{k}", v)]]
        train = train_command(data, pretrained(args, style), args.seed)
        rows[f"pretrain-{style}"] = ("pretrain", style, None, [generate, train])
    for size in args.sizes:
        for style in (None, *args.styles):
            name = f"scratch-{size}" if style is None else f"synthetic-{style}-{size}"
            weights = style and os.path.join(pretrained(args, style), "model.keras")
            train = train_command(
                args.data, os.path.join(args.out, name), args.seed, weights, manifest_path(args, size)
            )
            rows[name] = ("finetune", style, size, [train])
    return rows


def pretrained(args, style: str) -> str:
    return os.path.join(args.out, f"pretrain-{style}")


def run_row(name: str, kind: str, style, size, commands: list[list[str]], args, gen: dict, text: str) -> dict:
    out = commands[-1][commands[-1].index("--out") + 1]
    shutil.rmtree(out, ignore_errors=True)
    minutes = {}
    if kind == "pretrain":
        shutil.rmtree(commands[0][commands[0].index("--out") + 1], ignore_errors=True)
        minutes["generate_minutes"] = round(run_cli(commands[0]) / 60, 2)
    run_cli(commands[-1])
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    with open(os.path.join(out, "split.json")) as f:
        split = json.load(f)
    test = summary.get("test", {})
    if test.get("n") != len(split["test"]):
        print(f"warning: {name} was tested on {test.get('n')} images, its split has {len(split['test'])}")
    return {
        "set": name,
        "start": "scratch" if style is None else style,
        "train_images": len(split["train"]),
        "test_n": test.get("n"),
        "exact_match": test.get("exact_match"),
        "cer": test.get("cer"),
        "train_minutes": round(summary["train_seconds"] / 60, 2),
        **minutes,
        "plateau": summary.get("plateau", ""),
        "generator": ", ".join(f"{k} {v}" for k, v in {"style": style, **gen}.items()) if kind == "pretrain" else "",
        "command": text,
        "seed": args.seed,
    }


def ordered(rows: dict, planned: dict) -> list[dict]:
    """The planned rows in table order, then rows of other sizes or styles kept from earlier runs."""
    return [rows[n] for n in planned if n in rows] + [r for n, r in rows.items() if n not in planned]


def pivot(rows: dict, args) -> list[dict]:
    """Exact match by training size (rows) and start (columns), with the best start of each size."""
    out = []
    for size in args.sizes:
        line = {"size": size}
        for start, name in [("scratch", f"scratch-{size}")] + [(s, f"synthetic-{s}-{size}") for s in args.styles]:
            if name in rows:
                line["train_images"] = rows[name]["train_images"]
                line[start] = rows[name]["exact_match"]
        scores = {k: v for k, v in line.items() if k in ("scratch", *args.styles) and v is not None}
        line["best"] = max(scores, key=scores.get) if scores else ""
        out.append(line)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_TEXT, help="captcha-v2 folder")
    parser.add_argument("--sizes", nargs="+", default=["100", "200", "all"], help="real training labels per row")
    parser.add_argument("--styles", nargs="+", choices=("captcha-lib", "project"), default=["captcha-lib"])
    parser.add_argument("--generated", type=int, default=2000, help="images in each generated pretraining set")
    parser.add_argument("--out", default="models/bench-text-synthetic")
    parser.add_argument("--only", nargs="+", default=None, help="rows to run (default all)")
    parser.add_argument("--rerun", nargs="+", default=[], help="run these rows again")
    parser.add_argument("--seed", type=int, default=0, help="split, subset, generator and training seed")
    parser.add_argument("--dry-run", action="store_true", help="print the split and the commands; write manifests")
    args = parser.parse_args()
    for size in args.sizes:
        if size != "all" and not (size.isdigit() and int(size) > 0):
            parser.error(f"--sizes takes positive numbers or 'all', got {size!r}")

    dataset, parts, subsets = real_splits(args.data, args.sizes, args.seed)
    gen = generator_settings(dataset, args)
    manifests = {
        size: write_manifest(args.data, dataset, parts, subsets[size], args.seed, manifest_path(args, size))
        for size in args.sizes
    }
    planned = plan(args, gen)
    unknown = sorted(set((args.only or []) + args.rerun) - set(planned))
    if unknown:
        parser.error(f"unknown rows {unknown}; planned: {list(planned)}")
    selected = set(args.only or planned)
    selected |= {f"pretrain-{planned[n][1]}" for n in selected if planned[n][0] == "finetune" and planned[n][1]}

    path = os.path.join(RESULTS, "text_synthetic.json" if args.seed == 0 else f"text_synthetic_seed{args.seed}.json")
    results = json.load(open(path)) if os.path.exists(path) else {"rows": []}
    rows = {r["set"]: r for r in results["rows"]}
    print(
        f"{args.data}: {len(dataset)} images; split {FRACTIONS} seed {args.seed}: "
        + ", ".join(f"{k} {len(v)}" for k, v in parts.items())
        + "; train subsets "
        + ", ".join(f"{s}: {len(v)}" for s, v in subsets.items())
    )
    pretrained_now = set()
    for name, (kind, style, size, commands) in planned.items():
        if name not in selected:
            continue
        text = command_text(commands)
        done = name in rows and name not in args.rerun and rows[name].get("command") == text  # same data and settings
        if kind == "pretrain":
            done = done and os.path.exists(os.path.join(pretrained(args, style), "model.keras"))
        elif style and f"pretrain-{style}" in pretrained_now:
            done = False
        if args.dry_run:
            print(f"{name} ({'done' if done else 'to run'}):\n  " + text.replace(" && ", "\n  "))
            pretrained_now |= set() if done else {name}
            continue
        if done:
            continue
        rows[name] = {**run_row(name, kind, style, size, commands, args, gen, text), "machine": machine()}
        pretrained_now |= {name} if kind == "pretrain" else set()
        os.makedirs(RESULTS, exist_ok=True)
        with open(path + ".tmp", "w") as f:
            json.dump({"rows": ordered(rows, planned)}, f, indent=2)
        os.replace(path + ".tmp", path)
        print(table([rows[name]], COLUMNS), flush=True)
    if args.dry_run:
        print("manifests:", ", ".join(manifests.values()))
        return
    print()
    print(table(ordered(rows, planned), COLUMNS))
    print()
    print(table(pivot(rows, args), ["size", "train_images", "scratch", *args.styles, "best"]))
    print("wrote", path)


if __name__ == "__main__":
    main()
