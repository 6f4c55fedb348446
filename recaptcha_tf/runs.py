"""End-to-end runs: what ``recaptcha-tf train/evaluate/predict`` and the notebooks call.

Each function takes plain arguments, writes into a run folder and returns a
summary dict. The order inside a training run is fixed: split first (manifest
written next to the run), then optional balancing of the training split only,
then the tf.data pipeline, model, callbacks and fit, and finally an evaluation
of the best checkpoint on the held-out test split.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Sequence

import numpy as np

from recaptcha_tf.data.folders import DatasetError, scan_class_folders
from recaptcha_tf.data.splits import MANIFEST_NAME, Split, is_row_name, load_manifest, save_manifest, stratified_split
from recaptcha_tf.precision import precision_policy
from recaptcha_tf.tasks import get_task
from recaptcha_tf.tasks import task_defaults as _task_defaults

log = logging.getLogger("recaptcha_tf")

# Each task's defaults live in its spec (recaptcha_tf.tasks); kept here under the old names for callers.
task_defaults = _task_defaults


def step_budget(steps_at_48x192: int, image_size: tuple[int, int]) -> int:
    """Optimizer steps for a text input of ``image_size``: the same pixels as ``steps_at_48x192`` steps at 48x192,
    so the training time hardly depends on the input size the data called for."""
    return max(1, round(steps_at_48x192 * 48 * 192 / (image_size[0] * image_size[1])))


def _positive(defaults: dict, **values) -> list:
    """Each value, or the task default when ``None``; zero or negative is an error, never the default."""
    out = []
    for key, value in values.items():
        if value is None:
            value = defaults[key]
        elif isinstance(value, bool) or not value > 0:
            raise ValueError(f"{key} must be positive, got {value!r}.")
        out.append(value)
    return out


RUN_STATE = (
    "backup",
    "backup_phase1",
    "split.json",
    "history.csv",
    "model.keras",
    "phase1.weights.h5",
    "partial-model.keras",
    "partial-phase1.weights.h5",
    "config.json",
    "summary.json",
    "test_report.json",
    "test_confusion.png",
    "test_predictions.png",
)


def clear_run_state(out: str) -> list[str]:
    """Remove a run's training state from ``out`` (``train --overwrite``); returns what was removed.

    Only the names in :data:`RUN_STATE` directly inside ``out`` are removed (a link
    is removed, never followed), plus ``out/balanced_images`` when ``balance.json``
    shows this package wrote it. Anything else in ``out`` (exports, your files) stays.
    """
    import shutil

    removed = []
    names = list(RUN_STATE)
    if os.path.isfile(os.path.join(out, "balanced_images", "balance.json")):
        names.append("balanced_images")
    for name in names:
        path = os.path.join(out, name)
        if os.path.islink(path) or os.path.isfile(path):
            os.remove(path)
        elif os.path.isdir(path):
            shutil.rmtree(path)
        else:
            continue
        removed.append(name)
    if removed:
        log.info("--overwrite: removed %s from %s", ", ".join(removed), out)
    return removed


def _same_folder(a: str, b: str) -> bool:
    return bool(a) and bool(b) and os.path.realpath(a) == os.path.realpath(b)


def _write_json(obj, path: str) -> str:
    """Write ``obj`` to ``path`` atomically (a killed run never leaves half a manifest or summary)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)
    return path


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
        split = load_manifest(split_path)
    elif os.path.exists(own):
        split = load_manifest(own)
        if split.extra.get("data") and not _same_folder(split.extra["data"], data):
            raise DatasetError(
                f"{out_dir!r} holds a run on {split.extra['data']!r}, not {data!r}. "
                "Use another --out, or --overwrite to start afresh."
            )
        log.info("Resuming with the split in %s", own)
        return split
    elif os.path.exists(os.path.join(data, MANIFEST_NAME)):
        split = load_manifest(data)
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


def _distribution(
    strategy: str, out: str, logdir: str | None, run_name: str | None, batch_size: int, learning_rates: tuple
):
    """Strategy, this process's run folder and TensorBoard folder, global batch size and scaled learning rates.

    Under multi-worker training only the chief writes ``out`` and TensorBoard logs;
    the other workers write to ``out/worker<i>``.
    """
    from recaptcha_tf.distribute import get_strategy, is_chief, scale_for_replicas, worker_dir

    dist = get_strategy(strategy)
    replicas = dist.num_replicas_in_sync
    run_name = run_name or os.path.basename(os.path.normpath(out))
    run_logdir = os.path.join(logdir, run_name) if logdir and is_chief(dist) else None
    out = worker_dir(out, dist)
    os.makedirs(out, exist_ok=True)
    global_batch = batch_size * replicas
    rates = tuple(scale_for_replicas(batch_size, lr, replicas)[1] for lr in learning_rates)
    if replicas > 1:
        log.info(
            "%s with %d replicas: global batch %d, learning rates %s",
            type(dist).__name__,
            replicas,
            global_batch,
            rates,
        )
    return dist, out, run_logdir, global_batch, rates


def _shard(dist, dataset):
    import tensorflow as tf

    from recaptcha_tf.distribute import shard_by_data

    return shard_by_data(dataset) if isinstance(dist, tf.distribute.MultiWorkerMirroredStrategy) else dataset


def fit_in_phases(
    net,
    out: str,
    compile_for,
    fit_phase,
    epochs: int,
    freeze_epochs: int,
    unfreeze,
    learning_rate: float,
    fine_tune_learning_rate: float,
) -> int:
    """Fit in one phase, or in two: the backbone frozen for ``freeze_epochs``, then unfrozen.

    ``compile_for(phase_epochs, learning_rate)`` compiles ``net``;
    ``fit_phase(first_epoch, last_epoch, phase)`` fits it and returns the epochs run.
    Phase 1's end is saved to ``OUT/phase1.weights.h5`` (atomically; phase 1's backup
    is removed only after that), so a run killed in phase 2 resumes there (its own
    BackupAndRestore state) without repeating phase 1.
    Returns the epochs run by this call.
    """
    import shutil

    from recaptcha_tf.models.finetune import freeze_backbone, unfreeze_backbone

    epochs_run = 0
    phase1_weights = os.path.join(out, "phase1.weights.h5")
    if freeze_epochs:
        if os.path.exists(phase1_weights):
            log.info("Phase 1 (frozen backbone) already done; resuming from %s", phase1_weights)
            net.load_weights(phase1_weights)
        else:
            log.info(
                "Phase 1: backbone frozen, %d trainable parameters, %d epochs at learning rate %g",
                freeze_backbone(net),
                freeze_epochs,
                learning_rate,
            )
            compile_for(freeze_epochs, learning_rate)
            epochs_run += fit_phase(0, freeze_epochs, 1)
            partial = os.path.join(out, "partial-phase1.weights.h5")
            net.save_weights(partial)
            os.replace(partial, phase1_weights)
            shutil.rmtree(os.path.join(out, "backup_phase1"), ignore_errors=True)
        log.info(
            "Phase 2: unfreezing %s of the backbone, %d trainable parameters, learning rate %g",
            "all" if unfreeze == "all" else f"the top {unfreeze} blocks",
            unfreeze_backbone(net, unfreeze),
            fine_tune_learning_rate,
        )
    compile_for(epochs - freeze_epochs, fine_tune_learning_rate)
    return epochs_run + fit_phase(freeze_epochs, epochs, 2)


def _finished_summary(out: str, config: dict) -> dict | None:
    """The stored summary when ``out`` already holds this very run, finished (a re-run after the end, or a kill
    after the backup was removed): the same config, ``summary.json`` written, no backup left. ``None`` otherwise."""
    summary_path, config_path = os.path.join(out, "summary.json"), os.path.join(out, "config.json")
    backups = [os.path.join(out, b) for b in ("backup", "backup_phase1")]
    if not (os.path.isfile(summary_path) and os.path.isfile(config_path)) or any(map(os.path.isdir, backups)):
        return None
    with open(config_path) as f:
        stored = json.load(f)
    if stored != json.loads(json.dumps(config)):
        return None
    with open(summary_path) as f:
        summary = json.load(f)
    log.info(
        "%s holds this run, finished: resuming after epoch %s; training had finished, nothing to do "
        "(--overwrite starts afresh).",
        out,
        summary.get("epochs_run"),
    )
    return {**summary, "epochs_this_session": 0}


def _finish_run(out: str) -> None:
    """Remove the backup once the run's results are written: until then a killed run resumes, never retrains."""
    import shutil

    shutil.rmtree(os.path.join(out, "backup"), ignore_errors=True)


def _epochs_run(out: str, epochs_now: int) -> int:
    """Finished epochs of the whole run, resumed parts included (``history.csv`` rows)."""
    from recaptcha_tf.training import epochs_logged

    return max(epochs_logged(os.path.join(out, "history.csv")), epochs_now)


def _phases(weights, freeze_epochs, epochs: int, learning_rate: float, fine_tune_learning_rate):
    """Parsed weights, phase-1 epochs (default 3 with weights) and the phase-2 learning rate."""
    from recaptcha_tf.models.weights import parse_weights

    weights = parse_weights(weights)
    freeze_epochs = (3 if weights else 0) if freeze_epochs is None else int(freeze_epochs)
    if freeze_epochs >= epochs:
        raise ValueError(f"--freeze-epochs {freeze_epochs} leaves no fine-tuning epochs of --epochs {epochs}.")
    fine_tune_learning_rate = fine_tune_learning_rate or (learning_rate / 10 if freeze_epochs else learning_rate)
    return weights, freeze_epochs, fine_tune_learning_rate


def _sync_batchnorm(dist, net) -> None:
    from recaptcha_tf.distribute import synchronize_batchnorm

    if dist.num_replicas_in_sync > 1:
        log.info("Synchronised BatchNormalization across replicas in %d layers", synchronize_batchnorm(net))


def _is_chief(dist) -> bool:
    from recaptcha_tf.distribute import is_chief

    return is_chief(dist)


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
        split = load_manifest(split_path or own)
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
        strategy: ``tf.distribute`` strategy (:mod:`recaptcha_tf.distribute`); ``batch_size``
            is per replica and the learning rates scale with the number of replicas.

    Returns:
        Summary with the run folder, epochs run, wall time (s) and the test report.
    """
    import keras

    from recaptcha_tf.data.balance import class_weights as balanced_class_weights
    from recaptcha_tf.data.pipeline import batch_mixing, make_dataset, multi_hot, tile_augmentation
    from recaptcha_tf.distribute import fit as dist_fit
    from recaptcha_tf.models import build_classifier, check_model_task, pretrained_recipe
    from recaptcha_tf.models.weights import parse_weights
    from recaptcha_tf.training import PredictionSamples, cosine_schedule, make_optimizer, standard_callbacks

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
    epochs, batch_size, learning_rate = _positive(d, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate)
    patience = d["patience"] if patience is None else patience
    label_smoothing = d.get("label_smoothing", 0.1) if label_smoothing is None else label_smoothing
    unfreeze = d.get("unfreeze", "all") if unfreeze is None else unfreeze
    if freeze_epochs is None and recipe.get("freeze_epochs") is not None:
        # the recipe's frozen phase, leaving at least one fine-tuning epoch when the user asked for fewer epochs
        freeze_epochs = min(recipe["freeze_epochs"], epochs - 1) if epochs else recipe["freeze_epochs"]
    fine_tune_learning_rate = fine_tune_learning_rate or d.get("fine_tune_learning_rate")
    weights_arg = weights
    weights, freeze_epochs, fine_tune_learning_rate = _phases(
        weights, freeze_epochs, epochs or 2**31, learning_rate, fine_tune_learning_rate
    )
    if multi_label and (balance_per_class or class_weight != "none"):
        raise ValueError("--balance and --class-weight are for single-label data, not --multi-label.")
    mixing = batch_mixing(mix, seed)  # validates the name before any work
    check_model_task(model, task, dict(model_kwargs or {}) | ({"weights": weights} if weights_arg is not None else {}))
    one_hot = bool(label_smoothing) or mixing is not None
    default_balance = balance_per_class is None and not multi_label and class_weight == "none"
    balance_up_to = d.get("balance_up_to", 0) if default_balance else 0
    dist, out, run_logdir, batch_size, (learning_rate, fine_tune_learning_rate) = _distribution(
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
        raise ValueError(f"--freeze-epochs {freeze_epochs} leaves no fine-tuning epochs of {epochs} epochs.")
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
    train_ds, val_ds = _shard(dist, train_ds), _shard(dist, val_ds)

    if multi_label:
        loss = keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)
        metrics = [keras.metrics.BinaryAccuracy(threshold=threshold, name="hamming_accuracy")]
    elif one_hot:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
        metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    kwargs = dict(model_kwargs or {})
    if weights_arg is not None:
        kwargs["weights"] = weights
    keras.utils.set_random_seed(seed)
    steps = int(np.ceil(len(train_paths) / batch_size))
    with precision_policy(precision) as policy, dist.scope():
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
    _sync_batchnorm(dist, net)

    def compile_for(phase_epochs: int, lr: float):
        with dist.scope():
            net.compile(
                optimizer=make_optimizer(optimizer, cosine_schedule(lr, phase_epochs, steps)),
                loss=loss,
                metrics=[m.__class__.from_config(m.get_config()) for m in metrics],
            )

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
    }
    finished = _finished_summary(out, config)
    if finished is not None:
        return finished
    _write_json(config, os.path.join(out, "config.json"))
    start = time.perf_counter()

    def fit_phase(first_epoch: int, last_epoch: int, phase: int) -> int:
        history = dist_fit(
            dist,
            net,
            train_ds,
            validation_data=val_ds,
            initial_epoch=first_epoch,
            epochs=last_epoch,
            class_weight=class_weights,
            verbose=2,
            callbacks=standard_callbacks(
                out,
                run_logdir,
                monitor=monitor,
                mode=mode,
                patience=patience if phase == 2 else None,
                last=[*extra, *callbacks],
                backup="backup" if phase == 2 else "backup_phase1",
                initial_epoch=first_epoch,
                delete_backup=False,
            ),
        )
        return len(history.history.get("loss", []))

    epochs_now = fit_in_phases(
        net, out, compile_for, fit_phase, epochs, freeze_epochs, unfreeze, learning_rate, fine_tune_learning_rate
    )
    wall = time.perf_counter() - start
    summary = {
        "out": out,
        "epochs_run": _epochs_run(out, epochs_now),
        "epochs_this_session": epochs_now,
        "train_seconds": round(wall, 1),
        "seconds_per_epoch": round(wall / max(epochs_now, 1), 1),
        "parameters": int(net.count_params()),
    }
    if data_split.test and _is_chief(dist):
        report = evaluate(out, data, subset="test", report=os.path.join(out, "test_report.json"))
        summary["test"] = {k: report[k] for k in get_task(task).report_keys if k in report}
    _write_json(summary, os.path.join(out, "summary.json"))
    _finish_run(out)
    return summary


def _text_vocabulary(labels: Sequence[str], charset: str | None):
    from recaptcha_tf.data.text import DEFAULT_CHARSET, Vocabulary, expand_charset

    if charset:
        return Vocabulary(expand_charset(charset)), True
    base = expand_charset(DEFAULT_CHARSET)
    extra = sorted(set("".join(labels)) - set(base))
    if extra:
        log.info("Labels use characters outside %s: %s; adding them to the vocabulary.", DEFAULT_CHARSET, extra)
    return Vocabulary(base + "".join(extra)), False


def text_targets(encoded: Sequence[Sequence[int]], max_length: int, num_outputs: int, kind: str) -> np.ndarray:
    """Training targets for encoded labels: ``(N, max_length)`` padded ids for ``ctc``, their
    ``(N, max_length, num_outputs)`` one-hot for ``multihead``."""
    import keras

    from recaptcha_tf.data.pipeline import pad_sequences

    padded = pad_sequences(encoded, max_length)
    return keras.utils.to_categorical(padded, num_outputs).astype("float32") if kind == "multihead" else padded


@dataclasses.dataclass
class TextTaskData:
    """A text dataset ready for training: its vocabulary, encoded labels and split (indices into ``dataset``)."""

    dataset: object  # recaptcha_tf.data.text.TextDataset
    vocab: object  # recaptcha_tf.data.text.Vocabulary
    strict_charset: bool
    encoded: list[list[int]]
    max_length: int
    parts: dict[str, list[int]]

    def sources(self, part: str) -> list:
        return [self.dataset.sources[i] for i in self.parts[part]]

    def texts(self, part: str) -> list[str]:
        return [self.dataset.labels[i] for i in self.parts[part]]

    def targets(self, part: str, kind: str) -> np.ndarray:
        return text_targets([self.encoded[i] for i in self.parts[part]], self.max_length, self.vocab.size + 1, kind)


def text_task_data(
    data: str,
    out: str,
    charset: str | None = None,
    case: str = "keep",
    label_pattern: str | None = None,
    fractions="70/15/15",
    seed: int = 0,
    max_length: int | None = None,
    write_split: bool = True,
    image_column: str | None = None,
    label_column: str | None = None,
) -> TextTaskData:
    """Load a text dataset, fix its vocabulary (``charset`` or ``a-z0-9`` plus the labels' characters),
    encode the labels (unknown characters are a clear error naming the file) and split it
    (:func:`text_split_parts`). ``train_text`` and the tuner both start here. ``image_column`` and
    ``label_column`` name Parquet columns (default: detected)."""
    from recaptcha_tf.data.text import DEFAULT_LABEL_PATTERN, load_text_dataset

    dataset = load_text_dataset(
        data,
        pattern=label_pattern or DEFAULT_LABEL_PATTERN,
        case=case,
        image_column=image_column,
        label_column=label_column,
    )
    vocab, strict = _text_vocabulary(dataset.labels, charset)
    encoded = [vocab.encode(lab, name) for lab, name in zip(dataset.labels, dataset.names)]
    parts = text_split_parts(dataset.names, data, out, fractions, seed, write=write_split, labels=dataset.labels)
    return TextTaskData(dataset, vocab, strict, encoded, max_length or max(len(e) for e in encoded), parts)


def text_entry_name(path: str) -> str:
    """The dataset name of a text manifest entry: a row name (``parquet:FILE#ROW``, ``csv:PATH``) as is, a file by
    its base name."""
    return path if is_row_name(path) else os.path.basename(path)


def text_split_names(manifest: str, subset: str) -> list[str]:
    """Dataset names (see :func:`text_entry_name`) in one subset of a text run's manifest (any version)."""
    return [text_entry_name(p) for p, _ in load_manifest(manifest).subset(subset)]


def text_split_parts(
    names: Sequence[str],
    data: str,
    out: str,
    fractions="70/15/15",
    seed: int = 0,
    write: bool = True,
    labels: Sequence[str] | None = None,
) -> dict[str, list[int]]:
    """A text run's split as indices into ``names``: read from ``OUT/split.json`` when it exists (a resumed run
    or search), else a new seeded split, written there when ``write`` (distributed tuner workers do not write).

    The manifest has the schema of every run (:mod:`recaptcha_tf.data.splits`): ``root`` is the data
    folder, entries are ``[file relative to it, text]`` or ``[parquet:FILE#ROW, text]``.

    Raises:
        DatasetError: the manifest names an image that is no longer in ``data``.
    """
    manifest = os.path.join(out, MANIFEST_NAME)
    if os.path.exists(manifest):
        saved = {k: text_split_names(manifest, k) for k in ("train", "val", "test")}
        index = {n: i for i, n in enumerate(names)}
        missing = [n for k in ("train", "val", "test") for n in saved[k] if n not in index]
        if missing:
            raise DatasetError(
                f"{manifest} names {len(missing)} image(s) that are not in {data!r} "
                f"(e.g. {missing[0]!r}). Use another --out, or --overwrite to start afresh."
            )
        log.info("Resuming with the split in %s", manifest)
        return {k: [index[n] for n in saved[k]] for k in ("train", "val", "test")}
    parts = _text_split(names, fractions, seed)
    if write:
        from recaptcha_tf.data.splits import parse_fractions

        folder = data if isinstance(data, str) and not os.path.isfile(data) else ""  # a Parquet file: no folder

        def entry(i):
            name = names[i]
            path = os.path.join(folder, name) if folder and not is_row_name(name) else name
            return path, labels[i] if labels is not None else None

        split = Split(
            class_names=[],
            **{k: [entry(i) for i in v] for k, v in parts.items()},
            root=folder,
            seed=seed,
            fractions=parse_fractions(fractions),
            extra={"task": "text", "data": os.path.abspath(data) if isinstance(data, str) else None},
        )
        save_manifest(split, manifest)
    return parts


def _text_split(names: Sequence[str], fractions, seed: int) -> dict[str, list[int]]:
    from recaptcha_tf.data.splits import parse_fractions

    fr = parse_fractions(fractions)
    order = np.random.default_rng(seed).permutation(len(names))
    n_val = max(1, int(round(fr[1] * len(names))))
    n_test = int(round(fr[2] * len(names))) if fr[2] > 0 else 0
    if len(names) - n_val - n_test < 1:
        raise DatasetError(f"{len(names)} text images are too few for a {fractions} split.")
    n_train = len(names) - n_val - n_test
    return {
        "train": sorted(order[:n_train].tolist()),
        "val": sorted(order[n_train : n_train + n_val].tolist()),
        "test": sorted(order[n_train + n_val :].tolist()),
    }


def train_text(
    data: str,
    out: str = "models/text",
    model: str = "crnn",
    charset: str | None = None,
    case: str = "keep",
    label_pattern: str | None = None,
    image_size: tuple[int, int] | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    patience: int | None = None,
    fractions="70/15/15",
    seed: int = 0,
    val_data: str | None = None,
    augment: bool = True,
    logdir: str | None = "logs",
    run_name: str | None = None,
    model_kwargs: dict | None = None,
    max_length: int | None = None,
    callbacks: Sequence = (),
    precision: str = "auto",
    strategy: str = "default",
    weights: str | None = None,
    freeze_epochs: int | None = None,
    unfreeze: int | str | None = None,
    fine_tune_learning_rate: float | None = None,
    steps: int | None = None,
    colour: str = "auto",
    image_column: str | None = None,
    label_column: str | None = None,
) -> dict:
    """Train a text CAPTCHA reader (``crnn`` with CTC or ``multihead``).

    The input size, crop and colour handling are fitted to the training images
    (:func:`recaptcha_tf.data.text_fit.fit_text_input`) unless ``image_size`` is given,
    and the budget is ``steps`` optimizer updates whatever the set's size (default
    4,000 for a 48x192 input, proportionally fewer for larger inputs), run as 20
    epochs of equal steps over the repeated training set, unless ``epochs`` is given.

    Args:
        data: folder of images named by label, a Parquet file, or a folder of Parquet files.
        charset: vocabulary (e.g. ``"a-z0-9"``); labels outside it are an error.
            By default ``a-z0-9`` plus any other characters in the labels.
        case: ``"keep"``, ``"lower"`` or ``"upper"``.
        weights: the convolutional backbone's starting weights: a ``.weights.h5`` file or a trained
            ``.keras`` text model with the same backbone (e.g. one trained on synthetic CAPTCHAs).
        freeze_epochs: a first phase with that backbone frozen (default 3 with ``weights``, else 0);
            then ``unfreeze`` (``"all"`` or the top N blocks) at ``fine_tune_learning_rate``.
        val_data: a separate validation set; then ``data`` is split only into train/test
            by ``fractions`` ignoring its val part.
        steps: optimizer updates in all (rounded up to a multiple of 20); ignored with ``epochs``.
        colour: ``"auto"`` (the task default, ``"ink"``), ``"ink"`` (distance from each image's
            background colour, any polarity or text colour) or ``"gray"`` (grayscale, padded).
        image_column, label_column: Parquet column names (default: detected).

    Returns:
        Summary with epochs and steps run, wall time (s), the chosen input, ``plateau`` (the model
        still reads every image as empty text) and the test report (exact match, CER).
    """
    import keras

    from recaptcha_tf.data.pipeline import make_dataset, text_augmentation
    from recaptcha_tf.data.text import DEFAULT_LABEL_PATTERN, load_text_dataset
    from recaptcha_tf.data.text_fit import fit_text_input
    from recaptcha_tf.decoding import decode_text_outputs
    from recaptcha_tf.distribute import fit as dist_fit
    from recaptcha_tf.models import build_text_model, check_model_task, crop_canvas
    from recaptcha_tf.models.registry import model_head
    from recaptcha_tf.training import (
        BlankPlateauWarning,
        PlateauAwareEarlyStopping,
        PredictionSamples,
        TextMetrics,
        cosine_schedule,
        make_optimizer,
        standard_callbacks,
    )

    d = task_defaults("text")
    colour = d["colour"] if colour in (None, "auto") else colour
    if colour not in ("ink", "gray"):
        raise ValueError(f"--colour must be auto, ink or gray, got {colour!r}.")
    epochs, batch_size, learning_rate, steps = _positive(
        {**d, "epochs": None, "steps": None},
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        steps=steps,
    )
    check_model_task(model, "text", dict(model_kwargs or {}))
    kind = model_head(model)
    unfreeze = "all" if unfreeze is None else unfreeze
    weights_arg = weights
    weights, freeze_epochs, fine_tune_learning_rate = _phases(
        weights, freeze_epochs, epochs or 2**31, learning_rate, fine_tune_learning_rate
    )
    dist, out, run_logdir, batch_size, (learning_rate, fine_tune_learning_rate) = _distribution(
        strategy, out, logdir, run_name, batch_size, (learning_rate, fine_tune_learning_rate)
    )
    columns = dict(image_column=image_column, label_column=label_column)
    text = text_task_data(data, out, charset, case, label_pattern, fractions, seed, max_length, **columns)
    dataset, vocab, max_length, parts = text.dataset, text.vocab, text.max_length, text.parts
    if val_data:
        text.parts["train"] = sorted(parts["train"] + parts["val"])  # text.sources("train") below includes val
    fit = fit_text_input(text.sources("train"), max_length, seed=seed)
    size_given = bool(image_size)
    if size_given:
        fit = dataclasses.replace(fit, image_size=tuple(image_size), crop=None)
    if colour == "gray":
        fit = dataclasses.replace(fit, colour="gray", resize="pad")
    channels = 3 if fit.colour == "ink" else 1
    image_size = fit.image_size
    budget = steps or step_budget(d["steps"], image_size)
    if epochs:  # whole passes over the training set
        steps_per_epoch, repeat = int(np.ceil(len(parts["train"]) / batch_size)), False
    else:  # the budget in a fixed number of "epochs" of equal steps, over the repeated training set
        epochs = d["evaluations"]
        steps_per_epoch, repeat = int(np.ceil(budget / epochs)), True
    budget = epochs * steps_per_epoch
    if freeze_epochs >= epochs:
        raise ValueError(f"--freeze-epochs {freeze_epochs} leaves no fine-tuning epochs of {epochs} epochs.")
    patience = max(3, int(np.ceil(d["patience_fraction"] * epochs))) if patience is None else patience
    log.info(
        "%s%s; %d epochs of %d steps (budget %d steps), early stopping after %d epochs without a better "
        "validation CER (or loss, at equal CER)",
        fit.describe(),
        " (--image-size given)" if size_given else "",
        epochs,
        steps_per_epoch,
        budget,
        patience,
    )

    if val_data:
        extra_val = load_text_dataset(val_data, pattern=label_pattern or DEFAULT_LABEL_PATTERN, case=case, **columns)
        val_sources, val_texts = extra_val.sources, extra_val.labels
        val_targets = text_targets(
            [vocab.encode(lab, name) for lab, name in zip(extra_val.labels, extra_val.names)],
            max_length,
            vocab.size + 1,
            kind,
        )
    else:
        val_sources, val_texts, val_targets = text.sources("val"), text.texts("val"), text.targets("val", kind)

    common = dict(
        image_size=crop_canvas(image_size, fit.crop), channels=channels, resize=fit.resize, batch_size=batch_size
    )
    train_ds = make_dataset(
        text.sources("train"),
        text.targets("train", kind),
        shuffle=True,
        seed=seed,
        augment=text_augmentation(seed) if augment else None,
        **common,
    )
    val_ds = make_dataset(val_sources, val_targets, **common)
    train_ds, val_ds = _shard(dist, train_ds), _shard(dist, val_ds)
    if repeat:
        train_ds = train_ds.repeat()

    keras.utils.set_random_seed(seed)
    with precision_policy(precision) as policy, dist.scope():
        net = build_text_model(
            model,
            vocab.characters,
            image_size,
            channels=channels,
            resize=fit.resize,
            max_length=max_length,
            colour=fit.colour,
            crop=fit.crop,
            **(model_kwargs or {}),
            **({"weights": weights} if weights_arg is not None else {}),
        )
        _sync_batchnorm(dist, net)
        frames = net.output_shape[1]
        if kind == "ctc" and frames < 2 * max_length + 1:
            raise ValueError(
                f"The model reads {frames} frames, too few for labels of {max_length} characters; "
                "use a wider --image-size."
            )

    def compile_for(phase_epochs: int, lr: float):
        with dist.scope():
            net.compile(
                optimizer=make_optimizer("adam", cosine_schedule(lr, phase_epochs, steps_per_epoch)),
                loss=keras.losses.CTC() if kind == "ctc" else keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
            )

    from recaptcha_tf.distribute import unsharded

    val_images = unsharded(make_dataset(val_sources, None, cache=True, **common))
    first = [TextMetrics(val_images, val_texts, vocab.characters, kind)]
    plateau = BlankPlateauWarning(
        steps=max(1, epochs * steps_per_epoch // 3),
        steps_per_epoch=steps_per_epoch,
        remedy="check that the file names hold the labels, then try --learning-rate 3e-4 or more --steps; "
        'the run summary marks it "plateau": true',
    )
    last = [plateau] if kind == "ctc" else []
    if run_logdir:
        idx = list(range(min(12, len(val_sources))))
        imgs = np.concatenate(
            list(make_dataset([val_sources[i] for i in idx], None, cache=False, **common).as_numpy_iterator())
        )

        def describe(outputs):
            dec = decode_text_outputs(outputs, vocab.characters, kind)
            return [t for t, _ in dec], [float(np.prod(c)) if c else 0.0 for _, c in dec]

        last.append(PredictionSamples(imgs, [val_texts[i] for i in idx], describe, run_logdir, every=10))
    config = {
        "task": "text",
        "model": model,
        "characters": vocab.characters,
        "strict_charset": text.strict_charset,
        "max_length": max_length,
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "batch_size": batch_size,
        **fit.to_config(),
        "learning_rate": learning_rate,
        "seed": seed,
        "case": case,
        "model_kwargs": model_kwargs or {},
        "precision": policy,
        "strategy": type(dist).__name__,
        "replicas": dist.num_replicas_in_sync,
        "weights": weights,
        "freeze_epochs": freeze_epochs,
        "unfreeze": unfreeze,
        "fine_tune_learning_rate": fine_tune_learning_rate,
        "data": os.path.abspath(data),
    }
    finished = _finished_summary(out, config)
    if finished is not None:
        return finished
    _write_json(config, os.path.join(out, "config.json"))
    start = time.perf_counter()

    def fit_phase(first_epoch: int, last_epoch: int, phase: int) -> int:
        history = dist_fit(
            dist,
            net,
            train_ds,
            validation_data=val_ds,
            initial_epoch=first_epoch,
            epochs=last_epoch,
            steps_per_epoch=steps_per_epoch if repeat else None,
            verbose=2,
            callbacks=standard_callbacks(
                out,
                run_logdir,
                monitor="val_cer_then_loss",
                mode="min",
                patience=patience if phase == 2 else None,
                first=first,
                last=[*last, *callbacks],
                backup="backup" if phase == 2 else "backup_phase1",
                early_stopping=PlateauAwareEarlyStopping,
                initial_epoch=first_epoch,
                delete_backup=False,
            ),
        )
        return len(history.history.get("loss", []))

    epochs_now = fit_in_phases(
        net, out, compile_for, fit_phase, epochs, freeze_epochs, unfreeze, learning_rate, fine_tune_learning_rate
    )
    wall = time.perf_counter() - start
    epochs_run = _epochs_run(out, epochs_now)
    summary = {
        "out": out,
        "epochs_run": epochs_run,
        "epochs_this_session": epochs_now,
        "train_seconds": round(wall, 1),
        "steps": epochs_run * steps_per_epoch,
        "image_size": list(image_size),
        "crop": fit.crop,
        "plateau": plateau.on_plateau,
    }
    if parts["test"] and _is_chief(dist):
        test = dataset.subset(parts["test"])
        report = evaluate_text_dataset(
            out, test, report=os.path.join(out, "test_report.json"), grid=os.path.join(out, "test_predictions.png")
        )
        summary["test"] = {k: report[k] for k in get_task("text").report_keys if k in report}
        blank = float(np.mean([not w["prediction"] for w in report.get("worst", [])] or [0.0]))
        if report["exact_match"] == 0 and blank == 1.0:
            summary["plateau"] = True
    if summary["plateau"]:
        log.warning(
            "the model reads (nearly) every image as empty text: it did not learn this set; see the "
            "warning above for what to try"
        )
    _write_json(summary, os.path.join(out, "summary.json"))
    _finish_run(out)
    return summary


def evaluate_text_dataset(
    model_path: str, dataset, report: str | None = None, grid: str | None = None, beam_width: int = 0, model=None
) -> dict:
    """Exact match, CER and worst examples of a text model on a :class:`TextDataset`."""
    from recaptcha_tf.decoding import decode_text_outputs
    from recaptcha_tf.evaluation import text_report, write_report
    from recaptcha_tf.inference import load_model, model_info, predict_outputs
    from recaptcha_tf.plots import prediction_grid, save_figure

    model = model or load_model(model_path)
    info = model_info(model)
    for lab, name in zip(dataset.labels, dataset.names):
        bad = sorted(set(lab) - set(info.names))
        if bad:
            log.warning("%s: label %r has characters the model cannot output: %s", name, lab, bad)
    start = time.perf_counter()
    outputs = predict_outputs(model, dataset.sources)
    seconds = time.perf_counter() - start
    decoded = decode_text_outputs(outputs, info.names, info.kind, beam_width)
    texts = [t for t, _ in decoded]
    result = text_report(dataset.labels, texts, [c for _, c in decoded], dataset.names)
    result["images_per_second"] = len(texts) / max(seconds, 1e-9)
    result["ms_per_image"] = 1000 * seconds / max(len(texts), 1)
    if report:
        write_report(result, report)
    if grid:
        from recaptcha_tf.data.pipeline import make_dataset

        wrong = [i for i, (t, r) in enumerate(zip(texts, dataset.labels)) if t != r]
        right = [i for i, (t, r) in enumerate(zip(texts, dataset.labels)) if t == r]
        show = (wrong[:8] + right)[:16]
        images = np.concatenate(
            list(
                make_dataset(
                    [dataset.sources[i] for i in show], None, cache=False, **info.pipeline_args()
                ).as_numpy_iterator()
            )
        )
        fig = prediction_grid(
            images,
            [dataset.labels[i] for i in show],
            [texts[i] for i in show],
            [float(np.prod(decoded[i][1])) if decoded[i][1] else 0.0 for i in show],
        )
        save_figure(fig, grid)
    return result


def _subset_for(model_path: str, data: str, subset: str):
    """Which split subset to evaluate: ``auto`` means the run's test split when ``data`` is its data."""
    if subset == "all":
        return None
    run_dir = model_path if os.path.isdir(model_path) else os.path.dirname(model_path)
    manifest = os.path.join(run_dir, MANIFEST_NAME)
    if not os.path.exists(manifest):
        if subset != "auto":
            raise DatasetError(f"--subset {subset} needs the run's {MANIFEST_NAME} next to the model.")
        return None
    saved = load_manifest(manifest)
    same = _same_folder(saved.extra.get("data") or saved.root, data)
    if subset == "auto":
        return "test" if same and saved.test else None
    return subset


def evaluate(
    model: str,
    data: str,
    report: str | None = None,
    subset: str = "auto",
    plot: str | None = None,
    beam_width: int = 0,
    label_pattern: str | None = None,
    case: str = "keep",
    labels_csv: str | None = None,
    challenges: int = 500,
    image_column: str | None = None,
    label_column: str | None = None,
    allow_outside_data: bool = False,
    tta: str = "none",
    ensemble: Sequence[str] = (),
) -> dict:
    """Evaluate a saved model on a data folder (or Parquet for text: ``image_column``/``label_column``).

    ``subset="auto"`` evaluates the run's held-out test split when ``data`` is
    the folder it was trained on, and every image otherwise (a new held-out set).
    Writes the JSON report and a confusion-matrix / prediction-grid PNG beside it.
    Tile and char reports include the challenge-level score on ``challenges``
    seeded 3x3 and 4x4 grids of the evaluated images (``0`` skips it).
    Multi-label models read their labels from ``labels_csv`` (``path,labels``)
    or, without it, from the class folders.

    Tile and char classifiers: ``tta="flip"`` averages each image's probabilities with
    its mirror image's (tiles); ``ensemble`` names more runs (or ``.keras`` files) with
    the same class names whose probabilities are averaged with this model's.
    """
    from recaptcha_tf.challenge import challenge_report
    from recaptcha_tf.evaluation import classification_report, multilabel_report, write_report
    from recaptcha_tf.inference import load_model, model_info, predict_outputs
    from recaptcha_tf.plots import confusion_matrix_figure, save_figure

    net = load_model(model)
    info = model_info(net)
    which = _subset_for(model, data, subset)
    stem = os.path.splitext(report)[0] if report else None
    if info.task == "text":
        from recaptcha_tf.data.text import DEFAULT_LABEL_PATTERN, load_text_dataset

        if tta != "none" or ensemble:
            raise ValueError("--tta and --ensemble are for tile and char classifiers, not text models.")

        dataset = load_text_dataset(
            data,
            pattern=label_pattern or DEFAULT_LABEL_PATTERN,
            case=case,
            image_column=image_column,
            label_column=label_column,
        )
        if which:
            run_dir = model if os.path.isdir(model) else os.path.dirname(model)
            wanted = set(text_split_names(os.path.join(run_dir, MANIFEST_NAME), which))
            dataset = dataset.subset([i for i, n in enumerate(dataset.names) if n in wanted])
        result = evaluate_text_dataset(
            model, dataset, report, grid=(stem + "_predictions.png") if stem else plot, beam_width=beam_width, model=net
        )
        result["subset"] = which or "all"
        if report:
            write_report(result, report)
        return result

    if which:
        split = load_manifest(model if os.path.isdir(model) else os.path.dirname(model))
        if [n.lower() for n in split.class_names] != [n.lower() for n in info.names]:
            raise DatasetError(f"The run's split classes {split.class_names} differ from the model's {info.names}.")
        paths, labels = zip(*split.subset(which))
    elif info.kind == "sigmoid":
        from recaptcha_tf.data.multilabel import folder_as_multilabel, read_label_csv

        if labels_csv:
            paths, labels, _ = read_label_csv(
                labels_csv, root=data, class_names=info.names, channels=info.channels, allow_outside=allow_outside_data
            )
        else:
            paths, labels, _ = folder_as_multilabel(data, class_names=info.names, channels=info.channels)
    else:
        ds = scan_class_folders(data, class_names=info.names, channels=info.channels, allow_missing_classes=True)
        paths, labels = ds.paths, ds.labels
    start = time.perf_counter()
    probs = predict_outputs(net, list(paths), tta=tta)
    for member in ensemble:
        other = load_model(member)
        if [n.lower() for n in model_info(other).names] != [n.lower() for n in info.names]:
            raise DatasetError(f"--ensemble {member}: its classes {model_info(other).names} differ from {info.names}.")
        probs = probs + predict_outputs(other, list(paths), tta=tta)
    probs = probs / (1 + len(ensemble))
    seconds = time.perf_counter() - start
    if info.kind == "sigmoid":
        from recaptcha_tf.data.pipeline import multi_hot

        result = multilabel_report(probs, multi_hot(labels, len(info.names)), info.names, info.threshold)
    else:
        result = classification_report(probs, labels, info.names)
    if challenges:
        result["challenge"] = challenge_report(
            probs, labels, info.names, count=challenges, threshold=info.threshold if info.kind == "sigmoid" else None
        )
    result["images_per_second"] = len(paths) / max(seconds, 1e-9)
    result["ms_per_image"] = 1000 * seconds / max(len(paths), 1)
    result["subset"] = which or "all"
    result["tta"], result["ensemble"] = tta, [os.path.abspath(m) for m in ensemble]
    if report:
        write_report(result, report)
    plot = plot or ((stem + "_confusion.png") if stem else None)
    if plot and "confusion_matrix" in result:
        save_figure(confusion_matrix_figure(result["confusion_matrix"], info.names), plot)
    return result
