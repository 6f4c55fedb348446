"""Background tiles scored as objects: which they are, and what a bias toward ``other`` would cost.

    python benchmarks/background_tiles.py [--model tiles] [--run models/tiles-build/student]

The background false-positive rate of a tile model is the share of ``other`` tiles whose best object class scores
0.7 or more (calibrated probabilities). This script reads the shipped model (``--model``) on the validation and
test splits of the run that built it (``--run``), and writes

* the test split's background false positives as a contact sheet (each tile with the object class and score it
  got: ``benchmarks/results/background_tiles.png``), so a reader can see how many of them visibly hold that object
  (a mislabelled ``other`` tile is a false positive no model should avoid);
* one lever, post hoc: a bias ``b`` added to the ``other`` log-probability (the probabilities renormalised), each
  ``b`` of ``--biases`` scored on both splits: top-1, macro-F1, ``other`` F1 and the false-positive rate. The ``b``
  a user would store is the smallest whose *validation* rate is at or under ``--target`` (5%); its test figures
  are the honest ones.

Writes ``benchmarks/results/background_tiles.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import RESULTS, machine, table

COLUMNS = ["bias", "split", "top1", "macro_f1", "other_f1", "background_fpr"]


def other_biased(probs: np.ndarray, other: int, bias: float) -> np.ndarray:
    """``probs`` ``(N, C)`` with ``exp(bias)`` times the ``other`` probability, renormalised (a log-space bias)."""
    out = np.array(probs, dtype=np.float64)
    out[:, other] *= np.exp(bias)
    return out / out.sum(axis=1, keepdims=True)


def scores(probs: np.ndarray, labels: np.ndarray, class_names: list[str]) -> dict:
    from recaptcha_tf.evaluation.calibration import background_false_positive_rate
    from recaptcha_tf.evaluation.metrics import classification_report

    report = classification_report(probs, labels, class_names)
    return {
        "top1": round(report["top1"], 4),
        "macro_f1": round(report["macro_f1"], 4),
        "other_f1": round(report["per_class"]["other"]["f1"], 4),
        "background_fpr": round(background_false_positive_rate(probs, labels, class_names), 4),
    }


def false_positives(probs: np.ndarray, labels: np.ndarray, class_names: list[str], score: float) -> list[int]:
    """Indices of the ``other`` tiles whose best object class scores ``score`` or more."""
    other = class_names.index("other")
    objects = np.delete(probs, other, axis=1).max(axis=1)
    return [int(i) for i in np.flatnonzero((labels == other) & (objects >= score))]


def contact_sheet(paths: list[str], captions: list[str], path: str, columns: int = 6, tile: int = 120) -> str:
    from PIL import Image, ImageDraw

    rows = max(1, (len(paths) + columns - 1) // columns)
    sheet = Image.new("RGB", (columns * (tile + 10), rows * (tile + 25)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (image_path, caption) in enumerate(zip(paths, captions)):
        x, y = (k % columns) * (tile + 10), (k // columns) * (tile + 25)
        with Image.open(image_path) as image:
            sheet.paste(image.convert("RGB").resize((tile, tile)), (x, y))
        draw.text((x, y + tile + 3), caption, fill="black")
    sheet.save(path + ".tmp.png")
    os.replace(path + ".tmp.png", path)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiles", help="a shipped name or a .keras file")
    parser.add_argument("--run", default="models/tiles-build/student", help="the run whose splits are read")
    parser.add_argument("--biases", default="0,0.5,1,1.5,2,2.5,3", help="log-probability biases toward other")
    parser.add_argument("--target", type=float, default=0.05, help="the background false-positive rate sought")
    parser.add_argument("--score", type=float, default=0.7, help="an object score that counts as a false positive")
    parser.add_argument("--results", default=RESULTS)
    args = parser.parse_args(argv)

    import recaptcha_tf
    from recaptcha_tf.data.splits import load_manifest

    split = load_manifest(args.run)
    class_names = list(split.class_names)
    model = recaptcha_tf.load(args.model)
    if list(model.info.names) != class_names or "other" not in class_names:
        raise SystemExit(f"error: {args.model} does not read the classes of {args.run} (with other)")
    other = class_names.index("other")
    data = {}
    for subset in ("val", "test"):
        entries = list(split.subset(subset))
        probs = model.inference.outputs([p for p, _ in entries])
        data[subset] = ([p for p, _ in entries], probs, np.array([label for _, label in entries]))
    rows = []
    for bias in (float(b) for b in args.biases.split(",")):
        for subset, (_, probs, labels) in data.items():
            biased = other_biased(probs, other, bias)
            rows.append({"bias": bias, "split": subset, **scores(biased, labels, class_names)})
    meeting = [r["bias"] for r in rows if r["split"] == "val" and r["background_fpr"] <= args.target]
    chosen = min(meeting) if meeting else None
    paths, probs, labels = data["test"]
    found = false_positives(probs, labels, class_names, args.score)
    objects = [j for j in range(len(class_names)) if j != other]
    listing = []
    for i in found:
        best = objects[int(np.argmax(np.delete(probs[i], other)))]
        listing.append({"file": os.path.basename(paths[i]), "class": class_names[best], "score": float(probs[i, best])})
    os.makedirs(args.results, exist_ok=True)
    sheet = contact_sheet(
        [paths[i] for i in found],
        [f"{x['class']} {x['score']:.2f}" for x in listing],
        os.path.join(args.results, "background_tiles.png"),
    )
    payload = {
        "command": "python benchmarks/background_tiles.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "model": args.model,
        "test_other_tiles": int((labels == other).sum()),
        "test_false_positives": listing,
        "plot": os.path.relpath(sheet, os.path.dirname(args.results)),
        "target_fpr": args.target,
        "bias_meeting_target_on_val": chosen,
        "rows": rows,
    }
    print(table(rows, COLUMNS))
    print(f"{len(found)} of {payload['test_other_tiles']} test other tiles score >= {args.score} for an object;")
    print(f"smallest bias with validation rate <= {args.target}: {chosen}")
    path = os.path.join(args.results, "background_tiles.json")
    with open(path + ".tmp", "w") as f:
        json.dump(payload, f, indent=2)
    os.replace(path + ".tmp", path)
    print("wrote", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
