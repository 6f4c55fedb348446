"""``recaptcha-tf export``: a saved model to SavedModel, TFLite or ONNX, with a parity check against Keras."""

from __future__ import annotations

import os
import sys

from recaptcha_tf.cli.errors import _check_model_path, _check_writable, _must_exist
from recaptcha_tf.cli.options import _add_max_pixels, _count, _Formatter

NAME = "export"
TENSORFLOW = True


def add_parser(subparsers):
    p = subparsers.add_parser(
        NAME,
        formatter_class=_Formatter,
        help="export a saved model to SavedModel, TFLite or ONNX and check parity with Keras",
        description="Exports the float32 inference model (raw images of any size in, resizing "
        "inside) with a sidecar <artifact>.json (names, kind, threshold, task, size, "
        "channels, resize), then compares it with Keras on real images. A failed "
        "parity check exits with status 1.",
    )
    p.add_argument(
        "--model",
        required=True,
        help="run folder, .keras file, or a shipped model's name (`recaptcha-tf models`); a path that exists wins",
    )
    p.add_argument("--format", required=True, choices=("savedmodel", "tflite", "onnx"))
    p.add_argument(
        "--quantize",
        choices=("dynamic",),
        default=None,
        help="dynamic-range quantization (int8 weights; tflite and onnx)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="artifact path; default RUN/export/model[_dynamic]{_savedmodel,.tflite,.onnx} (a shipped model: "
        "export/NAME/ in the working folder, not inside the package)",
    )
    p.add_argument(
        "--data",
        nargs="*",
        default=None,
        help="images or folders for the parity check; default the run's test split (split.json)",
    )
    p.add_argument("--parity-images", type=_count(1), default=64, help="at most this many images in the parity check")
    p.add_argument(
        "--tolerance", type=float, default=1e-4, help="float32 exports: max abs difference allowed on probabilities"
    )
    p.add_argument(
        "--min-agreement",
        type=float,
        default=0.9,
        help="quantized exports: top-1 / label-set / decoded-text agreement required",
    )
    p.add_argument("--no-parity", action="store_true", help="skip the parity check")
    _add_max_pixels(p)
    return p


def check(args) -> None:
    given, args.model = args.model, _check_model_path(args.model)
    if args.out is None and given != args.model:  # a shipped model: never write into the installed package
        stem = "model" + (f"_{args.quantize}" if args.quantize else "")
        suffix = {"savedmodel": "_savedmodel", "tflite": ".tflite", "onnx": ".onnx"}[args.format]
        args.out = os.path.join("export", given, stem + suffix)
    if args.out:
        _check_writable(args.out, "--out")
    for path in args.data or []:
        _must_exist(path, "--data")


def run(args) -> int:
    """Export, write the sidecar, check parity, print; returns the exit status.

    0: exported and parity passed (or skipped); 1: parity failed; 2: the export cannot be made.
    The parity report is written to ``<artifact>.parity.json``.
    """
    from recaptcha_tf.export import (
        ExportError,
        artifact_size,
        check_parity,
        describe_parity,
        export_model,
        parity_path,
        sidecar_path,
        write_json,
    )
    from recaptcha_tf.inference.loading import load_model

    try:
        model = load_model(args.model)
        artifact = export_model(args.model, args.format, out=args.out, quantize=args.quantize, model=model)
    except ExportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"exported {artifact} ({artifact_size(artifact) / 1e6:.2f} MB); sidecar {sidecar_path(artifact)}")
    if args.no_parity:
        return 0
    try:
        report = check_parity(
            args.model,
            artifact,
            sources=args.data or None,
            limit=args.parity_images,
            tolerance=args.tolerance,
            min_agreement=args.min_agreement,
            model=model,
        )
    except ExportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    report_path = write_json(report, parity_path(artifact))
    print(describe_parity(report))
    if not report["passed"]:
        print(
            f"error: the {args.format} export does not agree with the Keras model (details: {report_path}); "
            "do not deploy it.",
            file=sys.stderr,
        )
        for d in report["disagreements"][:5]:
            print(f"  {d['image']}: keras {d['keras']!r}, export {d['export']!r}", file=sys.stderr)
        return 1
    return 0
