"""The old home of the training and evaluation workflows, kept so that old callers and notebooks still work.

It only re-exports the workflow functions from the modules that now hold them; new code imports from those:

* :mod:`recaptcha_tf.train_classifier`: tile and character classifiers, and their splits;
* :mod:`recaptcha_tf.train_text`: text CAPTCHA readers;
* :mod:`recaptcha_tf.text_data`: a text dataset's vocabulary, targets and split;
* :mod:`recaptcha_tf.evaluate_model`: evaluating a saved model;
* :mod:`recaptcha_tf.phases`: the distribution strategy and the fine-tuning phases;
* :mod:`recaptcha_tf.run_folder`: a run folder's state (``--overwrite``, resume, atomic JSON);
* :func:`recaptcha_tf.tasks.task_defaults`: each task's defaults.
"""

from recaptcha_tf.evaluate_model import evaluate, evaluate_text_dataset
from recaptcha_tf.phases import fit_in_phases
from recaptcha_tf.run_folder import RUN_STATE, clear_run_state, write_json
from recaptcha_tf.tasks import task_defaults
from recaptcha_tf.text_data import (
    TextTaskData,
    text_entry_name,
    text_split_names,
    text_split_parts,
    text_targets,
    text_task_data,
)
from recaptcha_tf.train_classifier import prepare_folder_split, prepare_multilabel_split, train_classifier
from recaptcha_tf.train_text import step_budget, train_text

_write_json = write_json  # the old private name

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
