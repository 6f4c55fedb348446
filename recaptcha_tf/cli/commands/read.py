"""``recaptcha-tf read``: read text CAPTCHAs with no training, with the shipped universal reader (or any text model)."""

from __future__ import annotations

from recaptcha_tf.cli.errors import UsageError, _check_model_path
from recaptcha_tf.cli.options import _add_max_pixels, _Formatter, _probability
from recaptcha_tf.cli.results import print_results

NAME = "read"
TENSORFLOW = True
DEFAULT_MODEL = "universal"


def add_parser(subparsers):
    p = subparsers.add_parser(
        NAME,
        formatter_class=_Formatter,
        help="read text CAPTCHAs with no training (the shipped universal reader)",
        description="Prints each image's text and confidence (the product of its characters' probabilities). "
        "The universal reader reads 0-9a-z in lower case; fine-tune it on your own labels with "
        "`train --task text --weights universal`.",
    )
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="a text model: shipped model name, run folder or .keras file; default universal",
    )
    p.add_argument(
        "--min-confidence",
        type=_probability,
        default=None,
        help="mark readings below this confidence as not accepted ('?' in the text column); default: accept all "
        "(the evaluation report's abstention table shows what each threshold keeps and how often it is right)",
    )
    p.add_argument("--beam-width", type=int, default=0, help="CTC beam search width (0 = greedy)")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    _add_max_pixels(p)
    return p


def check(args) -> None:
    args.model = _check_model_path(args.model)


def run(args) -> int:
    from recaptcha_tf.inference.abstention import apply_min_confidence
    from recaptcha_tf.inference.predictor import load_inference, predict

    inference = load_inference(args.model)
    if inference.info.task != "text":
        raise UsageError(f"read takes a text model; {args.model!r} is a {inference.info.task} model (use predict).")
    results = predict(inference, args.images, beam_width=args.beam_width, errors="report")
    apply_min_confidence(results, args.min_confidence, inference.info.names)
    return print_results(args.images, results, args.json, _line)


def _line(path: str, r: dict) -> str:
    """``PATH  TEXT  CONFIDENCE``; an unsure reading shows ``?`` and, after it, what was read."""
    if r.get("accepted", True):
        return f"{path}\t{r['text']}\t{r['text_confidence']:.3f}"
    return f"{path}\t?\t{r['text_confidence']:.3f}\t({r['text']})"
