"""Search spaces as data: built-in spaces, YAML/JSON files, or plain dicts.

A search space maps hyperparameter names to the list of values to try::

    optimizer: [adam, rmsprop, sgd+momentum, nadam, adamw]
    loss: [sparse_categorical_crossentropy, label_smoothed_crossentropy, focal]
    activation: [relu, leaky_relu, elu, gelu]
    learning_rate: [0.001, 0.003]

Names are the training knobs (``optimizer``, ``loss``, ``learning_rate``), the
architecture names of the issue (``c2d_layers``, ``c2d_filters``,
``dense_layers``, ``dense_neurons``, ``dropout``, ``activation``, mapped onto
each model's builder arguments), or any scalar argument of the model's builder
(``stem_stride``, ``rnn``, ``width`` ...). A scalar instead of a list fixes a value.
:func:`load_search_space` validates a space for a task and model and raises
:class:`TuningError` with a message naming the offending key and value.
"""

from __future__ import annotations

import inspect
import json
import math
import os

from recaptcha_tf.tasks import get_task, task_names

# The built-in spaces of issue #4, for the tile/char CNN. For other models the
# keys that model has no knob for are dropped (see `builtin_space`).
BUILTIN_SPACES: dict[str, dict[str, list]] = {
    "optimizers": {
        "optimizer": ["adam", "rmsprop", "sgd+momentum", "nadam", "adamw"],
        "loss": ["sparse_categorical_crossentropy", "label_smoothed_crossentropy", "focal"],
        "activation": ["relu", "leaky_relu", "elu", "gelu"],
        "learning_rate": [0.001, 0.003],
    },
    "architecture": {
        "c2d_layers": [3, 4, 5],
        "c2d_filters": [16, 32, 64],
        "dense_layers": [1, 2],
        "dense_neurons": [128, 256],
        "dropout": [0.2, 0.4],
    },
}

TRAINING_KEYS = ("optimizer", "loss", "learning_rate")
OPTIMIZERS = ("adam", "adamw", "nadam", "rmsprop", "sgd", "sgd+momentum")
CLASSIFIER_LOSSES = ("sparse_categorical_crossentropy", "label_smoothed_crossentropy", "focal")
LOSS_ALIASES = {
    "crossentropy": "sparse_categorical_crossentropy",
    "categorical_crossentropy": "sparse_categorical_crossentropy",
    "cross_entropy": "sparse_categorical_crossentropy",
    "label_smoothing": "label_smoothed_crossentropy",
    "label_smoothed_cross_entropy": "label_smoothed_crossentropy",
    "focal_loss": "focal",
    "categorical_focal_crossentropy": "focal",
}

# Architecture names of the built-in spaces; each registered model maps them to its own builder arguments
# (register_model(tune_aliases=...)). For sequence models c2d_layers/c2d_filters become a `filters` list (see
# model_kwargs below).
ARCHITECTURE_KEYS = ("c2d_layers", "c2d_filters", "dense_layers", "dense_neurons", "dropout", "activation")
# Builder arguments a space may not set (fixed by the task and data).
RESERVED = {"input_shape", "num_classes", "output_activation", "name", "max_length"}


# Objectives, trial metrics and the default model of each task come from its spec (recaptcha_tf.tasks).


class TuningError(ValueError):
    """A search space, objective or tuner setting that cannot be used (a user error)."""


def resolve_objective(objective: str | None, task: str) -> tuple[str, str]:
    """``"macro_f1"`` / ``"val_macro_f1"`` ... -> (log name, ``"min"`` or ``"max"``), from the task's spec."""
    try:
        spec = get_task(task)
    except ValueError as err:
        raise TuningError(str(err)) from None
    name = objective or spec.default_objective
    if not name.startswith("val_"):
        name = "val_" + name
    if name not in spec.objectives:
        raise TuningError(
            f"Objective {objective!r} does not fit task {task!r}; choose from {[k[4:] for k in spec.objectives]}."
        )
    return name, spec.objectives[name]


def _builder_params(model: str) -> dict[str, inspect.Parameter]:
    from recaptcha_tf.models.registry import model_builder

    try:
        builder = model_builder(model)
    except ValueError as err:
        raise TuningError(str(err)) from None
    return {
        n: p
        for n, p in inspect.signature(builder).parameters.items()
        if n not in RESERVED and p.kind is not inspect.Parameter.VAR_KEYWORD
    }


def allowed_keys(task: str, model: str) -> list[str]:
    """Every name a space may use for this task and model."""
    from recaptcha_tf.models.registry import model_tune_aliases

    aliases = model_tune_aliases(model)
    keys = list(TRAINING_KEYS) + [k for k in ARCHITECTURE_KEYS if k in aliases]
    mapped = set(aliases.values())
    return keys + sorted(k for k in _builder_params(model) if k not in mapped and k not in keys)


def losses_for(task: str, model: str) -> tuple[str, ...]:
    from recaptcha_tf.models.registry import model_head

    return ("ctc",) if model_head(model) == "ctc" else CLASSIFIER_LOSSES


def builtin_space(name: str, task: str, model: str) -> dict[str, list]:
    """A built-in space adapted to ``model``: keys it has no knob for are dropped, CTC models keep their loss."""
    if name not in BUILTIN_SPACES:
        raise TuningError(
            f"Unknown built-in search space {name!r}; choose from {sorted(BUILTIN_SPACES)} or pass a YAML/JSON file."
        )
    keys = set(allowed_keys(task, model))
    space = {k: list(v) for k, v in BUILTIN_SPACES[name].items() if k in keys}
    if "loss" in space and losses_for(task, model) == ("ctc",):
        del space["loss"]  # a CTC model has exactly one loss
    if not space:
        raise TuningError(
            f"The built-in space {name!r} has no knob that model {model!r} takes; "
            f"write a space file with keys from {allowed_keys(task, model)}."
        )
    return space


def _read_space_file(path: str) -> dict:
    if not os.path.exists(path):
        raise TuningError(f"Search space file {path!r} does not exist.")
    with open(path) as f:
        text = f.read()
    try:
        if path.lower().endswith(".json"):
            return json.loads(text)
        import yaml

        return yaml.safe_load(text)
    except Exception as err:  # noqa: BLE001  yaml.YAMLError, json.JSONDecodeError
        raise TuningError(f"Cannot parse search space file {path!r}: {str(err).splitlines()[0]}") from None


def _check_number(key, value, minimum=None, maximum=None, integer=False, below=None):
    if isinstance(value, str):  # PyYAML reads 1e-3 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TuningError(f"{key}: {value!r} is not a number.")
    if integer and int(value) != value:
        raise TuningError(f"{key}: {value!r} is not a whole number.")
    if minimum is not None and value < minimum:
        raise TuningError(f"{key}: {value!r} is below the minimum {minimum}.")
    if maximum is not None and value > maximum:
        raise TuningError(f"{key}: {value!r} is above the maximum {maximum}.")
    if below is not None and value >= below:
        raise TuningError(f"{key}: {value!r} must be below {below}.")
    return int(value) if integer else value


def _check_value(key: str, value, task: str, model: str, image_size=None):
    if key == "optimizer":
        if value not in OPTIMIZERS:
            raise TuningError(f"optimizer: unknown {value!r}; choose from {list(OPTIMIZERS)}.")
        return value
    if key == "loss":
        value = LOSS_ALIASES.get(value, value) if isinstance(value, str) else value
        fits = losses_for(task, model)
        if value not in fits:
            if value in CLASSIFIER_LOSSES or value == "ctc":
                why = "it trains with CTC" if fits == ("ctc",) else "its outputs are class probabilities"
                raise TuningError(
                    f"loss {value!r} does not fit task {task!r} with model {model!r} ({why}); use one of {list(fits)}."
                )
            raise TuningError(f"loss: unknown {value!r}; choose from {list(fits)}.")
        return value
    if key == "learning_rate":
        value = _check_number(key, value)
        if value <= 0:
            raise TuningError(f"learning_rate: {value!r} must be positive.")
        return float(value)
    if key == "activation":
        from recaptcha_tf.models.cnn import ACTIVATIONS

        if value not in ACTIVATIONS:
            raise TuningError(f"activation: unknown {value!r}; choose from {list(ACTIVATIONS)}.")
        return value
    if key == "dropout":
        return float(_check_number(key, value, minimum=0, below=1))
    if key in ("c2d_layers", "c2d_filters", "dense_neurons"):
        value = _check_number(key, value, minimum=1, integer=True)
        if key == "c2d_layers" and _is_sequence_model(model) and image_size:
            limit = int(math.log2(image_size[0]))
            if value > limit:
                raise TuningError(
                    f"c2d_layers: {value} conv stages halve a {image_size[0]}-pixel-high image "
                    f"below one row; use at most {limit} or a larger --image-size."
                )
        return value
    if key == "dense_layers":
        return _check_number(key, value, minimum=1 if _is_sequence_model(model) else 0, integer=True)
    # a builder argument: scalars only (keras-tuner choices are int, float, str or bool)
    if not isinstance(value, (str, int, float, bool)) or value is None:
        raise TuningError(
            f"{key}: {value!r} is not a single number, string or boolean; a space lists scalar values only."
        )
    return value


def load_search_space(space, task: str, model: str | None = None, image_size=None) -> dict[str, list]:
    """Read and validate a search space for ``task`` (and ``model``; default cnn, or crnn for text).

    Args:
        space: a built-in name (``"optimizers"``, ``"architecture"``), a path to a
            ``.yaml``/``.yml``/``.json`` file, or a dict of name -> list of values.
        task: ``"tiles"``, ``"chars"`` or ``"text"``.
        model: registry name of the model to tune.
        image_size: ``(height, width)``, to check architecture values that depend on it.

    Returns:
        ``{name: [values...]}`` with canonical names and value types (numbers that
        mix ints and floats become floats).

    Raises:
        TuningError: unknown keys, empty or duplicate lists, values of the wrong
            type or out of range, and values that do not fit the task (focal loss
            for a CTC model).
    """
    if task not in task_names():
        raise TuningError(f"Unknown task {task!r}; choose from {list(task_names())}.")
    model = model or get_task(task).tune_model
    if isinstance(space, str) and space in BUILTIN_SPACES and not os.path.exists(space):
        raw = builtin_space(space, task, model)
    elif isinstance(space, (str, os.PathLike)):
        raw = _read_space_file(os.fspath(space))
    else:
        raw = space
    if not isinstance(raw, dict) or not raw:
        raise TuningError(
            "A search space must be a non-empty mapping of hyperparameter names to lists of values, "
            f"got {type(raw).__name__}."
        )
    allowed = allowed_keys(task, model)
    out: dict[str, list] = {}
    for key, values in raw.items():
        if not isinstance(key, str) or key not in allowed:
            raise TuningError(
                f"Unknown hyperparameter {key!r} for task {task!r} with model {model!r}; choose from {allowed}."
            )
        if not isinstance(values, (list, tuple)):
            values = [values]
        if not values:
            raise TuningError(f"{key}: the list of values is empty.")
        checked = [_check_value(key, v, task, model, image_size) for v in values]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in checked) and any(
            isinstance(v, float) for v in checked
        ):
            checked = [float(v) for v in checked]
        types = {type(v) for v in checked}
        if len(types) > 1:
            raise TuningError(f"{key}: values mix types {sorted(t.__name__ for t in types)}: {list(values)}.")
        if len(set(checked)) != len(checked):
            raise TuningError(f"{key}: repeated values in {list(values)}; a grid would run them twice.")
        out[key] = checked
    return out


def grid_size(space: dict[str, list]) -> int:
    """Trials in the full grid: the product of the lengths of the value lists."""
    return math.prod(len(v) for v in space.values())


def _is_sequence_model(model: str) -> bool:
    """Text models with the CRNN's conv stages and RNN (their ``filters`` is a list, one per stage)."""
    from recaptcha_tf.models.registry import is_sequence_head, model_head

    return is_sequence_head(model_head(model))


def model_kwargs(model: str, values: dict, base: dict | None = None) -> dict:
    """Builder arguments for ``model`` from a trial's values (training keys are skipped).

    ``c2d_layers``/``c2d_filters`` on ``crnn`` become its ``filters`` list
    (doubling from ``c2d_filters``, at most 128) and ``width_pooling`` (2, 2, 1, ...).
    """
    from recaptcha_tf.models.registry import model_tune_aliases

    aliases = model_tune_aliases(model)
    kw = dict(base or {})
    for key, value in values.items():
        if key in TRAINING_KEYS or key.startswith("tuner/"):
            continue
        kw[aliases.get(key, key)] = value
    if _is_sequence_model(model) and ("conv_layers" in kw or isinstance(kw.get("filters"), int)):
        n = int(kw.pop("conv_layers", 4))
        first = kw.get("filters", 32)
        first = first if isinstance(first, int) else list(first)[0]
        kw["filters"] = [min(first * 2**i, 128) for i in range(n)]
        kw["width_pooling"] = ([2, 2] + [1] * n)[:n]
    return kw
