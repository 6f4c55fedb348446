"""``recaptcha-tf serve``: the Gradio demo (tiles, text CAPTCHAs, grid challenges) and its HTTP route."""

from __future__ import annotations

import os

from recaptcha_tf.cli.errors import UsageError, _check_model_path, _check_port
from recaptcha_tf.cli.options import _add_inference_runtime, _count, _Formatter

NAME = "serve"
TENSORFLOW = True


def add_parser(subparsers):
    p = subparsers.add_parser(
        NAME,
        formatter_class=_Formatter,
        help="Gradio demo: tiles, text CAPTCHAs and 3x3/4x4 grid challenges",
        description="Uploads are validated (size in bytes and pixels, image content) before TensorFlow sees them.",
    )
    p.add_argument("--model", required=True, help="run folder or .keras file")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    p.add_argument("--port", type=_count(0), default=7860)
    p.add_argument("--max-bytes", type=_count(1), default=5_000_000, help="largest upload in bytes")
    p.add_argument(
        "--max-pixels", type=_count(1), default=4096 * 4096, help="largest upload in pixels (width x height)"
    )
    _add_inference_runtime(p)
    p.add_argument("--max-batch-size", type=_count(1), default=32, help="most concurrent images per model call")
    p.add_argument(
        "--batch-wait-ms", type=float, default=2.0, help="how long a request waits for others to join its micro-batch"
    )
    p.add_argument(
        "--decode-budget",
        type=_count(1),
        default=2 * 4096 * 4096,
        help="decoded pixels in flight across all requests; more wait, then get 503 (bounds memory in a burst)",
    )
    p.add_argument(
        "--examples",
        metavar="DIR",
        default=None,
        help="sample images shown as thumbnails: DIR/tiles/<class>/*.png for classifiers, DIR/text/*.png (named by "
        "their text) for text models (default: the checkout's samples/ folder, if there is one)",
    )
    p.add_argument("--example-count", type=_count(0), default=8, help="most sample thumbnails shown (0 for none)")
    p.add_argument(
        "--api-key",
        default=None,
        help="require this key: at the demo's login page and in 'Authorization: Bearer KEY' on the HTTP route "
        "(also read from RECAPTCHA_TF_API_KEY)",
    )
    return p


def before_tensorflow(args) -> None:
    """Memory settings that must come before TensorFlow starts its threads (benchmarks/serve_memory.py):

    * oneDNN's own memory pool keeps what a large upload's decode and resize took (about 250 MB after one
      4096x4096 image, never returned); with the system allocator it goes back after the request;
    * two heap arenas, so that memory freed by many request threads can be returned at all.

    A variable the user set wins.
    """
    from recaptcha_tf.serving.budget import limit_heap_arenas

    os.environ.setdefault("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "1")
    if "MALLOC_ARENA_MAX" not in os.environ:
        limit_heap_arenas(2)


def check(args) -> None:
    _check_model_path(args.model)
    _check_port(args.host, args.port)
    if args.examples is not None and not os.path.isdir(args.examples):
        raise UsageError(f"--examples {args.examples!r} is not a folder (it should hold tiles/<class>/ or text/).")


def run(args) -> int:
    from recaptcha_tf.serving.app import serve

    serve(
        args.model,
        host=args.host,
        port=args.port,
        max_bytes=args.max_bytes,
        max_pixels=args.max_pixels,
        runtime=args.runtime,
        max_batch_size=args.max_batch_size,
        batch_wait_ms=args.batch_wait_ms,
        decode_budget=args.decode_budget,
        api_key=args.api_key or os.environ.get("RECAPTCHA_TF_API_KEY") or None,
        samples_dir=args.examples,
        samples=args.example_count,
    )
    return 0
