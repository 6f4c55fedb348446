"""Evaluating a saved model on a data folder: ``recaptcha-tf evaluate``, the end of every training run, the tuner.

The reports themselves (accuracy, F1, CER, challenges) are computed in :mod:`recaptcha_tf.evaluation`;
this module picks the images (the run's test split or a new held-out set), predicts and writes the report.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Sequence

import numpy as np

from recaptcha_tf.data.folders import DatasetError, scan_class_folders
from recaptcha_tf.data.sources import same_folder
from recaptcha_tf.data.splits import MANIFEST_NAME, load_manifest
from recaptcha_tf.data.text.task_data import text_split_names

log = logging.getLogger("recaptcha_tf")


def ensemble_text_readings(model, outputs, members: Sequence[str], sources, beam_width: int = 0):
    """The readings of ``model`` (whose raw ``outputs`` on ``sources`` are given) and of the text models in
    ``members`` (run folders or ``.keras`` files), combined by a vote (:func:`~.decoding.vote_texts`):
    each model reads every image, and the text most of them read wins, ties going to the most confident reading
    (so with two models, the more confident one).

    Averaging the per-frame probabilities before decoding (:func:`~.decoding.average_text_outputs`)
    is not used: two CTC runs of one recipe place their characters on different frames, and the averaged frames
    read worse than the vote (``benchmarks/text_ensemble.py``). The members may differ in input size,
    architecture (CTC or multi-head) and characters.

    Returns:
        one ``(text, confidences)`` pair per image.
    """
    from recaptcha_tf.inference.decoding import decode_text_outputs, vote_texts
    from recaptcha_tf.inference.loading import load_model, model_info
    from recaptcha_tf.inference.predictor import predict_outputs

    info = model_info(model)
    readings = [decode_text_outputs(outputs, info.names, info.kind, beam_width)]
    for member in members:
        other = load_model(member)
        other_info = model_info(other)
        if other_info.task != "text":
            raise DatasetError(f"--ensemble {member}: a {other_info.task} model, not a text model.")
        readings.append(
            decode_text_outputs(predict_outputs(other, sources), other_info.names, other_info.kind, beam_width)
        )
    return vote_texts(readings)


def run_subset(dataset, model: str, subset: str):
    """The images of the text set ``dataset`` that the run of ``model`` (a run folder or its ``.keras`` file) put
    in ``subset`` (``"train"``, ``"val"`` or ``"test"``), as a smaller :class:`TextDataset`."""
    run_dir = model if os.path.isdir(model) else os.path.dirname(model)
    wanted = set(text_split_names(os.path.join(run_dir, MANIFEST_NAME), subset))
    return dataset.subset([i for i, n in enumerate(dataset.names) if n in wanted])


def evaluate_text_dataset(
    model_path: str,
    dataset,
    report: str | None = None,
    grid: str | None = None,
    beam_width: int = 0,
    model=None,
    ensemble: Sequence[str] = (),
    case: str = "keep",
) -> dict:
    """Exact match, CER, worst examples and the coverage-precision table of abstention (``abstention``) of a text
    model on a :class:`TextDataset`; ``ensemble`` names more text runs whose readings are combined with this
    model's (:func:`ensemble_text_readings`). ``case`` (``"lower"``/``"upper"``) folds the readings as the labels
    were folded, to score case-insensitively."""
    from recaptcha_tf.evaluation.metrics import coverage_precision, text_report, write_report
    from recaptcha_tf.evaluation.plots import prediction_grid, save_figure
    from recaptcha_tf.inference.abstention import text_confidence
    from recaptcha_tf.inference.decoding import decode_text_outputs
    from recaptcha_tf.inference.loading import load_model, model_info
    from recaptcha_tf.inference.predictor import predict_outputs

    model = model or load_model(model_path)
    info = model_info(model)
    fold = {"lower": str.lower, "upper": str.upper}.get(case, str)
    readable = {fold(c) for c in info.names}  # the characters the model can output, folded as the readings are
    for lab, name in zip(dataset.labels, dataset.names):
        bad = sorted(set(lab) - readable)
        if bad:
            log.warning("%s: label %r has characters the model cannot output: %s", name, lab, bad)
    start = time.perf_counter()
    outputs = predict_outputs(model, dataset.sources)
    if ensemble:
        decoded = ensemble_text_readings(model, outputs, ensemble, dataset.sources, beam_width)
    else:
        decoded = decode_text_outputs(outputs, info.names, info.kind, beam_width)
    seconds = time.perf_counter() - start
    texts = [t.lower() if case == "lower" else t.upper() if case == "upper" else t for t, _ in decoded]
    result = text_report(dataset.labels, texts, [c for _, c in decoded], dataset.names)
    result["case"] = case
    result["abstention"] = coverage_precision(
        [t == r for t, r in zip(texts, dataset.labels)], [text_confidence(c) for _, c in decoded]
    )
    result["images_per_second"] = len(texts) / max(seconds, 1e-9)
    result["ms_per_image"] = 1000 * seconds / max(len(texts), 1)
    if ensemble:
        result["ensemble"] = [os.path.abspath(m) for m in ensemble]
        result["ensemble_method"] = "vote"
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
    # the run's data: the folder it was given, or the one its split's files come from (a `balance` output's
    # split keeps the original folder as its root; its test images are there)
    same = any(same_folder(folder, data) for folder in (saved.extra.get("data"), saved.root) if folder)
    if subset == "auto":
        return "test" if same and saved.test else None
    return subset


def trained_case(model: str) -> str:
    """The ``--case`` a text run was trained with (its ``config.json`` beside ``model.keras``); ``keep`` without one."""
    from recaptcha_tf.utils.run_folder import RunFolder

    folder = model if os.path.isdir(model) else os.path.dirname(os.path.abspath(model))
    config = RunFolder(folder).read_json(RunFolder.CONFIG) if os.path.isdir(folder) else None
    return (config.get("case") if isinstance(config, dict) else None) or "keep"


def evaluate(
    model: str,
    data: str,
    report: str | None = None,
    subset: str = "auto",
    plot: str | None = None,
    beam_width: int = 0,
    label_pattern: str | None = None,
    case: str | None = None,
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
    Text: ``case`` (``keep``/``lower``/``upper``) folds labels and readings; ``None`` takes the run's own
    ``--case`` from its ``config.json`` (``keep`` for a model without one).
    Writes the JSON report and a confusion-matrix / prediction-grid PNG beside it.
    The model's task (:mod:`recaptcha_tf.tasks`) does the evaluation: :func:`evaluate_text`
    or :func:`evaluate_classifier`, each taking the options that apply to it.
    """
    from recaptcha_tf.inference.loading import load_model, model_info
    from recaptcha_tf.tasks import get_task

    net = load_model(model)
    info = model_info(net)
    return get_task(info.task).run_workflow(
        "evaluate",
        model,
        data,
        net=net,
        info=info,
        subset=_subset_for(model, data, subset),
        report=report,
        plot=plot,
        beam_width=beam_width,
        label_pattern=label_pattern,
        case=case,
        labels_csv=labels_csv,
        challenges=challenges,
        image_column=image_column,
        label_column=label_column,
        allow_outside_data=allow_outside_data,
        tta=tta,
        ensemble=ensemble,
    )


def evaluate_text(
    model: str,
    data: str,
    *,
    net,
    info,
    subset: str | None,
    report: str | None = None,
    plot: str | None = None,
    beam_width: int = 0,
    label_pattern: str | None = None,
    case: str | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    tta: str = "none",
    ensemble: Sequence[str] = (),
) -> dict:
    """The ``text`` task's evaluation: exact match, CER and the worst examples of ``net`` (loaded from ``model``)
    on the ``subset`` (``"test"``, ...; ``None``: every image) of the text set ``data``. ``ensemble`` names more
    text runs combined with this one (:func:`ensemble_text_readings`); ``tta`` is for tile classifiers and
    refused."""
    from recaptcha_tf.data.text.files import DEFAULT_LABEL_PATTERN
    from recaptcha_tf.data.text.formats import load_text_dataset
    from recaptcha_tf.evaluation.metrics import write_report

    if tta != "none":
        raise ValueError("--tta is for tile classifiers, not text models.")
    case = case or trained_case(model)
    stem = os.path.splitext(report)[0] if report else None
    dataset = load_text_dataset(
        data,
        pattern=label_pattern or DEFAULT_LABEL_PATTERN,
        case=case,
        image_column=image_column,
        label_column=label_column,
    )
    if subset:
        dataset = run_subset(dataset, model, subset)
    result = evaluate_text_dataset(
        model,
        dataset,
        report,
        grid=(stem + "_predictions.png") if stem else plot,
        beam_width=beam_width,
        model=net,
        ensemble=ensemble,
        case=case,
    )
    result["subset"] = subset or "all"
    if report:
        write_report(result, report)
    return result


def evaluate_classifier(
    model: str,
    data: str,
    *,
    net,
    info,
    subset: str | None,
    report: str | None = None,
    plot: str | None = None,
    labels_csv: str | None = None,
    challenges: int = 500,
    allow_outside_data: bool = False,
    tta: str = "none",
    ensemble: Sequence[str] = (),
) -> dict:
    """The ``tiles`` and ``chars`` tasks' evaluation of ``net`` (loaded from ``model``) on the ``subset`` of the
    run's split (``None``: every image of the class folders ``data``).

    Reports include the challenge-level score on ``challenges`` seeded 3x3 and 4x4 grids of the evaluated
    images (``0`` skips it). Multi-label models read their labels from ``labels_csv`` (``path,labels``)
    or, without it, from the class folders. ``tta="flip"`` averages each image's probabilities with
    its mirror image's (tiles); ``ensemble`` names more runs (or ``.keras`` files) with the same class
    names whose probabilities are averaged with this model's.
    """
    from recaptcha_tf.evaluation.challenge import challenge_report
    from recaptcha_tf.evaluation.metrics import classification_report, multilabel_report, write_report
    from recaptcha_tf.evaluation.plots import confusion_matrix_figure, save_figure
    from recaptcha_tf.inference.loading import load_model, model_info
    from recaptcha_tf.inference.predictor import predict_outputs

    stem = os.path.splitext(report)[0] if report else None
    which = subset
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
    if info.kind == "softmax" and len(paths):
        if ensemble:  # averaged probabilities: no temperature to undo and no stored thresholds of their own
            info = dataclasses.replace(info, temperature=1.0, min_confidence=None, challenge_threshold=None)
        result["calibration"] = calibration_report(probs, labels, info, challenges)
        if stem:
            from recaptcha_tf.evaluation.plots import reliability_figure

            save_figure(reliability_figure(result["calibration"]), stem + "_reliability.png")
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


def calibration_report(probs: np.ndarray, labels, info, challenges: int = 500) -> dict:
    """How far to trust a single-label classifier's probabilities ``(N, C)`` (as the model outputs them: calibrated
    when it stores a temperature): ECE and the reliability bins, with the uncalibrated figures beside them; the
    background false-positive rate (``other`` tiles scoring 0.7 or more for an object class); and, with a
    ``--min-confidence`` threshold stored in the model, top-1, macro-F1 and the challenge scores when tiles below
    it are answered ``other``; with a grid challenge threshold stored, the challenge scores when grids pick the
    cells whose target probability reaches it."""
    from recaptcha_tf.evaluation.calibration import (
        abstain,
        background_false_positive_rate,
        macro_f1,
        reliability,
        rescale,
    )
    from recaptcha_tf.evaluation.challenge import challenge_report

    labels = np.asarray(labels)
    uncalibrated = rescale(probs, 1.0 / info.temperature) if info.temperature != 1.0 else probs  # softmax(T log p')
    calibrated, raw = reliability(probs, labels), reliability(uncalibrated, labels)
    report = {
        "temperature": info.temperature,
        "ece": calibrated["ece"],
        "ece_uncalibrated": raw["ece"],
        "reliability": calibrated["bins"],
        "background_false_positive_rate": background_false_positive_rate(probs, labels, info.names),
        "background_false_positive_rate_uncalibrated": background_false_positive_rate(uncalibrated, labels, info.names),
        "min_confidence": info.min_confidence,
    }
    if info.min_confidence is not None:
        predicted = abstain(probs, info.names, info.min_confidence)
        report["abstaining"] = {
            "top1": float(np.mean(predicted == labels)),
            "macro_f1": macro_f1(predicted, labels),
            "challenge": challenge_report(
                probs, labels, info.names, count=challenges, min_confidence=info.min_confidence
            )
            if challenges
            else None,
        }
    if info.challenge_threshold is not None and challenges:
        report["challenge_threshold"] = info.challenge_threshold
        report["thresholded_challenge"] = challenge_report(
            probs, labels, info.names, count=challenges, threshold=info.challenge_threshold
        )
    return report
