"""Rebuild the shipped universal text reader (``recaptcha_tf/pretrained/universal``) from scratch.

    python tools/build_universal.py --work models/universal-build --minutes 60     # repeat until it says "shipped"

Each call does what is left, then stops:

1. pins the fonts: ``recaptcha_tf/pretrained/universal/fonts.txt`` (font file names; written from the installed
   fonts the first time, read afterwards, so a rebuild draws from the same list: install ``WILD_FONT_PACKAGES``);
2. generates ``--count`` ``wild`` CAPTCHAs (seeded) into ``WORK/data`` (skipped when they are there);
3. trains ``recaptcha-tf train --task text`` on them (lower case, 64x256, ``--steps`` optimizer steps) for at most
   ``--minutes`` of this call: the run is stopped after the last epoch that fits (or at the limit) and the next call
   resumes it from its last epoch;
4. once the run has finished, copies its model into the package, records its SHA-256 in the manifest and writes the
   figures of the run (``WORK/run/summary.json``) to ``WORK/build.json`` for the model card.

Never run two trainings at once on a small machine: each call trains.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

from _epochs import run_whole_epochs
from _ship import ship_run

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
SHIPPED = os.path.join(ROOT, "recaptcha_tf", "pretrained", "universal")
NAME, VERSION = "universal", "2"  # 2: 30,000 steps, 30% of images wave-warped (1: 10,000, none)


def cli(*args) -> list[str]:
    return [sys.executable, "-P", "-m", "recaptcha_tf", *args]


def pin_fonts(listing: str) -> list[str]:
    from recaptcha_tf.data.wild import wild_fonts

    if os.path.isfile(listing):
        return wild_fonts(listing=listing)
    fonts = wild_fonts()
    os.makedirs(os.path.dirname(listing), exist_ok=True)
    names = sorted({os.path.basename(f) for f in fonts})
    with open(listing + ".tmp", "w", encoding="utf-8") as f:
        f.write("# Font files the universal reader was trained on (recaptcha_tf.data.wild.WILD_FONT_PACKAGES)\n")
        f.write("\n".join(names) + "\n")
    os.replace(listing + ".tmp", listing)
    return wild_fonts(listing=listing)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="models/universal-build", help="working folder (data, run)")
    parser.add_argument("--count", type=int, default=30000, help="wild CAPTCHAs to train on")
    parser.add_argument("--steps", type=int, default=30000, help="optimizer steps of the whole run")
    parser.add_argument("--image-size", default="64x256", help="the network's input, HEIGHTxWIDTH")
    parser.add_argument("--minutes", type=float, default=60, help="training minutes of this call (then resume)")
    parser.add_argument("--seed", type=int, default=35)
    parser.add_argument("--warp", type=float, default=0.3, help="share of images bent along a wave (v1: 0)")
    parser.add_argument("--shipped", default=SHIPPED, help="where the model goes (the package's pretrained/universal)")
    parser.add_argument("--card-only", action="store_true", help="only write MODEL_CARD.md from the figures")
    args = parser.parse_args(argv)
    shipped = os.path.abspath(args.shipped)
    if args.card_only:
        print("wrote", write_card(args.work, shipped))
        return 0

    listing = os.path.join(shipped, "fonts.txt")
    fonts = pin_fonts(listing)
    print(f"fonts: {len(fonts)} pinned in {listing}", flush=True)
    data, run = os.path.join(args.work, "data"), os.path.join(args.work, "run")
    done = os.path.join(args.work, "data.done")
    if not os.path.isfile(done):
        start = time.time()
        shutil.rmtree(data, ignore_errors=True)
        subprocess.run(
            cli("generate", "--style", "wild", "--out", data, "--count", str(args.count), "--seed", str(args.seed),
                "--fonts", listing, "--warp", str(args.warp), "-q"),
            check=True,
        )  # fmt: skip
        with open(done, "w") as f:
            seconds = round(time.time() - start, 1)
            json.dump({"count": args.count, "seed": args.seed, "warp": args.warp, "seconds": seconds}, f)
    train = cli(
        "train", "--task", "text", "--data", data, "--out", run, "--logdir", "logs", "--run-name", "universal",
        "--case", "lower", "--charset", "a-z0-9", "--image-size", args.image_size, "--steps", str(args.steps),
        "--time-budget", "0", "--seed", "0", "--json",
    )  # fmt: skip
    print("$", " ".join(train[2:]), flush=True)
    start = time.time()
    run_whole_epochs(train, args.minutes * 60, os.path.join(run, "history.csv"))  # stops between epochs
    sessions = os.path.join(args.work, "sessions.json")
    history = json.load(open(sessions)) if os.path.isfile(sessions) else []
    history.append(
        {"started": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start)), "minutes": (time.time() - start) / 60}
    )
    with open(sessions, "w") as f:
        json.dump(history, f, indent=2)
    summary_path = os.path.join(run, "summary.json")
    if not os.path.isfile(summary_path):
        print(f"training paused after {history[-1]['minutes']:.1f} minutes; run the same command to resume")
        return 0
    ship_run(
        run,
        shipped,
        NAME,
        VERSION,
        task="text",
        description="CRNN+CTC reader of unseen text CAPTCHA designs (lower case, 0-9a-z, 3-8 characters), trained "
        "on wild-style synthetic CAPTCHAs",
    )
    summary = json.load(open(summary_path))
    build = {"summary": summary, "sessions": history, "training_minutes": sum(s["minutes"] for s in history)}
    with open(os.path.join(args.work, "build.json"), "w") as f:
        json.dump(build, f, indent=2)
    print(f"shipped {NAME} v{VERSION}: test exact match {summary.get('test', {}).get('exact_match')}")
    return 0


CARD = """# universal v{version}: a text CAPTCHA reader for designs it has never seen

**Task:** text. **Reads:** `0-9a-z`, in lower case (score case-insensitively), 3-8 characters. **Input:** any image;
the model resizes it to 64x256 and maps ink against each image's own background (`InkMap`), so any text or
background colour works. **File:** `model.keras` ({megabytes:.1f} MB, float32), SHA-256 in `../manifest.json`.

## Training

- **Data:** {count:,} CAPTCHAs of `recaptcha-tf generate --style wild --seed {seed} --warp {warp} --fonts fonts.txt`
  (the {fonts} font files listed in `fonts.txt`, from Debian's `fonts-*` packages in `WILD_FONT_PACKAGES`: SIL OFL, GPL
  with the font exception, Apache 2.0, LPPL/GUST, Bitstream Vera and public-domain fonts; the fonts are not
  redistributed). No real CAPTCHA and no benchmark set was used to train or tune it.
- **Recipe:** `recaptcha-tf train --task text --case lower --charset a-z0-9 --image-size 64x256 --steps {steps_planned}
  --time-budget 0 --seed 0` (the CRNN+CTC defaults otherwise): {steps} steps in {minutes:.0f} minutes of training on
  {cpu} ({sessions} resumed calls of `tools/build_universal.py`).
- **Held-out wild images** (in distribution, {test_n} images): exact match {wild_exact:.3f}, CER {wild_cer:.3f}.

## Zero-shot figures

{zero_shot}

CPU latency: {latency} ms an image, one image at a time (`benchmarks/universal.py`, {cpu}).

## Rebuild

`python tools/build_universal.py --work models/universal-build --minutes 60` (`--steps 30000 --warp 0.3` by
default), repeated until it says "shipped"
(install `WILD_FONT_PACKAGES` first), then `python benchmarks/universal.py` and
`python tools/build_universal.py --work models/universal-build --card-only` for this card.

## Limits

Lower case only; characters outside `0-9a-z` are read as their nearest look-alikes. Designs far from printed text
(3-D, heavy warping, overlapping glyphs) read poorly with no training: fine-tune with `--weights universal` on your
own labels (`benchmarks/label_curve.py` measures how many it takes). For research on CAPTCHA robustness only.
"""


def write_card(work: str, shipped: str) -> str:
    """MODEL_CARD.md from ``WORK/build.json`` and ``benchmarks/results/universal.json``."""
    build = json.load(open(os.path.join(work, "build.json")))
    results_path = os.path.join(ROOT, "benchmarks", "results", "universal.json")
    results = json.load(open(results_path)) if os.path.isfile(results_path) else {"rows": [], "machine": {}}
    summary, config = build["summary"], json.load(open(os.path.join(work, "run", "config.json")))
    test = summary.get("test", {})
    groups = {}
    for row in results["rows"]:
        groups.setdefault(row["origin"], []).append(row)
    lines = []
    for origin, rows in groups.items():
        lines.append(f"**{origin}** (each set's default test split, case-insensitive):\n")
        lines.append("| set | images | exact match | CER | kept at 99% precision |\n|---|---|---|---|---|")
        lines += [
            f"| {r['set']} | {r['test_n']} | {r['exact_match']:.3f} | {r['cer']:.3f} | {r['coverage_at_99']:.0%} |"
            for r in rows
        ]
        lines.append("")
    data = json.load(open(os.path.join(work, "data.done")))
    text = CARD.format(
        version=VERSION,
        megabytes=os.path.getsize(os.path.join(shipped, "model.keras")) / 1e6,
        count=data["count"],
        seed=data["seed"],
        warp=data.get("warp", 0.0),
        fonts=sum(1 for line in open(os.path.join(shipped, "fonts.txt")) if line.strip() and not line.startswith("#")),
        steps_planned=config["epochs"] * config["steps_per_epoch"],
        steps=summary.get("steps"),
        minutes=build["training_minutes"],
        cpu=results.get("machine", {}).get("cpu", "2 CPU cores"),
        sessions=len(build["sessions"]),
        test_n=test.get("n", 0),
        wild_exact=test.get("exact_match", float("nan")),
        wild_cer=test.get("cer", float("nan")),
        zero_shot="\n".join(lines) or "(run `python benchmarks/universal.py`)",
        latency=results.get("cpu_ms_per_image"),
    )
    path = os.path.join(shipped, "MODEL_CARD.md")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    return path


if __name__ == "__main__":
    sys.exit(main())
