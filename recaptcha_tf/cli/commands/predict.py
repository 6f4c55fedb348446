"""``recaptcha-tf predict``: image files through a saved model (Keras, or its ONNX / TFLite export)."""

from __future__ import annotations

from recaptcha_tf.cli.errors import _check_model_path
from recaptcha_tf.cli.options import (
    _add_inference_runtime,
    _add_max_pixels,
    _add_min_confidence,
    _add_tta,
    _count,
    _Formatter,
)
from recaptcha_tf.cli.results import print_results

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
    _add_min_confidence(p)
    _add_inference_runtime(p)
    _add_max_pixels(p)
    return p


def check(args) -> None:
    args.model = _check_model_path(args.model)


def run(args) -> int:
    from recaptcha_tf.inference.abstention import abstention_top_k, apply_min_confidence, resolve_min_confidence
    from recaptcha_tf.inference.predictor import load_inference, predict

    inference = load_inference(args.model, args.runtime)
    threshold = resolve_min_confidence(args.min_confidence, getattr(inference.info, "min_confidence", None))
    results = predict(
        inference,
        args.images,
        top_k=abstention_top_k(args.top_k, threshold),
        beam_width=args.beam_width,
        errors="report",
        tta=args.tta,
    )
    apply_min_confidence(results, threshold, inference.info.names, args.top_k)
    return print_results(args.images, results, args.json, _line)


def _line(path: str, r: dict) -> str:
    if "text" in r:
        conf = " ".join(f"{c}:{p:.2f}" for c, p in zip(r["text"], r["confidence"]))
        mark = "" if r.get("accepted", True) else "\tnot accepted"
        return f"{path}\t{r['text']}\t{conf}{mark}"
    top = ", ".join(f"{n} {p:.3f}" for n, p in r["top_k"])
    mark = "\tabstained (no object class reached --min-confidence)" if r.get("abstained") else ""
    confidence = "-" if r["confidence"] is None else f"{r['confidence']:.3f}"
    return f"{path}\t{r['label']}\t{confidence}\t[{top}]{mark}"
