"""``run_search``: what ``recaptcha-tf tune`` and notebooks call.

A search folder ``OUT`` receives::

    OUT/split.json              the data split (same format as a training run's)
    OUT/search_config.json      the space, tuner and settings (a re-run must match to resume)
    OUT/search/                 keras-tuner state: oracle.json, trial_<id>/ (checkpoint, trial.json)
    OUT/results.csv, .md, .png  every trial sorted by the objective; objective per trial and per value
    OUT/model.keras             the best trial's model (``evaluate`` / ``predict`` accept OUT)
    OUT/best_hyperparameters.json, OUT/test_report.json, OUT/summary.json

TensorBoard: ``LOGDIR/NAME`` holds the HParams experiment and ``LOGDIR/NAME/trial_<id>``
each trial's scalars and HParams session.
"""

from __future__ import annotations

import copy
import csv
import json
import logging
import math
import os
import shutil
import time
import warnings
from collections.abc import Sequence

from recaptcha_tf.tasks import get_task, task_defaults
from recaptcha_tf.tuning.spaces import (
    BUILTIN_SPACES,
    TuningError,
    grid_size,
    load_search_space,
    resolve_objective,
)
from recaptcha_tf.utils.run_folder import RunFolder

log = logging.getLogger("recaptcha_tf")

SEARCH_CONFIG = "search_config.json"
PROJECT = "search"
# A resumed search must agree with the stored one on these.
RESUME_KEYS = (
    "task", "model", "tuner", "space", "objective", "epochs", "image_size", "data", "channels", "resize", "batch_size",
    "learning_rate", "optimizer", "loss", "seed", "model_kwargs", "precision", "patience", "fractions", "augment",
    "charset", "case", "label_pattern",
)  # fmt: skip
# What a text search space's architecture values are checked against before the data fixes the input
# (fitted text inputs are 48 px high; their width follows the images' aspect ratio).
TEXT_SIZE_TO_CHECK = (48, 192)


def _space_name(space) -> str:
    if isinstance(space, str) and space in BUILTIN_SPACES and not os.path.exists(space):
        return space
    if isinstance(space, (str, os.PathLike)):
        return os.path.splitext(os.path.basename(os.fspath(space)))[0]
    return "custom"


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def results_table(oracle, project_dir: str, space: dict, objective: str, direction: str, metrics) -> list[dict]:
    """One row per trial, best first: hyperparameters, objective, metrics at the best epoch, epochs, seconds, worker."""
    from recaptcha_tf.tuning.hypermodel import TRIAL_INFO

    rows = []
    for order, trial_id in enumerate(oracle.start_order):
        trial = oracle.trials[trial_id]
        path = os.path.join(project_dir, f"trial_{trial_id}", TRIAL_INFO)
        info = json.load(open(path)) if os.path.exists(path) else {}
        row = {"trial": trial_id, "order": order + 1, "status": str(trial.status)}
        row.update({k: trial.hyperparameters.values.get(k) for k in space})
        if "tuner/epochs" in trial.hyperparameters.values:
            row["tuner/epochs"] = trial.hyperparameters.values["tuner/epochs"]
        row[objective] = float(trial.score) if _finite(trial.score) else None
        row.update({m: (info.get("metrics") or {}).get(m) for m in metrics if m != objective})
        row.update(
            {
                "epochs": info.get("epochs"),
                "best_epoch": info.get("best_epoch"),
                "seconds": info.get("seconds"),
                "worker": info.get("worker"),
            }
        )
        rows.append(row)
    sign = -1 if direction == "max" else 1
    rows.sort(key=lambda r: (r[objective] is None, sign * r[objective] if r[objective] is not None else 0, r["order"]))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows


def _columns(rows: list[dict]) -> list[str]:
    first = ["rank", "trial"]
    seen = [k for k in rows[0] if k not in first and k not in ("order",)] if rows else []
    return first + seen


def write_results(rows: list[dict], out: str, space: dict, objective: str, direction: str) -> dict[str, str]:
    """``results.csv``, ``results.md`` (sorted by the objective) and ``results.png`` in ``out``."""
    from recaptcha_tf.evaluation.plots import save_figure

    cols = _columns(rows)
    paths = {k: os.path.join(out, f"results.{k}") for k in ("csv", "md", "png")}
    with open(paths["csv"], "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)

    def fmt(v):
        return "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    with open(paths["md"], "w") as f:
        f.write(f"Objective: {objective} ({direction}), best first.\n\n" + "\n".join(lines) + "\n")
    save_figure(results_figure(rows, space, objective, direction), paths["png"])
    return paths


def results_figure(rows: list[dict], space: dict, objective: str, direction: str):
    """Objective per trial (in run order, best marked) and, per hyperparameter, objective per value."""
    import matplotlib.pyplot as plt
    import numpy as np

    scored = [r for r in rows if r.get(objective) is not None]
    n = 1 + len(space)
    cols = min(n, 3)
    fig, axes = plt.subplots(int(np.ceil(n / cols)), cols, figsize=(4.2 * cols, 3.2 * np.ceil(n / cols)), squeeze=False)
    axes = axes.ravel()
    ax = axes[0]
    by_order = sorted(scored, key=lambda r: r["order"])
    ax.plot([r["order"] for r in by_order], [r[objective] for r in by_order], "o-", ms=4, lw=0.8)
    if scored:
        best = scored[0]
        ax.plot([best["order"]], [best[objective]], "r*", ms=14, label=f"best: trial {best['trial']}")
        ax.legend(fontsize=8)
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set_xlabel("trial (run order)")
    ax.set_ylabel(objective)
    ax.set_title(f"{objective} per trial ({direction})")
    rng = np.random.default_rng(0)
    for ax, (key, values) in zip(axes[1:], space.items()):
        labels = [str(v) for v in values]
        for i, v in enumerate(values):
            ys = [r[objective] for r in scored if r.get(key) == v]
            if ys:
                ax.scatter(i + rng.uniform(-0.12, 0.12, len(ys)), ys, s=14, alpha=0.7)
                ax.plot([i - 0.25, i + 0.25], [max(ys) if direction == "max" else min(ys)] * 2, "k-", lw=2)
        ax.set_xticks(range(len(values)))
        ax.set_xticklabels(labels, rotation=30 if max(map(len, labels)) > 6 else 0, fontsize=8)
        ax.set_title(key)
        ax.set_ylabel(objective)
    for ax in axes[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def run_search(
    data: str,
    task: str = "tiles",
    space="optimizers",
    tuner: str = "grid",
    model: str | None = None,
    max_trials: int | None = None,
    epochs: int = 8,
    patience: int = 3,
    objective: str | None = None,
    logdir: str | None = "logs/tune",
    name: str | None = None,
    out: str | None = None,
    overwrite: bool = False,
    seed: int = 0,
    image_size: tuple[int, int] | None = None,
    grayscale: bool | None = None,
    resize: str | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    optimizer: str = "adam",
    loss: str | None = None,
    fractions="70/15/15",
    augment: bool = True,
    charset: str | None = None,
    case: str = "keep",
    label_pattern: str | None = None,
    model_kwargs: dict | None = None,
    precision: str = "auto",
    callbacks: Sequence = (),
    verbose: int = 0,
    evaluate_best: bool = True,
    strategy: str = "default",
) -> dict:
    """Run (or resume) a keras-tuner search over ``space`` for ``task`` on ``data``.

    Args:
        space: ``"optimizers"``, ``"architecture"``, a YAML/JSON file, or a dict of lists.
        tuner: ``"grid"`` (every combination once), ``"random"``, ``"hyperband"`` or ``"bayesian"``.
        model: registry model; default ``cnn`` (tiles, chars) or ``crnn`` (text).
        max_trials: cap on trials; default the whole grid (grid) or 10 (random, bayesian).
        epochs, patience: per trial, with early stopping on the objective (``patience=0`` disables).
        objective: ``macro_f1`` (default for tiles/chars), ``accuracy``, ``loss``, ``cer`` (default
            for text) or ``exact_match``; ``val_`` is implied.
        logdir, name: TensorBoard goes to ``logdir/name`` (HParams) and ``logdir/name/trial_<id>``.
        out: search folder; default ``models/tune-<name>``. Re-running with the same ``out``
            continues a stopped search; ``overwrite=True`` starts afresh.
        learning_rate, optimizer, loss: used when the space does not search them.
        model_kwargs: fixed builder arguments (the space overrides them).
        callbacks: extra Keras callbacks for every trial; keras-tuner deep-copies them per trial.
        strategy: ``tf.distribute`` strategy each trial trains under (:mod:`recaptcha_tf.training.distribute`);
            ``batch_size`` is per replica and learning rates scale with the replicas.

    Distributed: with ``KERASTUNER_ORACLE_IP``/``_PORT``/``KERASTUNER_TUNER_ID`` set, the
    ``chief`` process serves the oracle and writes the results when the workers are done;
    each worker runs trials and returns the list it ran.

    Returns:
        Summary: role, trial counts, the best trial's hyperparameters and objective, test metrics.
    """
    from recaptcha_tf.tuning.hypermodel import CaptchaHyperModel, prepare_task_data, write_experiment_config
    from recaptcha_tf.tuning.tuners import TUNERS, distributed_role, make_tuner, tuner_id

    if tuner not in TUNERS:
        raise TuningError(f"Unknown tuner {tuner!r}; choose from {list(TUNERS)}.")
    if epochs < 1:
        raise TuningError("--epochs must be at least 1.")
    if tuner == "hyperband" and epochs < 2:
        raise TuningError("Hyperband needs --epochs of at least 2 (its largest budget per trial).")
    if tuner == "hyperband" and max_trials:
        raise TuningError(
            "--max-trials does not apply to Hyperband: it budgets epochs (max_epochs=--epochs, "
            "factor 3). Leave --max-trials out or use another tuner."
        )
    d = task_defaults(task)
    model = model or get_task(task).tune_model
    # Text searches fit their input to the data as `train` does (None until then) unless --image-size is given.
    image_size = tuple(image_size or d["image_size"] or ()) or None
    channels = 1 if (grayscale if grayscale is not None else d["channels"] == 1) else 3
    resize = resize or d["resize"]
    colour = "gray" if grayscale else d.get("colour")  # text: --grayscale is `train --task text --colour gray`
    if get_task(task).sequence:
        channels, resize = None, None  # fitted to the data (colour map, resize), as `train --task text` does
    batch_size = batch_size or d["batch_size"]
    learning_rate = learning_rate or d["learning_rate"]
    from recaptcha_tf.training.distribute import get_strategy

    dist = get_strategy(strategy)
    replicas = dist.num_replicas_in_sync
    parsed = load_search_space(space, task, model, image_size or TEXT_SIZE_TO_CHECK)
    fixed = load_search_space({"optimizer": optimizer, **({"loss": loss} if loss else {})}, task, model)
    optimizer, loss = fixed["optimizer"][0], fixed.get("loss", [None])[0]
    objective, direction = resolve_objective(objective, task)
    metrics = list(dict.fromkeys([objective, *get_task(task).trial_metrics]))
    name = name or f"{task}-{_space_name(space)}-{tuner}"
    out = out or os.path.join("models", f"tune-{name}")
    run_logdir = os.path.join(logdir, name) if logdir else None
    role = distributed_role()
    try:
        copy.deepcopy(list(callbacks))
    except Exception as err:  # noqa: BLE001
        raise TuningError(
            f"Callbacks passed to a search must be deep-copyable (keras-tuner copies them for every trial): {err}"
        ) from None

    config = {
        "task": task,
        "model": model,
        "tuner": tuner,
        "space": parsed,
        "objective": objective,
        "direction": direction,
        "epochs": epochs,
        "patience": patience,
        "max_trials": max_trials,
        "image_size": image_size and list(image_size),
        "channels": channels,
        "resize": resize,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "optimizer": optimizer,
        "loss": loss,
        "seed": seed,
        "model_kwargs": model_kwargs or {},
        "precision": precision,
        "data": os.path.abspath(data),
        "logdir": run_logdir,
        "fractions": fractions,
        "augment": augment,
        "charset": charset,
        "case": case,
        "label_pattern": label_pattern,
    }
    config_path = os.path.join(out, SEARCH_CONFIG)
    if role != "worker":
        if overwrite:
            if os.path.exists(config_path) or os.path.isdir(os.path.join(out, PROJECT)):
                shutil.rmtree(out)
            if run_logdir:
                shutil.rmtree(run_logdir, ignore_errors=True)
        elif os.path.exists(config_path):
            with open(config_path) as f:
                stored = json.load(f)
            # keys an older search did not record are not compared
            changed = [k for k in RESUME_KEYS if k in stored and json.dumps(stored[k]) != json.dumps(config[k])]
            if changed:
                raise TuningError(
                    f"{out!r} holds a search with other {', '.join(changed)}; re-run the same "
                    "command to resume it, or pass --overwrite (or another --name/--out) to start afresh."
                )
            log.info("Resuming the search in %s", out)
        os.makedirs(out, exist_ok=True)
        with open(config_path, "w") as f:
            json.dump(config, f, indent=2)
    elif overwrite:
        log.warning("--overwrite is ignored on a distributed worker; only the chief starts afresh.")

    task_data = prepare_task_data(
        task,
        data,
        out,
        model,
        image_size,
        channels,
        resize,
        batch_size * replicas,
        fractions,
        seed,
        augment,
        charset,
        case,
        label_pattern,
        write_split=(role != "worker"),
        colour=colour,
    )
    project_dir = os.path.join(out, PROJECT)
    hypermodel = CaptchaHyperModel(
        task_data,
        parsed,
        objective,
        direction,
        metrics,
        epochs=epochs,
        patience=patience,
        learning_rate=learning_rate,
        optimizer=optimizer,
        loss=loss,
        model_kwargs=model_kwargs,
        logdir=run_logdir,
        project_dir=project_dir,
        precision=precision,
        seed=seed,
        verbose=verbose,
        learning_rate_scale=replicas,
    )
    if tuner == "grid":
        log.info(
            "Grid of %d combinations%s", grid_size(parsed), f" (capped at {max_trials} trials)" if max_trials else ""
        )
    kt_tuner = make_tuner(
        tuner,
        hypermodel,
        objective,
        direction,
        out,
        PROJECT,
        max_trials,
        epochs,
        seed,
        distribution_strategy=dist if replicas > 1 else None,
    )
    if run_logdir and role != "worker":
        write_experiment_config(run_logdir, parsed, metrics, objective)

    start = time.perf_counter()
    kt_tuner.search(callbacks=list(callbacks), verbose=verbose)
    seconds = time.perf_counter() - start

    if role == "worker":
        from recaptcha_tf.tuning.hypermodel import TRIAL_INFO

        mine = []
        for entry in sorted(os.listdir(project_dir)) if os.path.isdir(project_dir) else []:
            path = os.path.join(project_dir, entry, TRIAL_INFO)
            if os.path.exists(path):
                info = json.load(open(path))
                if info.get("worker") == tuner_id():
                    mine.append(info["trial_id"])
        return {"role": "worker", "tuner_id": tuner_id(), "trials": mine, "seconds": round(seconds, 1)}

    rows = results_table(kt_tuner.oracle, project_dir, parsed, objective, direction, metrics)
    paths = write_results(rows, out, parsed, objective, direction) if rows else {}
    completed = [r for r in rows if r[objective] is not None]
    summary = {
        "role": role,
        "out": out,
        "name": name,
        "tuner": tuner,
        "objective": objective,
        "direction": direction,
        "grid_size": grid_size(parsed),
        "trials": len(rows),
        "completed": len(completed),
        "search_seconds": round(seconds, 1),
        "results": paths,
        "logdir": run_logdir,
    }
    if not completed:
        raise TuningError(
            f"No trial of the search in {out!r} completed; see the trial errors above "
            "(keras-tuner logs them and marks the trials invalid)."
        )
    best_trial = kt_tuner.oracle.get_best_trials(1)[0]
    best_hp = {k: best_trial.hyperparameters.values[k] for k in parsed}
    with warnings.catch_warnings():  # the checkpoint's optimizer slots are not needed for inference
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        best_model = kt_tuner.load_model(best_trial)
    best_model.save(RunFolder(out).model)
    with open(os.path.join(out, "best_hyperparameters.json"), "w") as f:
        json.dump(
            {
                "trial": best_trial.trial_id,
                objective: float(best_trial.score),
                "hyperparameters": best_hp,
                "settings": {**hypermodel.defaults, **best_hp},
            },
            f,
            indent=2,
        )
    summary["best"] = {"trial": best_trial.trial_id, objective: float(best_trial.score), "hyperparameters": best_hp}
    if evaluate_best and task_data.n_test:
        from recaptcha_tf.evaluation.workflow import evaluate

        report = evaluate(out, data, subset="test", report=RunFolder(out).test_report)
        summary["test"] = {k: report[k] for k in get_task(task).report_keys if k in report}
    with open(RunFolder(out).summary, "w") as f:
        json.dump(summary, f, indent=2)
    return summary
