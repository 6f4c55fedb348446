"""Parity: an export and its Keras model on the same images, outputs and decisions compared."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np

from recaptcha_tf.data.images import is_image_file
from recaptcha_tf.export.convert import FLOAT_TOLERANCE, QUANTIZED_MIN_AGREEMENT
from recaptcha_tf.inference.artifacts import (
    ExportError,
    _uses_mixed_precision,
    inference_model,
    read_sidecar,
)
from recaptcha_tf.inference.outputs import output_kind
from recaptcha_tf.inference.runtimes import KerasRunner, _probabilities, decisions, load_images, load_runner
from recaptcha_tf.utils.progress import progress
from recaptcha_tf.utils.run_folder import RunFolder

PARITY_BATCH = 16  # images per call of each runner, so the parity check can show its progress

log = logging.getLogger("recaptcha_tf")


# --------------------------------------------------------------------------- parity


def list_images(paths: Sequence[str] | str) -> list[str]:
    """Image files under folders (recursively, sorted) or given directly."""
    out = []
    for path in [paths] if isinstance(paths, str) else paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                out += [os.path.join(root, f) for f in sorted(files) if is_image_file(f)]
        elif os.path.isfile(path):
            out.append(path)
        else:
            raise FileNotFoundError(f"No such image or folder: {path!r}.")
    return out


def run_images(model_path: str) -> list[str]:
    """The held-out test images of a training run (from ``RUN/split.json``), if they still exist."""
    from recaptcha_tf.data.splits import load_manifest
    from recaptcha_tf.inference.loading import resolve_model_path

    split_file = RunFolder(os.path.dirname(resolve_model_path(model_path))).split
    if not os.path.exists(split_file):
        return []
    split = load_manifest(split_file)  # paths resolved against the manifest's root, from any working directory
    found = []
    for subset in ("test", "val", "train"):
        found = [p for p, _ in split.subset(subset) if os.path.isfile(p) and is_image_file(p)]
        if found:
            return found
    return found


def _readable(files: list[str], channels: int) -> list[str]:
    """``files`` without the unreadable ones (corrupt, truncated, over the pixel limit), named in one warning."""
    from recaptcha_tf.data.images import find_undecodable, warn_skipped

    bad = set(find_undecodable(files, channels))
    if bad:
        warn_skipped([files[i] for i in sorted(bad)], what="unreadable parity image(s)")
        files = [f for i, f in enumerate(files) if i not in bad]
    if not files:
        raise ExportError(f"None of the {len(bad)} parity image(s) could be read; pass --data with readable images.")
    return files


def _sample(items: list, limit: int | None, seed: int = 0) -> list:
    if limit is None or len(items) <= limit:
        return list(items)
    idx = np.random.default_rng(seed).choice(len(items), size=limit, replace=False)
    return [items[i] for i in sorted(idx)]


def check_parity(
    model_path: str,
    artifact: str,
    sources: Sequence[str] | None = None,
    limit: int | None = 64,
    raw_limit: int = 8,
    tolerance: float | None = None,
    min_agreement: float | None = None,
    model=None,
) -> dict:
    """Compare an exported artifact with the Keras model on real images.

    Args:
        model_path: the run folder or ``.keras`` file the artifact came from.
        artifact: the exported artifact (its sidecar says the format).
        sources: image files or folders; default the run's test split (``split.json``).
        limit: at most this many images (seeded sample).
        raw_limit: this many of them are also fed at their original size, one by
            one, through the artifact's own resizing (``0`` to skip).
        tolerance: max abs difference allowed on probabilities for a float32
            export (default :data:`FLOAT_TOLERANCE`).
        min_agreement: decision agreement needed by a quantized export (default
            :data:`QUANTIZED_MIN_AGREEMENT`).

    Returns:
        ``n``, ``max_abs_diff`` (probabilities; softmax of CTC logits),
        ``max_abs_diff_raw_size``, ``agreement`` (top-1 / label-set / decoded-text
        agreement rate), ``text_agreement`` (text models), ``disagreements``
        (a few examples), ``tolerance``, ``min_agreement``, ``passed``,
        ``keras_mixed_vs_float32`` (when the model was trained in mixed precision).
    """
    from recaptcha_tf.inference.loading import load_model

    meta = read_sidecar(artifact)
    files = list_images(sources) if sources else run_images(model_path)
    if not files:
        raise ExportError(
            "No images for the parity check: the run's split.json images were not found; pass --data DIR."
        )
    files = _readable(_sample(files, limit), meta["channels"])
    model = model if model is not None else load_model(model_path)
    reference = KerasRunner(inference_model(model))
    runner = load_runner(artifact)
    kind = meta["kind"]
    images = load_images(files, meta)
    ref_parts, exp_parts = [], []
    for start in progress(range(0, len(images), PARITY_BATCH), desc="parity check", unit="batch"):
        ref_parts.append(reference(images[start : start + PARITY_BATCH]))
        exp_parts.append(runner(images[start : start + PARITY_BATCH]))
    ref_out, exp_out = np.concatenate(ref_parts), np.concatenate(exp_parts)
    if ref_out.shape != exp_out.shape:
        raise ExportError(f"Output shapes differ: Keras {ref_out.shape}, export {exp_out.shape}.")
    ref_p, exp_p = _probabilities(ref_out, kind), _probabilities(exp_out, kind)
    diff = float(np.max(np.abs(ref_p - exp_p)))
    ref_d, exp_d = decisions(ref_out, meta), decisions(exp_out, meta)
    agree = [a == b for a, b in zip(ref_d, exp_d)]
    report = {
        "format": meta["format"],
        "quantize": meta["quantize"],
        "n": len(files),
        "kind": kind,
        "max_abs_diff": diff,
        "mean_abs_diff": float(np.mean(np.abs(ref_p - exp_p))),
        "agreement": float(np.mean(agree)),
    }
    if output_kind(kind).sequence:
        report["text_agreement"] = report["agreement"]
    report["disagreements"] = [
        {"image": f, "keras": _jsonable(a), "export": _jsonable(b)}
        for f, a, b, ok in zip(files, ref_d, exp_d, agree)
        if not ok
    ][:10]
    raw_diffs = []
    if raw_limit:
        from recaptcha_tf.data.images import load_image_array

        for f in files[:raw_limit]:
            raw = load_image_array(f, meta["channels"]).astype(np.float32)[None]
            raw_diffs.append(np.max(np.abs(_probabilities(reference(raw), kind) - _probabilities(runner(raw), kind))))
        report["max_abs_diff_raw_size"] = float(np.max(raw_diffs))
    if _uses_mixed_precision(model):
        mixed = np.asarray(model.predict(images, verbose=0))
        report["keras_mixed_vs_float32"] = float(np.max(np.abs(_probabilities(mixed, kind) - ref_p)))
    if meta["quantize"]:
        report["min_agreement"] = QUANTIZED_MIN_AGREEMENT if min_agreement is None else min_agreement
        report["passed"] = report["agreement"] >= report["min_agreement"]
    else:
        report["tolerance"] = FLOAT_TOLERANCE if tolerance is None else tolerance
        worst = max([diff, *raw_diffs])
        report["passed"] = bool(worst <= report["tolerance"] and report["agreement"] == 1.0)
    return report


def _jsonable(decision):
    return list(decision) if isinstance(decision, tuple) else decision


def describe_parity(report: dict) -> str:
    """One human-readable line for the CLI."""
    what = (
        "text agreement"
        if "text_agreement" in report
        else ("label-set agreement" if report["kind"] == "sigmoid" else "top-1 agreement")
    )
    head = (
        f"parity on {report['n']} images: max |diff| {report['max_abs_diff']:.3g}"
        + (f" (original sizes {report['max_abs_diff_raw_size']:.3g})" if "max_abs_diff_raw_size" in report else "")
        + f", {what} {report['agreement']:.3f}"
    )
    if "tolerance" in report:
        rule = f"tolerance: max |diff| <= {report['tolerance']:g} on probabilities and full agreement"
    else:
        rule = f"quantized: {what} >= {report['min_agreement']:g} (max |diff| reported only)"
    verdict = "PASSED" if report["passed"] else "FAILED"
    extra = (
        f"; Keras mixed-precision vs float32 inference model: {report['keras_mixed_vs_float32']:.3g}"
        if "keras_mixed_vs_float32" in report
        else ""
    )
    return f"{head} -- {rule}: {verdict}{extra}"
