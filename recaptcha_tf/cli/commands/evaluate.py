"""``recaptcha-tf evaluate``: a saved model on a data folder; the model's task does the evaluation."""

from __future__ import annotations

import json
import os

from recaptcha_tf.cli.errors import _check_model_path, _check_writable, _must_exist
from recaptcha_tf.cli.options import (
    _add_common_data,
    _add_max_pixels,
    _add_parquet_columns,
    _add_text_labels,
    _add_tta,
    _count,
    _Formatter,
    check_task_options,
)
from recaptcha_tf.utils.run_folder import RunFolder

NAME = "evaluate"
TENSORFLOW = True


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, formatter_class=_Formatter, help="evaluate a saved model on a data folder")
    p.add_argument(
        "--model",
        required=True,
        help="run folder, .keras file, or a shipped model's name (`recaptcha-tf models`); a path that exists wins",
    )
    _add_common_data(p, "class folders, text images, or Parquet")
    p.add_argument("--report", default=None, help="write the JSON report here (plots go beside it)")
    p.add_argument(
        "--subset",
        choices=("auto", "all", "train", "val", "test"),
        default="auto",
        help="auto: the run's test split if --data is its training data, else every image",
    )
    p.add_argument("--beam-width", type=int, default=0, help="text/CTC: beam search width (0 = greedy)")
    _add_text_labels(
        p,
        case_default=None,
        case_help="text: fold labels and readings to lower/upper case, or keep them (default: the run's own --case)",
    )
    p.add_argument("--labels", default=None, help="multi-label models: CSV 'path,labels' (default: class folders)")
    p.add_argument(
        "--allow-outside-data",
        action="store_true",
        help="multi-label CSV: accept absolute and ../ paths that point outside --data",
    )
    p.add_argument(
        "--challenges",
        type=_count(0),
        default=500,
        help="tiles: seeded 3x3 and 4x4 grids for the challenge-level score (0 skips it)",
    )
    _add_tta(p)
    p.add_argument(
        "--ensemble",
        nargs="+",
        default=[],
        metavar="MODEL",
        help="combine these runs with --model: tiles/chars average the probabilities (same classes); text: "
        "each run reads, and the text most runs read wins (ties: the most confident)",
    )
    _add_parquet_columns(p)
    _add_max_pixels(p)
    return p


def saved_task(path: str) -> str | None:
    """The task of the saved model at ``path`` (a run folder or ``.keras`` file), read from the ``LabelNames``
    layer in the file's ``config.json`` without TensorFlow; ``None`` where it cannot be read (the model's
    loading then says why)."""
    import zipfile

    file = RunFolder(path).model if os.path.isdir(path) else path
    try:
        with zipfile.ZipFile(file) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    found, stack = None, [config]
    while stack:  # the last LabelNames layer in the config, as inference.loading.model_info finds it
        item = stack.pop(0)
        if isinstance(item, dict):
            if item.get("class_name") == "LabelNames" and isinstance(item.get("config"), dict):
                found = item["config"].get("task", "tiles")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def check(args) -> None:
    from recaptcha_tf.tasks import task_names

    _must_exist(args.data, "--data")
    if args.labels:
        _must_exist(args.labels, "--labels")
    args.model = _check_model_path(args.model)
    args.ensemble = [_check_model_path(member, "--ensemble") for member in args.ensemble]
    task = saved_task(args.model)
    if task in task_names():
        check_task_options(args, add_parser, task, f"{args.model!r}, a {task} model")
    if args.report:
        _check_writable(args.report, "--report")


def run(args) -> int:
    from recaptcha_tf.evaluation.workflow import evaluate
    from recaptcha_tf.tasks import get_task, task_names

    result = evaluate(
        args.model,
        args.data,
        report=args.report,
        subset=args.subset,
        beam_width=args.beam_width,
        label_pattern=args.label_pattern,
        case=args.case,
        labels_csv=args.labels,
        challenges=args.challenges,
        image_column=args.image_column,
        label_column=args.label_column,
        allow_outside_data=args.allow_outside_data,
        tta=args.tta,
        ensemble=args.ensemble,
    )
    keys = [k for name in task_names() for k in get_task(name).report_keys]
    keys = [k for k in keys if k not in ("challenge", "ms_per_image")]
    shown = {k: result[k] for k in dict.fromkeys([*keys, "subset", "images_per_second"]) if k in result}
    if "challenge" in result:
        shown["challenge_solved"] = {g: r["solved"] for g, r in result["challenge"].items()}
    thresholded = result.get("calibration", {}).get("thresholded_challenge")
    if thresholded:  # grids picked by the model's stored challenge threshold
        shown["challenge_solved_at_threshold"] = {g: r["solved"] for g, r in thresholded.items()}
    print(json.dumps(shown, indent=2))
    return 0
