"""``recaptcha-tf predict``: image files through a saved model (Keras, or its ONNX / TFLite export)."""

from __future__ import annotations

import json
import sys

from recaptcha_tf.cli.errors import _check_model_path
from recaptcha_tf.cli.options import _add_inference_runtime, _add_max_pixels, _add_tta, _count, _Formatter

NAME = "predict"
TENSORFLOW = True


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, formatter_class=_Formatter, help="predict image files with a saved model")
    p.add_argument(
        "--model",
        required=True,
        help="run folder, .keras file (or an .onnx / .tflite export), or a shipped model's name "
        "(`recaptcha-tf models`); a path that exists wins",
    )
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--top-k", type=_count(1), default=3, help="classifiers: how many classes to list")
    p.add_argument("--beam-width", type=_count(0), default=0, help="text/CTC: beam search width (0 = greedy)")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    _add_tta(p)
    _add_inference_runtime(p)
    _add_max_pixels(p)
    return p


def check(args) -> None:
    args.model = _check_model_path(args.model)


def run(args) -> int:
    from recaptcha_tf.inference.predictor import load_inference, predict

    results = predict(
        load_inference(args.model, args.runtime),
        args.images,
        top_k=args.top_k,
        beam_width=args.beam_width,
        errors="report",
        tta=args.tta,
    )
    failed = 0
    for path, r in zip(args.images, results):
        if "error" in r:
            failed += 1
            print(f"error: {r['error']}", file=sys.stderr)
            if args.json:
                print(json.dumps({"image": path, **r}))
        elif args.json:
            print(json.dumps({"image": path, **r}))
        elif "text" in r:
            conf = " ".join(f"{c}:{p:.2f}" for c, p in zip(r["text"], r["confidence"]))
            print(f"{path}\t{r['text']}\t{conf}")
        else:
            top = ", ".join(f"{n} {p:.3f}" for n, p in r["top_k"])
            print(f"{path}\t{r['label']}\t{r['confidence']:.3f}\t[{top}]")
    if failed:
        print(f"error: {failed} of {len(results)} image(s) could not be read", file=sys.stderr)
        return 2
    return 0
