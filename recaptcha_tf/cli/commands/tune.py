"""``recaptcha-tf tune``: a Keras Tuner search, every trial logged to TensorBoard's HParams tab."""

from __future__ import annotations

import json
import sys

from recaptcha_tf.cli.errors import UsageError, _check_architecture, _check_charset, _check_split, _must_exist
from recaptcha_tf.cli.options import _Formatter, _model_kwargs, add_training_options, check_task_options

NAME = "tune"
TENSORFLOW = True

# Options `train` takes for some tasks only that a search applies to every task.
EVERY_TASK = ("optimizer",)


def add_parser(subparsers):
    p = subparsers.add_parser(
        NAME,
        formatter_class=_Formatter,
        help="Keras Tuner search (grid, random, hyperband, bayesian) logged to TensorBoard HParams",
        description="Searches optimizers, losses, activations, learning rates or architecture with Keras Tuner. "
        "Every trial appears in TensorBoard's HParams tab (tensorboard --logdir LOGDIR). Re-running "
        "the same command resumes a stopped search; --overwrite starts afresh. OUT gets results.csv/.md/"
        ".png and the best model (model.keras), which evaluate and predict accept. Distributed: set "
        "KERASTUNER_TUNER_ID (chief, tuner0, tuner1, ...), KERASTUNER_ORACLE_IP and "
        "KERASTUNER_ORACLE_PORT and run the same command on the chief and every worker.",
    )
    add_training_options(
        p,
        model={
            "help": "architecture name from the registry (`recaptcha-tf models`); default cnn (tiles, chars), "
            "crnn (text)"
        },
        out={"help": "search folder (state, results, best model); default models/tune-<name>"},
        logdir={
            "default": "logs/tune",
            "help": "TensorBoard root ('' to disable); trials go to LOGDIR/NAME/trial_<id>",
        },
        image_size={"help": "N or HxW; default 112 (tiles), 52x32 (chars), fitted to the images (text)"},
        grayscale={"help": "1-channel images (default for chars; text: --colour gray)"},
        overwrite={"help": "start afresh instead of resuming the search in --out"},
        epochs={"default": 8, "help": "epochs per trial (hyperband: the most any trial gets)"},
        learning_rate={"help": "peak learning rate when the space does not search it; default the task's"},
        optimizer={
            "choices": ("adam", "adamw", "nadam", "rmsprop", "sgd", "sgd+momentum"),
            "help": "optimizer when the space does not search it",
        },
        patience={"default": 3, "help": "early stopping per trial on the objective (0 disables)"},
        split={"help": "train/val/test fractions"},
        seed={"help": "split, shuffle, initialisation and tuner seed"},
        model_arg={"help": "fixed builder argument, JSON value (the space overrides it)"},
    )
    space = p.add_mutually_exclusive_group()
    space.add_argument(
        "--search",
        choices=("optimizers", "architecture"),
        default=None,
        help="built-in search space (optimizers when --space is not given either)",
    )
    space.add_argument("--space", default=None, help="YAML or JSON file mapping hyperparameters to lists of values")
    p.add_argument(
        "--tuner",
        choices=("grid", "random", "hyperband", "bayesian"),
        default="grid",
        help="grid runs every combination once",
    )
    p.add_argument(
        "--max-trials",
        type=int,
        default=None,
        help="cap on trials; default the whole grid (grid) or 10 (random, bayesian); not for hyperband",
    )
    p.add_argument(
        "--objective",
        default=None,
        help="tiles/chars: macro_f1 (default), accuracy or loss; text: cer (default), exact_match or loss "
        "(all on the validation split)",
    )
    p.add_argument(
        "--run-name",
        default=None,
        help="search name (its TensorBoard and tuner folder); default <task>-<space>-<tuner>",
    )
    p.add_argument("--name", default=None, help="deprecated (goes in 0.3.0): use --run-name, as train")
    p.add_argument(
        "--loss",
        default=None,
        help="loss when the space does not search it; default label_smoothed_crossentropy (ctc for crnn)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the validated space and grid size, then exit")
    return p


def check(args) -> None:
    from recaptcha_tf.data.detect import choose_task

    if args.name is not None:  # the old spelling, for one release
        if args.run_name is not None and args.run_name != args.name:
            raise UsageError("--name (deprecated) and --run-name both given; use --run-name.")
        print("warning: tune --name is deprecated and goes in 0.3.0; use --run-name, as train", file=sys.stderr)
        args.run_name = args.name
    if args.task is None:  # read from the data (one log line says how)
        _must_exist(args.data, "--data")
        args.task = choose_task(None, args.data)
    check_task_options(args, add_parser, args.task, f"--task {args.task}", every_task=EVERY_TASK)
    _check_architecture(args.model, args.task)
    _must_exist(args.data, "--data")
    if args.split:
        _check_split(args.split)
    _check_charset(args.charset)
    _model_kwargs(args.model_arg)


def run(args) -> int:
    from recaptcha_tf.tuning import grid_size, load_search_space

    space = args.space or args.search or "optimizers"
    if args.dry_run:
        import yaml

        parsed = load_search_space(space, args.task, args.model, args.image_size)
        print(yaml.safe_dump(parsed, sort_keys=False).rstrip())
        print(f"# {grid_size(parsed)} combinations")
        return 0
    from recaptcha_tf.tuning.search import run_search

    summary = run_search(
        args.data,
        task=args.task,
        space=space,
        tuner=args.tuner,
        model=args.model,
        max_trials=args.max_trials,
        epochs=args.epochs,
        patience=args.patience,
        objective=args.objective,
        logdir=args.logdir or None,
        name=args.run_name,
        out=args.out,
        overwrite=args.overwrite,
        seed=args.seed,
        image_size=args.image_size,
        grayscale=args.grayscale,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        optimizer=args.optimizer,
        loss=args.loss,
        fractions=args.split,
        augment=not args.no_augment,
        charset=args.charset,
        case=args.case,
        label_pattern=args.label_pattern,
        model_kwargs=_model_kwargs(args.model_arg),
        precision=args.precision,
        verbose=2,
        strategy=args.strategy,
    )
    if summary.get("results", {}).get("md"):
        with open(summary["results"]["md"]) as f:
            print("".join(f.readlines()[:14]))
    print(json.dumps(summary, indent=2, default=str))
    return 0
