"""Deprecated: the old home of the training and evaluation workflows (this module goes in 0.3.0).

It only re-exports the workflow functions from the modules that now hold them; new code imports from those:

* :mod:`recaptcha_tf.training.classifier`: tile and character classifiers, and their splits;
* :mod:`recaptcha_tf.training.text`: text CAPTCHA readers;
* :mod:`recaptcha_tf.data.text.task_data`: a text dataset's vocabulary, targets and split;
* :mod:`recaptcha_tf.evaluation.workflow`: evaluating a saved model;
* :mod:`recaptcha_tf.training.phases`: the distribution strategy and the fine-tuning phases;
* :mod:`recaptcha_tf.training.run_folder`: a run folder's state (``--overwrite``, resume, atomic JSON);
* :func:`recaptcha_tf.tasks.task_defaults`: each task's defaults.
"""

import warnings

from recaptcha_tf.data.text.task_data import (
    TextTaskData,
    text_entry_name,
    text_split_names,
    text_split_parts,
    text_targets,
    text_task_data,
)
from recaptcha_tf.evaluation.workflow import evaluate, evaluate_text_dataset
from recaptcha_tf.tasks import task_defaults
from recaptcha_tf.training.classifier import prepare_folder_split, prepare_multilabel_split, train_classifier
from recaptcha_tf.training.phases import fit_in_phases
from recaptcha_tf.training.run_folder import RUN_STATE, clear_run_state
from recaptcha_tf.training.text import step_budget, train_text
from recaptcha_tf.utils.run_folder import write_json

_write_json = write_json  # the old private name

warnings.warn(
    "recaptcha_tf.runs is deprecated and goes in 0.3.0: import from recaptcha_tf.training, recaptcha_tf.evaluation",
    FutureWarning,
    stacklevel=2,
)

__all__ = [
    "RUN_STATE",
    "TextTaskData",
    "clear_run_state",
    "evaluate",
    "evaluate_text_dataset",
    "fit_in_phases",
    "prepare_folder_split",
    "prepare_multilabel_split",
    "step_budget",
    "task_defaults",
    "text_entry_name",
    "text_split_names",
    "text_split_parts",
    "text_targets",
    "text_task_data",
    "train_classifier",
    "train_text",
    "write_json",
]
