"""Training a text CAPTCHA reader: ``recaptcha-tf train --task text``, the demo and the notebooks.

The input size, crop and colour handling are fitted to the training images, the training length is a
budget of optimizer steps (:func:`step_budget`), and the best checkpoint is evaluated on the test split.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np

from recaptcha_tf.data.text.task_data import text_targets, text_task_data
from recaptcha_tf.evaluation.workflow import evaluate_text_dataset
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
from recaptcha_tf.training.step_time import seconds_per_step, steps_within, stored_measurement, time_budget_minutes
from recaptcha_tf.utils.run_folder import RunFolder, write_json

log = logging.getLogger("recaptcha_tf")


def step_budget(steps_at_48x192: int, image_size: tuple[int, int]) -> int:
    """Optimizer steps for a text input of ``image_size``: ``steps_at_48x192`` for 48x192 and larger inputs, and
    for a smaller input as many more as take the same pixels (a 48x112 input gets 12/7 as many).

    A larger input is not given fewer steps: its run takes longer, and the time budget (``--time-budget``) is
    what holds it to 15 minutes of steps."""
    return max(steps_at_48x192, round(steps_at_48x192 * 48 * 192 / (image_size[0] * image_size[1])))


def validation_sample(count: int, cap: int, seed: int = 0) -> list[int]:
    """Indices of the validation images read during training: all ``count`` of them up to ``cap``, else a seeded
    random ``cap`` of them in their original order (split order can follow file names, i.e. labels: a first-N cut
    would be biased). Each evaluation reads them twice (loss, then CER), so on a large set an uncapped validation
    split costs minutes of the budget without choosing a better checkpoint; the test report reads the whole test
    split either way."""
    if count <= cap:
        return list(range(count))
    return sorted(np.random.default_rng(seed).choice(count, size=cap, replace=False).tolist())


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
    split: str | None = None,
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
    grayscale: bool | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    time_budget: float | None = None,
) -> dict:
    """Train a text CAPTCHA reader (``crnn`` with CTC or ``multihead``).

    The input size, crop and colour handling are fitted to the training images
    (:func:`recaptcha_tf.data.text.fit.fit_text_input`) unless ``image_size`` is given,
    and the budget is ``steps`` optimizer updates whatever the set's size (default
    4,000, more for inputs smaller than 48x192 (:func:`step_budget`), and at most what
    ``time_budget`` minutes allow on this machine), run as 20 epochs of equal steps over
    the repeated training set, unless ``epochs`` is given.

    Args:
        data: folder of images named by label, a Parquet file, or a folder of Parquet files.
        charset: vocabulary (e.g. ``"a-z0-9"``); labels outside it are an error.
            By default ``a-z0-9`` plus any other characters in the labels.
        case: ``"keep"``, ``"lower"`` or ``"upper"``.
        weights: the convolutional backbone's starting weights: a ``.weights.h5`` file or a trained
            ``.keras`` text model with the same backbone (e.g. one trained on synthetic CAPTCHAs).
        freeze_epochs: a first phase with that backbone frozen (default 3 with ``weights``, else 0);
            then ``unfreeze`` (``"all"`` or the top N blocks) at ``fine_tune_learning_rate``.
        fractions: ``"70/15/15"``-style train/val/test percentages, or the path of a ``split.json``
            (an earlier run's, or one written with :mod:`recaptcha_tf.data.splits`) to repeat its split.
        split: the path of such a ``split.json`` (the classifiers' spelling of the same thing); it wins
            over ``fractions``.
        val_data: a separate validation set; then ``data`` is split only into train/test
            by ``fractions`` ignoring its val part.
        steps: optimizer updates in all (rounded up to a multiple of 20); ignored with ``epochs``.
        time_budget: minutes of training steps the default budget may take on this machine (default 15;
            ``0``: no limit). Without ``steps`` or ``epochs``, a few steps of a copy of the model are timed
            first (:mod:`recaptcha_tf.training.step_time`), and the default budget is cut to what fits; the
            measurement is recorded in ``config.json`` and reused when the run resumes. Should the steps then
            run slower, training stops before an epoch that would end past 4/3 of the budget (20 minutes).
        colour: ``"auto"`` (the task default, ``"ink"``), ``"ink"`` (distance from each image's
            background colour, any polarity or text colour) or ``"gray"`` (grayscale, padded).
        grayscale: the classifiers' spelling of ``colour="gray"`` (``--grayscale``); ``True`` with
            ``colour="ink"`` is an error.
        image_column, label_column: Parquet column names (default: detected).

    Returns:
        Summary with epochs and steps run, wall time (s), the chosen input, ``plateau`` (the model
        still reads every image as empty text) and the test report (exact match, CER).
    """
    import keras

    from recaptcha_tf.data.pipeline import make_dataset, text_augmentation
    from recaptcha_tf.data.text.files import DEFAULT_LABEL_PATTERN
    from recaptcha_tf.data.text.fit import choose_text_input
    from recaptcha_tf.data.text.formats import load_text_dataset
    from recaptcha_tf.inference.decoding import decode_text_outputs
    from recaptcha_tf.models import build_text_model
    from recaptcha_tf.models.registry import model_cpu_bfloat16, model_head
    from recaptcha_tf.training.callbacks import (
        BlankPlateauWarning,
        PlateauAwareEarlyStopping,
        PredictionSamples,
        TextMetrics,
        TimeBudget,
    )

    d = task_defaults("text")
    time_budget = time_budget_minutes(time_budget, d["time_budget_minutes"])
    if grayscale and colour == "ink":
        raise ValueError("--grayscale and --colour ink contradict each other; pass one of them.")
    colour = "gray" if grayscale else d["colour"] if colour in (None, "auto") else colour
    if colour not in ("ink", "gray"):
        raise ValueError(f"--colour must be auto, ink or gray, got {colour!r}.")
    epochs, batch_size, learning_rate, steps = positive_or_default(
        {**d, "epochs": None, "steps": None},
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        steps=steps,
    )
    get_task("text").check_model(model, dict(model_kwargs or {}))
    kind = model_head(model)
    unfreeze = "all" if unfreeze is None else unfreeze
    weights_arg = weights
    weights, freeze_epochs, fine_tune_learning_rate = phase_settings(
        weights, freeze_epochs, epochs or 2**31, learning_rate, fine_tune_learning_rate, d["weights_freeze_epochs"]
    )
    dist, out, run_logdir, batch_size, (learning_rate, fine_tune_learning_rate) = set_up_distribution(
        strategy, out, logdir, run_name, batch_size, (learning_rate, fine_tune_learning_rate)
    )
    fractions = split or fractions
    columns = dict(image_column=image_column, label_column=label_column)
    text = text_task_data(data, out, charset, case, label_pattern, fractions, seed, max_length, **columns)
    dataset, vocab, max_length, parts = text.dataset, text.vocab, text.max_length, text.parts
    if val_data:
        text.parts["train"] = sorted(parts["train"] + parts["val"])  # text.sources("train") below includes val
    size_given = bool(image_size)
    fit = choose_text_input(text.sources("train"), max_length, image_size, colour, seed=seed)
    channels = 3 if fit.colour == "ink" else 1
    image_size = fit.image_size
    repeat = not epochs  # a step budget runs over the repeated training set; --epochs makes whole passes
    epochs = epochs or d["evaluations"]
    if freeze_epochs >= epochs:
        raise TrainingConfigError(f"--freeze-epochs {freeze_epochs} leaves no fine-tuning epochs of {epochs} epochs.")
    patience = max(3, int(np.ceil(d["patience_fraction"] * epochs))) if patience is None else patience
    log.info("%s%s", fit.describe(), " (--image-size given)" if size_given else "")

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
    val_count = len(val_sources)
    kept = validation_sample(val_count, d["validation_images"], seed)
    if len(kept) < val_count:
        log.info(
            "Validating on a seeded sample of %d of the %d validation images (each evaluation reads them twice); "
            "the test report reads the whole test split",
            len(kept),
            val_count,
        )
        val_sources, val_texts, val_targets = (
            [val_sources[i] for i in kept],
            [val_texts[i] for i in kept],
            val_targets[kept],
        )

    common = dict(image_size=fit.canvas_size(), channels=channels, resize=fit.resize, batch_size=batch_size)
    # With a per-image text crop the pipeline's images are a canvas 10-20 times the network's input: augmenting
    # them cost a third of every step. The model then augments its own input, after the crop, instead.
    augment_in_model = augment and fit.region is not None
    train_ds = make_dataset(
        text.sources("train"),
        text.targets("train", kind),
        shuffle=True,
        seed=seed,
        augment=text_augmentation(seed) if augment and not augment_in_model else None,
        **common,
    )
    val_ds = make_dataset(val_sources, val_targets, **common)
    train_ds, val_ds = shard_dataset(dist, train_ds), shard_dataset(dist, val_ds)
    if repeat:
        train_ds = train_ds.repeat()

    keras.utils.set_random_seed(seed)
    with precision_policy(precision, model_cpu_bfloat16(model)) as policy, dist.scope():
        net = build_text_model(
            model,
            vocab.characters,
            image_size,
            channels=channels,
            resize=fit.resize,
            max_length=max_length,
            colour=fit.colour,
            crop=fit.crop,
            region=fit.region,
            augmentation=text_augmentation(seed) if augment_in_model else None,
            **(model_kwargs or {}),
            **({"weights": weights} if weights_arg is not None else {}),
        )
        sync_batchnorm(dist, net)
        frames = net.output_shape[1]
        if kind == "ctc" and frames < 2 * max_length + 1:
            raise TrainingConfigError(
                f"The model reads {frames} frames, too few for labels of {max_length} characters; "
                "use a wider --image-size."
            )

        step_seconds = None
        if not repeat:  # whole passes over the training set
            steps_per_epoch = int(np.ceil(len(parts["train"]) / batch_size))
        else:  # the budget in a fixed number of "epochs" of equal steps
            default_steps = step_budget(d["steps"], image_size)
            budget = steps or default_steps
            if not steps and time_budget and dist.num_replicas_in_sync == 1:  # the default, held to the time budget
                # rounded as config.json stores it, so that a resumed run computes the very same budget
                stored = stored_measurement(
                    out, "step_seconds", model=model, image_size=image_size, batch_size=batch_size, precision=policy
                )
                step_seconds = round(stored or seconds_per_step(net, training_objective(kind)[0], train_ds), 4)
                budget = steps_within(default_steps, step_seconds, time_budget)
                if budget < default_steps:
                    log.warning(
                        "the default %d steps take %.0f minutes here (%.3f s a step): running the %d that fit "
                        "--time-budget %g minutes; --steps N runs exactly N",
                        default_steps,
                        default_steps * step_seconds / 60,
                        step_seconds,
                        budget,
                        time_budget,
                    )
            steps_per_epoch = int(np.ceil(budget / epochs))
    log.info(
        "%d epochs of %d steps (%d steps%s), early stopping after %d epochs without a better validation CER "
        "(or loss, at equal CER)",
        epochs,
        steps_per_epoch,
        epochs * steps_per_epoch,
        f", {step_seconds:.3f} s each here" if step_seconds else "",
        patience,
    )

    from recaptcha_tf.training.distribute import unsharded

    val_images = unsharded(make_dataset(val_sources, None, cache=True, **common))
    first = [TextMetrics(val_images, val_texts, vocab.characters, kind)]
    plateau = BlankPlateauWarning(
        steps=max(1, epochs * steps_per_epoch // 3),
        steps_per_epoch=steps_per_epoch,
        remedy="check that the file names hold the labels, then try --learning-rate 3e-4 or more --steps; "
        'the run summary marks it "plateau": true',
    )
    last = [plateau] if kind == "ctc" else []
    if step_seconds:  # the steps were timed on a few: should they run slower (a loaded host), stop in time
        limit = time_budget * d["time_limit_factor"]
        last.append(TimeBudget(limit))
        log.info("training stops before an epoch that would end past %.3g minutes, should the steps run slower", limit)
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
    if step_seconds:  # the default budget, held to --time-budget: a resumed run keeps this measurement
        config.update(step_seconds=step_seconds, time_budget_minutes=time_budget)
    if len(kept) < val_count:  # only when sampled, so the configs (and resume checks) of smaller sets are as before
        config["validation_images"] = len(kept)
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
        loss=training_objective(kind)[0],
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        repeat=repeat,
        freeze_epochs=freeze_epochs,
        unfreeze=unfreeze,
        learning_rate=learning_rate,
        fine_tune_learning_rate=fine_tune_learning_rate,
        run_logdir=run_logdir,
        monitor="val_cer_then_loss",
        mode="min",
        patience=patience,
        first_callbacks=first,
        last_callbacks=[*last, *callbacks],
        early_stopping=PlateauAwareEarlyStopping,
    )
    summary = {
        "out": out,
        **fitted,
        "steps": fitted["epochs_run"] * steps_per_epoch,
        "image_size": list(image_size),
        "crop": fit.crop,
        "content_region": fit.region,
        "plateau": plateau.on_plateau,
    }
    if parts["test"] and is_chief_process(dist):
        test = dataset.subset(parts["test"])
        report = evaluate_text_dataset(
            out, test, report=RunFolder(out).test_report, grid=RunFolder(out).test_predictions
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
    write_json(summary, RunFolder(out).summary)
    finish_run(out)
    return summary
