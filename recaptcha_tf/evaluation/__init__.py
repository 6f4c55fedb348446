"""Evaluation: metrics, the grid-challenge score, plots, and the evaluate workflow.

* :mod:`.metrics`: classification, multi-label and text reports (top-k, macro-F1, exact match, CER);
* :mod:`.challenge`: the 3x3 / 4x4 reCAPTCHA challenge score;
* :mod:`.plots`: confusion matrices, prediction grids and history curves;
* :mod:`.workflow`: ``recaptcha-tf evaluate``: a saved model on a test split, its report and figures.
"""

from recaptcha_tf.evaluation.metrics import (
    character_confusions,
    character_error_rate,
    classification_report,
    confusable_pairs,
    edit_distance,
    markdown_table,
    multilabel_report,
    text_report,
    top_k_accuracy,
    write_report,
)

__all__ = [
    "character_confusions",
    "character_error_rate",
    "classification_report",
    "confusable_pairs",
    "edit_distance",
    "markdown_table",
    "multilabel_report",
    "text_report",
    "top_k_accuracy",
    "write_report",
]
