"""What both trainers share around ``fit``: positive argument defaults, the ``tf.distribute`` strategy with
its run and TensorBoard folders, and the fine-tuning phases (backbone frozen, then unfrozen).

TensorFlow and Keras are imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import logging
import os
import sys

from recaptcha_tf.utils.run_folder import RunFolder

log = logging.getLogger("recaptcha_tf")


class TrainingConfigError(ValueError):
    """Training settings that cannot work together (a user error: one ``error:`` line in the CLI)."""


def positive_or_default(defaults: dict, **values) -> list:
    """Each value, or the task default when ``None``; zero or negative is an error, never the default."""
    out = []
    for key, value in values.items():
        if value is None:
            value = defaults[key]
        elif isinstance(value, bool) or not value > 0:
            raise TrainingConfigError(f"{key} must be positive, got {value!r}.")
        out.append(value)
    return out


def set_up_distribution(
    strategy: str, out: str, logdir: str | None, run_name: str | None, batch_size: int, learning_rates: tuple
):
    """Strategy, this process's run folder and TensorBoard folder, global batch size and scaled learning rates.

    Under multi-worker training only the chief writes ``out`` and TensorBoard logs;
    the other workers write to ``out/worker<i>``.
    """
    from recaptcha_tf.training.distribute import get_strategy, is_chief, scale_for_replicas, worker_dir

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


def shard_dataset(dist, dataset):
    import tensorflow as tf

    from recaptcha_tf.training.distribute import shard_by_data

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
    blocks: str | None = None,
    replan=None,
) -> int:
    """Fit in one phase, or in two: the backbone frozen for ``freeze_epochs``, then unfrozen
    (all of it, or the top ``unfreeze`` blocks found with the model's ``blocks`` pattern).

    ``compile_for(phase_epochs, learning_rate)`` compiles ``net``;
    ``fit_phase(first_epoch, last_epoch, phase)`` fits it and returns the epochs run.
    Phase 1's end is saved to ``OUT/phase1.weights.h5`` (atomically; phase 1's backup
    is removed only after that), so a run killed in phase 2 resumes there (its own
    BackupAndRestore state) without repeating phase 1.
    ``replan(frozen_epoch_seconds)``, when given, returns the run's epochs in all from the wall seconds
    phase 1's epochs took in this session (a time budget planned on a step-time estimate); phase 2 then
    runs to that epoch on a cosine over its own epochs. The plan is stored in ``OUT/phase2_plan.json``
    before phase 1's weights, so a resumed run keeps it.
    Returns the epochs run by this call.
    """
    import shutil
    import time

    from recaptcha_tf.models.finetune import freeze_backbone, unfreeze_backbone

    epochs_run = 0
    run = RunFolder(out)
    phase1_weights = run.file(RunFolder.PHASE1_WEIGHTS)
    if freeze_epochs:
        if os.path.exists(phase1_weights):
            log.info("Phase 1 (frozen backbone) already done; resuming from %s", phase1_weights)
            net.load_weights(phase1_weights)
            shutil.rmtree(run.backup(1), ignore_errors=True)  # left by a kill just after the weights were saved
            epochs = _stored_plan(run, epochs)
        else:
            log.info(
                "Phase 1: backbone frozen, %d trainable parameters, %d epochs at learning rate %g",
                freeze_backbone(net),
                freeze_epochs,
                learning_rate,
            )
            compile_for(freeze_epochs, learning_rate)
            start = time.perf_counter()
            epochs_run += fit_phase(0, freeze_epochs, 1)
            if replan is not None and epochs_run:
                seconds = (time.perf_counter() - start) / epochs_run
                planned, epochs = epochs, max(freeze_epochs + 1, min(epochs, int(replan(seconds))))
                if epochs < planned:
                    log.warning(
                        "phase 1 took %.0f s an epoch, longer than estimated: %d fine-tuning epochs instead of %d "
                        "fit the time budget, so the cosine schedule ends within it",
                        seconds,
                        epochs - freeze_epochs,
                        planned - freeze_epochs,
                    )
                run.write_json({"epochs": epochs, "frozen_epoch_seconds": round(seconds, 2)}, RunFolder.PHASE2_PLAN)
            else:  # phase 1 had already ended when this session resumed it: the plan of the session that ran it
                epochs = _stored_plan(run, epochs)
            partial = run.file(RunFolder.PARTIAL_PHASE1_WEIGHTS)
            net.save_weights(partial)
            os.replace(partial, phase1_weights)
            shutil.rmtree(run.backup(1), ignore_errors=True)
        log.info(
            "Phase 2: unfreezing %s of the backbone, %d trainable parameters, learning rate %g",
            "all" if unfreeze == "all" else f"the top {unfreeze} blocks",
            unfreeze_backbone(net, unfreeze, blocks=blocks),
            fine_tune_learning_rate,
        )
    compile_for(epochs - freeze_epochs, fine_tune_learning_rate)
    return epochs_run + fit_phase(freeze_epochs, epochs, 2)


def _stored_plan(run: RunFolder, epochs: int) -> int:
    """The epochs stored in ``phase2_plan.json`` by the session that ran phase 1, else ``epochs`` (also when the
    file is damaged)."""
    plan = run.read_json(RunFolder.PHASE2_PLAN)
    return int(plan["epochs"]) if isinstance(plan, dict) and isinstance(plan.get("epochs"), int) else epochs


def phase_settings(
    weights, freeze_epochs, epochs: int, learning_rate: float, fine_tune_learning_rate, weights_freeze_epochs: int = 3
):
    """Parsed weights, phase-1 epochs and the phase-2 learning rate (default ``learning_rate``, a tenth of it after a
    frozen phase). Phase 1 defaults to ``weights_freeze_epochs`` with weights (0 without), leaving at least one
    fine-tuning epoch of ``epochs``; phase-1 epochs the caller gives that leave none are a
    :class:`TrainingConfigError`."""
    from recaptcha_tf.models.weights import parse_weights

    weights = parse_weights(weights)
    if freeze_epochs is None:
        freeze_epochs = min(weights_freeze_epochs, epochs - 1) if weights else 0
    freeze_epochs = int(freeze_epochs)
    if freeze_epochs >= epochs:
        raise TrainingConfigError(f"--freeze-epochs {freeze_epochs} leaves no fine-tuning epochs of --epochs {epochs}.")
    fine_tune_learning_rate = fine_tune_learning_rate or (learning_rate / 10 if freeze_epochs else learning_rate)
    return weights, freeze_epochs, fine_tune_learning_rate


def sync_batchnorm(dist, net) -> None:
    from recaptcha_tf.training.distribute import synchronize_batchnorm

    if dist.num_replicas_in_sync > 1:
        log.info("Synchronised BatchNormalization across replicas in %d layers", synchronize_batchnorm(net))


def is_chief_process(dist) -> bool:
    from recaptcha_tf.training.distribute import is_chief

    return is_chief(dist)


def fit_run(
    dist,
    net,
    out: str,
    config: dict,
    train_ds,
    val_ds,
    *,
    loss,
    metrics=(),
    optimizer: str = "adam",
    epochs: int,
    steps_per_epoch: int,
    repeat: bool = False,
    freeze_epochs: int = 0,
    unfreeze="all",
    learning_rate: float,
    fine_tune_learning_rate: float,
    run_logdir: str | None = None,
    monitor: str = "val_loss",
    mode: str = "min",
    patience: int | None = None,
    first_callbacks=(),
    last_callbacks=(),
    early_stopping=None,
    class_weight: dict | None = None,
    replan=None,
    warmup_epochs: float = 1,
    learning_rate_schedule=None,
) -> dict:
    """The training skeleton every task shares: write ``config.json``, compile, fit in phases, time it.

    Each phase compiles ``net`` with ``optimizer`` on a cosine schedule over the phase's
    ``epochs * steps_per_epoch`` updates, ``loss`` and fresh copies of ``metrics``, and fits
    with the standard callbacks (kill-safe backup per phase, best-model checkpoint, early
    stopping after ``patience`` epochs in the last phase only, TensorBoard, CSV history).
    ``repeat`` says ``train_ds`` repeats forever, so every epoch is ``steps_per_epoch`` batches.
    ``replan``: see :func:`fit_in_phases`. ``warmup_epochs``: the linear warm-up of each phase's schedule, in
    epochs (a fraction of one allowed). ``learning_rate_schedule(learning_rate, phase_epochs)``, when given, makes
    each phase's schedule instead (e.g. ``PlateauExtension.learning_rate_schedule``).

    Returns:
        ``{"epochs_run", "epochs_this_session", "train_seconds"}`` (wall seconds of this call's fitting).
    """
    import time

    from recaptcha_tf.training.callbacks import build_optimizer, cosine_schedule, make_optimizer, standard_callbacks
    from recaptcha_tf.training.distribute import fit as dist_fit
    from recaptcha_tf.training.run_folder import finished_epochs
    from recaptcha_tf.utils.run_folder import write_json

    write_json(config, RunFolder(out).config)

    def compile_for(phase_epochs: int, lr: float):
        with dist.scope():
            net.compile(
                optimizer=make_optimizer(
                    optimizer,
                    learning_rate_schedule(lr, phase_epochs)
                    if learning_rate_schedule is not None
                    else cosine_schedule(lr, phase_epochs, steps_per_epoch, warmup_epochs),
                ),
                loss=loss,
                metrics=[m.__class__.from_config(m.get_config()) for m in metrics] or None,
            )
            build_optimizer(net)

    def fit_phase(first_epoch: int, last_epoch: int, phase: int) -> int:
        history = dist_fit(
            dist,
            net,
            train_ds,
            validation_data=val_ds,
            initial_epoch=first_epoch,
            epochs=last_epoch,
            steps_per_epoch=steps_per_epoch if repeat else None,
            class_weight=class_weight,
            verbose=1 if sys.stdout.isatty() else 2,  # Keras' per-step bar on a terminal, one line an epoch in a log
            callbacks=standard_callbacks(
                out,
                run_logdir,
                monitor=monitor,
                mode=mode,
                patience=patience if phase == 2 else None,
                first=first_callbacks,
                last=last_callbacks,
                backup=RunFolder.BACKUP if phase == 2 else RunFolder.PHASE1_BACKUP,
                initial_epoch=first_epoch,
                delete_backup=False,
                **({"early_stopping": early_stopping} if early_stopping is not None else {}),
            ),
        )
        return len(history.history.get("loss", []))

    start = time.perf_counter()
    from recaptcha_tf.models.registry import model_blocks

    epochs_now = fit_in_phases(
        net,
        out,
        compile_for,
        fit_phase,
        epochs,
        freeze_epochs,
        unfreeze,
        learning_rate,
        fine_tune_learning_rate,
        blocks=model_blocks(config["model"]) if freeze_epochs else None,
        replan=replan,
    )
    return {
        "epochs_run": finished_epochs(out, epochs_now),
        "epochs_this_session": epochs_now,
        "train_seconds": round(time.perf_counter() - start, 1),
    }
