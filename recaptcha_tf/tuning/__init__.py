"""Hyperparameter search with Keras Tuner, logged to TensorBoard HParams.

* :mod:`~recaptcha_tf.tuning.spaces`: search spaces as data (built-in ``optimizers`` and
  ``architecture``, YAML/JSON files, dicts) and their validation per task.
* :mod:`~recaptcha_tf.tuning.hypermodel`: the task data, the ``keras_tuner.HyperModel``
  and the per-trial HParams logging.
* :mod:`~recaptcha_tf.tuning.tuners`: grid (resumable), random, Hyperband and Bayesian tuners.
* :mod:`~recaptcha_tf.tuning.search`: :func:`run_search`, results table and plot, best model.

From a notebook::

    from recaptcha_tf.tuning import run_search
    summary = run_search("data/tiles", task="tiles", space={"optimizer": ["adam", "nadam"],
                         "learning_rate": [1e-3, 3e-3]}, tuner="grid", epochs=8, name="my-grid")
"""

from recaptcha_tf.tuning.spaces import (
    BUILTIN_SPACES,
    TuningError,
    builtin_space,
    grid_size,
    load_search_space,
    resolve_objective,
)

__all__ = [
    "BUILTIN_SPACES",
    "TuningError",
    "builtin_space",
    "grid_size",
    "load_search_space",
    "resolve_objective",
    "run_search",
    "make_tuner",
    "CaptchaHyperModel",
]


def __getattr__(name):  # keep `import recaptcha_tf.tuning` light (no TensorFlow until needed)
    if name == "run_search":
        from recaptcha_tf.tuning.search import run_search

        return run_search
    if name == "make_tuner":
        from recaptcha_tf.tuning.tuners import make_tuner

        return make_tuner
    if name == "CaptchaHyperModel":
        from recaptcha_tf.tuning.hypermodel import CaptchaHyperModel

        return CaptchaHyperModel
    raise AttributeError(name)
