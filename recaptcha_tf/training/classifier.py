"""Training a tile or character classifier: ``recaptcha-tf train --task tiles|chars`` and the notebooks.

The order inside a training run is fixed: split first (manifest written next to the run), then optional
balancing of the training split only, then the tf.data pipeline, model, callbacks and fit, and finally an
evaluation of the best checkpoint on the held-out test split. Re-running the same call resumes the run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np

from recaptcha_tf.data.folders import DatasetError, scan_class_folders
from recaptcha_tf.data.sources import same_folder
from recaptcha_tf.data.splits import (
    MANIFEST_NAME,
    Split,
    load_manifest,
    require_files,
    save_manifest,
    stratified_split,
)
from recaptcha_tf.evaluation.workflow import evaluate
from recaptcha_tf.models.precision import precision_policy
from recaptcha_tf.tasks import get_task, task_defaults
from recaptcha_tf.tasks.objectives import training_objective
from recaptcha_tf.training.phases import (
    TrainingConfigError,
    fit_run,
    is_chief_process,
    phase_settings,
    positive_or_default,
    set_up_distribution,
    shard_dataset,
    sync_batchnorm,
)
from recaptcha_tf.training.run_folder import finish_run, finished_summary
from recaptcha_tf.training.step_time import (
    epochs_within,
    replanned_epochs,
    seconds_per_batch_read,
    seconds_per_step,
    stored_measurement,
    time_budget_minutes,
)
from recaptcha_tf.utils.run_folder import RunFolder, write_json

log = logging.getLogger("recaptcha_tf")


def prepare_folder_split(
    data: str,
    out_dir: str,
    split_path: str | None = None,
    fractions="70/15/15",
    seed: int = 0,
    channels: int = 3,
    balance_per_class: int | None = None,
    balance_cap: int | None = None,
    balanced_dir: str | None = None,
    balance_up_to: int = 0,
) -> Split:
    """The split of a class-folder dataset for a run, reused when the run resumes.

    Precedence: an explicit manifest (``split_path``); the run's own manifest
    (resuming ``out_dir``); a manifest inside ``data`` (a folder written by
    ``recaptcha-tf balance``); otherwise a new stratified split of ``data``.
    Balancing oversamples the training split only, into ``balanced_dir``
    (default ``out_dir/balanced_images``): to ``balance_per_class`` images per
    class when given, else, with ``balance_up_to``, every class smaller than
    ``min(balance_up_to, largest class)`` to that size (nothing when no class is
    smaller, or when the split is already balanced).
    """
    own = os.path.join(out_dir, MANIFEST_NAME)
    if split_path:
        split = require_files(load_manifest(split_path), split_path)
    elif os.path.exists(own):
        split = require_files(load_manifest(own), own)
        if split.extra.get("data") and not same_folder(split.extra["data"], data):
            raise DatasetError(
                f"{out_dir!r} holds a run on {split.extra['data']!r}, not {data!r}. "
                "Use another --out, or --overwrite to start afresh."
            )
        log.info("Resuming with the split in %s", own)
        return split
    elif os.path.exists(os.path.join(data, MANIFEST_NAME)):
        split = require_files(load_manifest(data), os.path.join(data, MANIFEST_NAME))
        log.info(
            "Using the split recorded in %s (train: %d, val: %d, test: %d)",
            data,
            len(split.train),
            len(split.val),
            len(split.test),
        )
    else:
        ds = scan_class_folders(data, channels=channels)
        if len(ds.class_names) < 2:
            raise DatasetError(
                f"{data!r} has one class ({ds.class_names[0]!r}); a classifier needs at least two "
                "class folders (with one, every prediction is right by construction)."
            )
        split = stratified_split(ds.paths, ds.labels, ds.class_names, fractions, seed, root=data)
    if not balance_per_class and balance_up_to and "balanced" not in split.extra:
        counts = split.counts()["train"]
        target = min(int(balance_up_to), max(counts))
        if min(counts) < target:
            balance_per_class = target
            log.info(
                "Balancing: oversampling the training classes smaller than %d images to %d "
                "(--balance 0 turns this off).",
                target,
                target,
            )
    if balance_per_class:
        from recaptcha_tf.data.balance import balance_split

        balanced_dir = balanced_dir or os.path.join(out_dir, "balanced_images")
        split = balance_split(split, balanced_dir, per_class=balance_per_class, cap=balance_cap, seed=seed)
    split.extra["data"] = os.path.abspath(data)
    save_manifest(split, own)
    return split


def _sample_indices(labels: Sequence, count: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(len(labels), size=min(count, len(labels)), replace=False).tolist())


def prepare_multilabel_split(
    data: str,
    out_dir: str,
    labels_csv: str | None,
    split_path: str | None = None,
    fractions="70/15/15",
    seed: int = 0,
    channels: int = 3,
    allow_outside_data: bool = False,
) -> Split:
    """The split of a multi-label dataset (CSV manifest, or class folders as single labels), reused on resume.

    CSV paths must lie inside ``data`` unless ``allow_outside_data``."""
    from recaptcha_tf.data.multilabel import folder_as_multilabel, multilabel_split, read_label_csv

    own = os.path.join(out_dir, MANIFEST_NAME)
    if split_path or os.path.exists(own):
        split = require_files(load_manifest(split_path or own), split_path or own)
        if not split.extra.get("multi_label"):
            raise DatasetError(f"{split_path or own} is a single-label split; a multi-label run needs its own --out.")
        return split
    if labels_csv:
        paths, label_lists, class_names = read_label_csv(
            labels_csv, root=data, channels=channels, allow_outside=allow_outside_data
        )
    else:
        paths, label_lists, class_names = folder_as_multilabel(data, channels=channels)
    split = multilabel_split(paths, label_lists, class_names, fractions, seed, root=data)
    split.extra["data"] = os.path.abspath(data)
    if labels_csv:
        split.extra["labels"] = os.path.abspath(labels_csv)
    save_manifest(split, own)
    return split


def _timed_epochs(
    net,
    loss,
    train_ds,
    out: str,
    settings: dict,
    max_epochs: int,
    freeze_epochs: int,
    unfreeze,
    steps: int,
    validation_steps: int,
    minutes: float,
) -> dict:
    """A transfer recipe's epochs cut to what takes at most ``minutes`` of training here: reading a batch of
    ``train_ds``, one step of ``net`` as phase 2 trains it (``unfreeze``: BatchNorm frozen) and one with the
    backbone frozen are timed (or taken from an earlier session of the run in ``out`` with the same ``settings``).
    Leaves the backbone frozen when ``freeze_epochs`` (phase 1 freezes it anyway).

    Returns:
        ``{"epochs", "step_seconds", "frozen_step_seconds", "read_seconds", "time_budget_minutes"}``.
    """
    from recaptcha_tf.models.finetune import freeze_backbone, unfreeze_backbone
    from recaptcha_tf.models.registry import model_blocks

    # rounded as config.json stores them, so that a resumed run computes the very same epochs
    keys = ("read_seconds", "step_seconds", "frozen_step_seconds")
    timing = {key: stored_measurement(out, key, **settings) for key in keys}
    if timing["read_seconds"] is None:
        timing["read_seconds"] = round(seconds_per_batch_read(train_ds), 4)
    if timing["step_seconds"] is None:
        if freeze_epochs:  # phase 2 as fit_in_phases sets it up: BatchNorm frozen, all or the top blocks trainable
            unfreeze_backbone(net, unfreeze, blocks=model_blocks(settings["model"]))
        timing["step_seconds"] = round(seconds_per_step(net, loss, train_ds), 4)
    if freeze_epochs:
        freeze_backbone(net)
    if timing["frozen_step_seconds"] is None:
        timing["frozen_step_seconds"] = (
            round(seconds_per_step(net, loss, train_ds), 4) if freeze_epochs else timing["step_seconds"]
        )
    step_seconds, frozen_step_seconds = timing["step_seconds"], timing["frozen_step_seconds"]
    epochs = epochs_within(
        max_epochs,
        freeze_epochs,
        steps,
        validation_steps,
        frozen_step_seconds,
        step_seconds,
        minutes,
        timing["read_seconds"],
    )
    log.log(
        logging.WARNING if epochs < max_epochs else logging.INFO,
        "%d of the recipe's %d epochs fit --time-budget %g minutes here (%.3f s a step, %.3f s frozen, %d steps "
        "an epoch, %.3f s to produce a batch)%s",
        epochs,
        max_epochs,
        minutes,
        step_seconds,
        frozen_step_seconds,
        steps,
        timing["read_seconds"],
        "; --epochs N runs exactly N" if epochs < max_epochs else "",
    )
    return dict(epochs=epochs, **timing, time_budget_minutes=minutes)


def train_classifier(
    data: str,
    out: str = "models/run",
    task: str = "tiles",
    model: str | None = None,
    image_size: tuple[int, int] | None = None,
    grayscale: bool | None = None,
    resize: str | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    optimizer: str = "adam",
    label_smoothing: float | None = None,
    patience: int | None = None,
    split: str | None = None,
    fractions="70/15/15",
    seed: int = 0,
    balance_per_class: int | None = None,
    balance_cap: int | None = None,
    balanced_dir: str | None = None,
    class_weight: str = "none",
    augment: bool = True,
    mix: str = "none",
    cache: bool | str = True,
    logdir: str | None = "logs",
    run_name: str | None = None,
    model_kwargs: dict | None = None,
    callbacks: Sequence = (),
    precision: str = "auto",
    weights: str | None = None,
    freeze_epochs: int | None = None,
    unfreeze: int | str | None = None,
    fine_tune_learning_rate: float | None = None,
    multi_label: bool = False,
    labels_csv: str | None = None,
    threshold: float = 0.5,
    strategy: str = "default",
    allow_outside_data: bool = False,
    time_budget: float | None = None,
) -> dict:
    """Train a tile or character classifier on a class-folder dataset (or a multi-label CSV).

    Re-running the same call with the same ``out`` resumes an interrupted run
    (BackupAndRestore) with the same split, in either fine-tuning phase.

    Args:
        balance_per_class: oversample every training class to this many images with Augmentor
            (into ``balanced_dir``, default ``out/balanced_images``); ``0`` turns balancing off;
            ``None`` takes the task's default (tiles: classes smaller than ``min(500, largest class)``
            are oversampled to it; single-label runs without ``class_weight`` only).
        mix: ``"mixup"`` or ``"cutmix"`` blends pairs of training images and their labels
            (Keras's MixUp / CutMix layers, after the other augmentation); ``"none"``.
        label_smoothing: cross-entropy label smoothing (default 0.1, or the model's recipe's).
        weights: backbone weights: ``None``, ``"imagenet"``, a local ``.weights.h5`` file, or for
            keras-hub models a preset name or preset folder. With weights, the model's registered
            transfer recipe (:func:`recaptcha_tf.models.pretrained_recipe`: image size, epochs,
            phases, learning rates, batch size, label smoothing) replaces the task's defaults for
            every argument left ``None``.
        freeze_epochs: epochs of phase 1 (backbone frozen, head trained at ``learning_rate``);
            default 3 with pretrained ``weights`` (or the recipe's), else 0 (one phase).
        unfreeze: phase 2 unfreezes ``"all"`` of the backbone or its top N blocks (default ``"all"``
            or the recipe's).
        fine_tune_learning_rate: peak learning rate of phase 2 (default ``learning_rate / 10``
            after a frozen phase).
        multi_label: sigmoid head with binary cross-entropy; labels from ``labels_csv``
            (``path,labels`` with ``;``-separated labels) or, without it, the class folders.
        threshold: sigmoid decision threshold stored in the model.
        allow_outside_data: accept ``labels_csv`` paths outside ``data`` (absolute or ``../``).
        strategy: ``tf.distribute`` strategy (:mod:`recaptcha_tf.training.distribute`); ``batch_size``
            is per replica and the learning rates scale with the number of replicas.
        time_budget: minutes of training a transfer recipe's epochs may take on this machine (default the
            recipe's ``time_budget_minutes``; 0: no limit). A step with the backbone trainable and one with it
            frozen are timed first (:mod:`.step_time`) and the recipe's epochs cut to what fits, keeping
            its frozen epochs and at least one fine-tuning epoch; the measurements go into ``config.json`` and a
            resumed run reuses them. Not with ``epochs`` or more than one replica.

    Returns:
        Summary with the run folder, epochs run, wall time (s) and the test report.
    """
    import keras

    from recaptcha_tf.data.balance import class_weights as balanced_class_weights
    from recaptcha_tf.data.pipeline import batch_mixing, make_dataset, multi_hot, tile_augmentation
    from recaptcha_tf.models import build_classifier, pretrained_recipe
    from recaptcha_tf.models.registry import model_cpu_bfloat16, model_head
    from recaptcha_tf.models.weights import parse_weights
    from recaptcha_tf.training.callbacks import PredictionSamples, TimeBudget

    model = model or task_defaults(task)["model"]
    # With pretrained weights the model's own transfer recipe (registry) fills in what the caller left unset.
    recipe = pretrained_recipe(model) if parse_weights(weights) else {}
    d = task_defaults(task) | recipe
    if model == task_defaults(task)["model"]:  # the task's default model comes with its default arguments
        model_kwargs = {**d.get("model_kwargs", {}), **(model_kwargs or {})}
    if recipe:
        log.info("Pretrained %s: transfer recipe %s (explicit arguments win)", model, recipe)
    image_size = tuple(image_size or d["image_size"])
    channels = 1 if (grayscale if grayscale is not None else d["channels"] == 1) else 3
    resize = resize or d["resize"]
    epochs_given = epochs is not None
    epochs, batch_size, learning_rate = positive_or_default(
        d, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate
    )
    time_budget = time_budget_minutes(time_budget, d.get("time_budget_minutes", 0))
    patience = d["patience"] if patience is None else patience
    label_smoothing = d.get("label_smoothing", 0.1) if label_smoothing is None else label_smoothing
    unfreeze = d.get("unfreeze", "all") if unfreeze is None else unfreeze
    if freeze_epochs is None and recipe.get("freeze_epochs") is not None:
        # the recipe's frozen phase, leaving at least one fine-tuning epoch when the user asked for fewer epochs
        freeze_epochs = min(recipe["freeze_epochs"], epochs - 1) if epochs else recipe["freeze_epochs"]
    fine_tune_learning_rate = fine_tune_learning_rate or d.get("fine_tune_learning_rate")
    weights_arg = weights
    weights, freeze_epochs, fine_tune_learning_rate = phase_settings(
        weights, freeze_epochs, epochs or 2**31, learning_rate, fine_tune_learning_rate
    )
    if multi_label and (balance_per_class or class_weight != "none"):
        raise ValueError("--balance and --class-weight are for single-label data, not --multi-label.")
    mixing = batch_mixing(mix, seed)  # validates the name before any work
    get_task(task).check_model(
        model, dict(model_kwargs or {}) | ({"weights": weights} if weights_arg is not None else {})
    )
    one_hot = bool(label_smoothing) or mixing is not None
    default_balance = balance_per_class is None and not multi_label and class_weight == "none"
    balance_up_to = d.get("balance_up_to", 0) if default_balance else 0
    dist, out, run_logdir, batch_size, (learning_rate, fine_tune_learning_rate) = set_up_distribution(
        strategy, out, logdir, run_name, batch_size, (learning_rate, fine_tune_learning_rate)
    )

    if multi_label:
        data_split = prepare_multilabel_split(
            data, out, labels_csv, split, fractions, seed, channels, allow_outside_data
        )
    else:
        data_split = prepare_folder_split(
            data, out, split, fractions, seed, channels, balance_per_class, balance_cap, balanced_dir, balance_up_to
        )
    class_names = data_split.class_names
    num_classes = len(class_names)
    train_paths, train_labels = zip(*data_split.train)
    val_paths, val_labels = zip(*data_split.val)
    if not epochs:  # epochs from the set's size: about d["steps"] updates, within d["epochs_range"]
        low, high = d["epochs_range"]
        epochs = int(np.clip(np.ceil(d["steps"] / np.ceil(len(train_paths) / batch_size)), low, high))
        log.info(
            "%d epochs for %d training images (about %d steps), early stopping after %d epochs without a better %s",
            epochs,
            len(train_paths),
            d["steps"],
            patience,
            d["monitor"][0],
        )
    if freeze_epochs >= epochs:
        raise TrainingConfigError(f"--freeze-epochs {freeze_epochs} leaves no fine-tuning epochs of {epochs} epochs.")
    monitor, mode = d.get("monitor", ("val_loss", "min")) if not multi_label else ("val_loss", "min")

    def targets(labels):
        if multi_label:
            return multi_hot(labels, num_classes)
        return keras.utils.to_categorical(labels, num_classes) if one_hot else np.array(labels)

    common = dict(image_size=image_size, channels=channels, resize=resize, batch_size=batch_size)
    train_ds = make_dataset(
        train_paths,
        targets(train_labels),
        shuffle=True,
        seed=seed,
        cache=cache,
        augment=tile_augmentation(flip=get_task(task).flip_invariant, seed=seed) if augment else None,
        mix=mixing,
        **common,
    )
    val_ds = make_dataset(val_paths, targets(val_labels), cache=cache, **common)
    train_ds, val_ds = shard_dataset(dist, train_ds), shard_dataset(dist, val_ds)

    loss, metrics = training_objective(
        model_head(model),
        multi_label=multi_label,
        one_hot=one_hot,
        label_smoothing=label_smoothing,
        threshold=threshold,
    )
    kwargs = dict(model_kwargs or {})
    if weights_arg is not None:
        kwargs["weights"] = weights
    keras.utils.set_random_seed(seed)
    steps = int(np.ceil(len(train_paths) / batch_size))
    with precision_policy(precision, model_cpu_bfloat16(model)) as policy, dist.scope():
        net = build_classifier(
            model,
            class_names,
            image_size,
            channels,
            resize,
            multi_label=multi_label,
            threshold=threshold,
            task=task,
            **kwargs,
        )
    sync_batchnorm(dist, net)
    timing, replan = {}, None
    if recipe and not epochs_given and time_budget and dist.num_replicas_in_sync == 1:
        validation_steps = int(np.ceil(len(val_paths) / batch_size))
        timing = _timed_epochs(
            net,
            loss,
            train_ds,
            out,
            dict(model=model, image_size=image_size, batch_size=batch_size, precision=policy, unfreeze=unfreeze),
            epochs,
            freeze_epochs,
            unfreeze,
            steps,
            validation_steps,
            time_budget,
        )
        epochs = timing.pop("epochs")
        measured = (timing["frozen_step_seconds"], timing["step_seconds"], time_budget, timing["read_seconds"])

        def replan(frozen_epoch_seconds: float) -> int:  # phase 1's real epochs re-plan phase 2 (fit_in_phases)
            return replanned_epochs(epochs, freeze_epochs, steps, validation_steps, *measured, frozen_epoch_seconds)

        callbacks = [*callbacks, TimeBudget(time_budget)]  # in case the epochs run longer than estimated

    extra = []
    if run_logdir:
        idx = _sample_indices(val_labels, 12, seed)
        sample_images = np.concatenate(
            [x for x in make_dataset([val_paths[i] for i in idx], None, cache=False, **common).as_numpy_iterator()]
        )

        def describe(outputs):
            return [class_names[int(k)] for k in outputs.argmax(1)], [float(p.max()) for p in outputs]

        def truth(label):
            return "+".join(class_names[j] for j in label) if isinstance(label, (list, tuple)) else class_names[label]

        extra.append(
            PredictionSamples(sample_images, [truth(val_labels[i]) for i in idx], describe, run_logdir, every=5)
        )
    class_weights = balanced_class_weights(data_split) if class_weight == "balanced" else None
    config = {
        "task": task,
        "model": model,
        "image_size": image_size,
        "channels": channels,
        "resize": resize,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "optimizer": optimizer,
        "label_smoothing": label_smoothing,
        "mix": mix,
        "class_weight": class_weight,
        "seed": seed,
        "balance_per_class": data_split.extra.get("balanced", {}).get("per_class"),
        "model_kwargs": model_kwargs or {},
        "precision": policy,
        "weights": weights,
        "freeze_epochs": freeze_epochs,
        "unfreeze": unfreeze,
        "fine_tune_learning_rate": fine_tune_learning_rate,
        "multi_label": multi_label,
        "threshold": threshold,
        "labels": labels_csv and os.path.abspath(labels_csv),
        "data": os.path.abspath(data),
        "strategy": type(dist).__name__,
        "replicas": dist.num_replicas_in_sync,
        **timing,  # the recipe's epochs held to the time budget: a resumed run keeps these measurements
    }
    finished = finished_summary(out, config)
    if finished is not None:
        return finished
    fitted = fit_run(
        dist,
        net,
        out,
        config,
        train_ds,
        val_ds,
        loss=loss,
        metrics=metrics,
        optimizer=optimizer,
        epochs=epochs,
        steps_per_epoch=steps,
        freeze_epochs=freeze_epochs,
        unfreeze=unfreeze,
        learning_rate=learning_rate,
        fine_tune_learning_rate=fine_tune_learning_rate,
        run_logdir=run_logdir,
        monitor=monitor,
        mode=mode,
        patience=patience,
        last_callbacks=[*extra, *callbacks],
        class_weight=class_weights,
        replan=replan,
    )
    summary = {
        "out": out,
        **fitted,
        "seconds_per_epoch": round(fitted["train_seconds"] / max(fitted["epochs_this_session"], 1), 1),
        "parameters": int(net.count_params()),
    }
    if data_split.test and is_chief_process(dist):
        report = evaluate(out, data, subset="test", report=RunFolder(out).test_report)
        summary["test"] = {k: report[k] for k in get_task(task).report_keys if k in report}
    write_json(summary, RunFolder(out).summary)
    finish_run(out)
    return summary
