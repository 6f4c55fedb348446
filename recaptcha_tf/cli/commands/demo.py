"""``recaptcha-tf demo``: generate CAPTCHAs, train the CRNN, evaluate them (:mod:`recaptcha_tf.cli.demo`)."""

from __future__ import annotations

from recaptcha_tf.cli.options import _count, _Formatter

NAME = "demo"
TENSORFLOW = True


def add_parser(subparsers):
    p = subparsers.add_parser(
        NAME,
        formatter_class=_Formatter,
        help="generate ~5,000 CAPTCHAs, train the CRNN, evaluate on a held-out generated set",
    )
    p.add_argument("--out", default="demo_run", help="folder for generated data, model and reports")
    p.add_argument("--logdir", default="logs", help="TensorBoard root")
    p.add_argument(
        "--count", type=_count(10), default=5000, help="training CAPTCHAs to generate (500 more are held out)"
    )
    p.add_argument("--epochs", type=_count(1), default=None, help="CRNN epochs (default 12)")
    p.add_argument("--seed", type=int, default=0, help="generator and training seed")
    return p


def check(args) -> None:
    """Nothing to check before TensorFlow: the demo writes everything it reads."""


def run(args) -> int:
    from recaptcha_tf.cli.demo import run_demo

    run_demo(args.out, logdir=args.logdir, count=args.count, epochs=args.epochs, seed=args.seed)
    return 0
