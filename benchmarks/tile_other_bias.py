"""A lever with no training: shift the shipped tile model's probability mass towards `other` after calibration, and
see what it buys on the background false-positive rate and what it costs on every other figure.

    python benchmarks/tile_other_bias.py [--model tiles] [--data ../shared/data/recaptcha-tiles] [--split SPLIT.json]

The model's probabilities are read at temperature 1 on the validation and test splits (the seeded 70/15/15 split
that ``train --task tiles --seed 0`` draws, which the shipped build trained on; or ``--split``), plain and with flip
TTA. The temperature is fitted on the validation split as every run's calibration fits it
(:func:`recaptcha_tf.evaluation.calibration.fit_temperature`); then, for each bias ``b`` of ``--biases``, ``b`` is
added to the `other` logit (``log p / T``) before the softmax: a prior shift towards the background class. Each bias
is scored on both splits: top-1, macro-F1, `other` F1 and the background false-positive rate (`other` tiles whose
best object class scores 0.7 or more). Two biases are picked on the validation split alone: the one with the best
macro-F1, and the smallest whose validation background rate is 5% or less; their test figures are what the lever
would ship. Writes ``benchmarks/results/tile_other_bias.json``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import DEFAULT_TILES, machine, table, write_results

COLUMNS = ["tta", "bias", "val_macro_f1", "val_background_fpr", "top1", "macro_f1", "other_f1", "background_fpr"]


def shift_towards(probs: np.ndarray, index: int, bias: float) -> np.ndarray:
    """``softmax(log probs + bias * onehot(index))``: class ``index``'s odds against every other class times
    ``exp(bias)``; the other classes' ratios unchanged. ``probs``: ``(N, C)``."""
    logits = np.log(np.clip(probs, 1e-12, 1.0))
    logits[:, index] += bias
    logits -= logits.max(axis=1, keepdims=True)
    shifted = np.exp(logits)
    return shifted / shifted.sum(axis=1, keepdims=True)


def class_f1(predicted: np.ndarray, labels: np.ndarray, index: int) -> float:
    tp = int(((predicted == index) & (labels == index)).sum())
    wrong = int(((predicted == index) != (labels == index)).sum())
    return 2 * tp / max(1, 2 * tp + wrong)


def scores(probs: np.ndarray, labels: np.ndarray, names: list[str], other: int) -> dict:
    from recaptcha_tf.evaluation.calibration import background_false_positive_rate
    from recaptcha_tf.evaluation.metrics import macro_f1

    predicted = probs.argmax(axis=1)
    return {
        "top1": float((predicted == labels).mean()),
        "macro_f1": macro_f1(predicted, labels),
        "other_f1": class_f1(predicted, labels, other),
        "background_fpr": background_false_positive_rate(probs, labels, names),
    }


def sweep(val: tuple, test: tuple, names: list[str], biases: list[float]) -> tuple[float, list[dict]]:
    """The fitted temperature and one row per bias; ``val``/``test``: ``(probabilities at temperature 1, labels)``."""
    from recaptcha_tf.evaluation.calibration import fit_temperature, rescale

    other = names.index("other")
    temperature = fit_temperature(val[0], val[1])
    rows = []
    for bias in biases:
        on_val = scores(shift_towards(rescale(val[0], temperature), other, bias), val[1], names, other)
        on_test = scores(shift_towards(rescale(test[0], temperature), other, bias), test[1], names, other)
        rows.append(
            {"bias": bias, "val_macro_f1": on_val["macro_f1"], "val_background_fpr": on_val["background_fpr"]} | on_test
        )
    return temperature, rows


def picked(rows: list[dict]) -> dict:
    """The biases chosen on the validation split alone: best macro-F1 (the smaller bias on a tie), and the smallest
    bias whose validation background rate is at most 5% (``None`` when none is)."""
    best = max(rows, key=lambda r: (r["val_macro_f1"], -r["bias"]))
    low = [r for r in rows if r["val_background_fpr"] <= 0.05]
    return {"best_val_macro_f1": best["bias"], "val_background_fpr_at_most_5pct": low[0]["bias"] if low else None}


def split_parts(data: str, split_path: str | None):
    from recaptcha_tf.data.folders import scan_class_folders
    from recaptcha_tf.data.splits import load_manifest, stratified_split

    if split_path:
        return load_manifest(split_path)
    found = scan_class_folders(data, channels=3)
    return stratified_split(found.paths, found.labels, found.class_names, (0.7, 0.15, 0.15), 0, root=data)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiles", help="a shipped name or a .keras tile classifier")
    parser.add_argument("--data", default=DEFAULT_TILES)
    parser.add_argument("--split", default=None, help="a split.json (default: the seeded split train draws)")
    parser.add_argument("--biases", default="0,0.25,0.5,0.75,1,1.25,1.5,1.75,2,2.25,2.5,2.75,3")
    parser.add_argument("--results", default=None, help="results folder (default benchmarks/results)")
    args = parser.parse_args(argv)

    from recaptcha_tf.inference.loading import load_model, resolve_model_path
    from recaptcha_tf.inference.predictor import predict_outputs
    from recaptcha_tf.models import label_names_layer

    net = load_model(resolve_model_path(args.model))
    layer = label_names_layer(net)
    names, shipped_temperature = list(layer.names), layer.temperature
    if "other" not in names:
        raise SystemExit(f"error: {args.model} has no `other` class to shift towards")
    layer.temperature = 1.0  # read the raw probabilities; the temperature is fitted below as calibration fits it
    split = split_parts(args.data, args.split)
    index = {name: i for i, name in enumerate(names)}
    parts = {}
    for part in ("val", "test"):
        entries = list(split.subset(part))
        labels = np.array([index[split.class_names[label]] for _, label in entries])
        parts[part] = [p for p, _ in entries], labels
    biases = [float(b) for b in args.biases.split(",")]
    rows, temperatures, choices = [], {}, {}
    for tta in ("none", "flip"):
        val = predict_outputs(net, parts["val"][0], tta=tta), parts["val"][1]
        test = predict_outputs(net, parts["test"][0], tta=tta), parts["test"][1]
        temperature, found = sweep(val, test, names, biases)
        temperatures[tta], choices[tta] = round(temperature, 4), picked(found)
        rows += [{"tta": tta, **row} for row in found]
        print(f"tta {tta}: temperature {temperature:.3f}, picked on validation: {choices[tta]}", flush=True)
    payload = {
        "benchmark": "tile_other_bias",
        "model": args.model,
        "shipped_temperature": shipped_temperature,
        "temperature": temperatures,
        "picked_on_validation": choices,
        "val_tiles": len(parts["val"][0]),
        "test_tiles": len(parts["test"][0]),
        "command": "python benchmarks/tile_other_bias.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
    }
    payload["table"] = table(rows, COLUMNS)
    path = write_results("tile_other_bias", payload, folder=args.results)
    print(payload["table"])
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
