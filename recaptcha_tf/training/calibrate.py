"""After training a single-label classifier: fit its temperature and choose its abstention threshold and its grid
challenge threshold on the validation split, and store them in the saved model
(:class:`recaptcha_tf.layers.LabelNames`).

Idempotent: the validation probabilities are read with the stored temperature reset to 1, so calibrating again
(a resumed run) fits the same temperature, never a product of two.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

log = logging.getLogger("recaptcha_tf")


def calibrate_model(model_path: str, val_paths: Sequence[str], val_labels: Sequence[int]) -> dict:
    """Fit the temperature, the ``--min-confidence`` default and the grid challenge threshold of the model at
    ``model_path`` (rewritten in place, atomically) on the validation images.

    Returns:
        ``{"temperature", "min_confidence", "challenge_threshold", "val_nll", "val_nll_uncalibrated", "val_ece",
        "val_ece_uncalibrated", "val_macro_f1_abstaining", "val_macro_f1", "val_grids_solved",
        "val_grids_solved_argmax"}`` (grids: 3x3 and 4x4 together).
    """
    from recaptcha_tf.evaluation.calibration import (
        choose_min_confidence,
        fit_temperature,
        negative_log_likelihood,
        reliability,
        rescale,
    )
    from recaptcha_tf.evaluation.challenge import choose_challenge_threshold
    from recaptcha_tf.inference.loading import load_model
    from recaptcha_tf.inference.predictor import predict_outputs
    from recaptcha_tf.models import label_names_layer

    net = load_model(model_path)
    layer = label_names_layer(net)
    layer.temperature, layer.min_confidence, layer.challenge_threshold = 1.0, None, None
    probs = predict_outputs(net, list(val_paths))
    temperature = fit_temperature(probs, val_labels)
    calibrated = rescale(probs, temperature)
    threshold = choose_min_confidence(calibrated, val_labels, layer.names)
    grids = choose_challenge_threshold(calibrated, val_labels, layer.names)
    layer.temperature, layer.min_confidence = temperature, threshold["min_confidence"]
    layer.challenge_threshold = grids["challenge_threshold"]
    tmp = f"{model_path}.calibrating.keras"
    net.save(tmp)
    os.replace(tmp, model_path)
    result = {
        "temperature": round(temperature, 4),
        "min_confidence": threshold["min_confidence"],
        "val_nll": negative_log_likelihood(calibrated, val_labels),
        "val_nll_uncalibrated": negative_log_likelihood(probs, val_labels),
        "val_ece": reliability(calibrated, val_labels)["ece"],
        "val_ece_uncalibrated": reliability(probs, val_labels)["ece"],
        "val_macro_f1_abstaining": threshold["macro_f1"],
        "val_macro_f1": threshold["macro_f1_without"],
        "challenge_threshold": grids["challenge_threshold"],
        "val_grids_solved": grids["solved"],
        "val_grids_solved_argmax": grids["solved_argmax"],
    }
    log.info(
        "calibrated on %d validation images: temperature %.3f (ECE %.3f -> %.3f), --min-confidence default %s, "
        "grid challenge threshold %s",
        len(val_paths),
        temperature,
        result["val_ece_uncalibrated"],
        result["val_ece"],
        result["min_confidence"],
        result["challenge_threshold"],
    )
    return result
