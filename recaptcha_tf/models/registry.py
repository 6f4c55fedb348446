"""One registry of model builders, shared by the CLI, the tuner and notebooks.

Modelled on timm's registry: a builder is a plain function decorated with
:func:`register_model`; :func:`build_model` looks it up by name.

Every builder has the signature::

    builder(input_shape, num_classes, *, output_activation="softmax", **kwargs) -> keras.Model

It takes float images with pixel values in ``[0, 255]`` of ``input_shape =
(height, width, channels)``, applies its own input normalisation inside the
model, and returns ``(B, num_classes)`` outputs (or ``(B, T, num_classes)`` for
sequence models). :func:`recaptcha_tf.models.build_classifier` wraps it with the
raw-image input (any size) and the label names.
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
import warnings
from collections.abc import Callable

import keras

# BatchNormalization moving-average momentum for every builder. Keras's default
# (0.99) averages over ~100 steps, which lags far behind the weights in short
# CPU runs, so inference-mode outputs disagree with training (seen as a CTC
# model whose training loss reaches 0.01 while validation decodes nothing).
# 0.9 matches PyTorch's default (its momentum=0.1).
BN_MOMENTUM = 0.9


class ModelConfigError(ValueError, TypeError):
    """An unknown model name, or builder arguments it does not take or of the wrong type."""


_MODELS: dict[str, Callable[..., keras.Model]] = {}
_HEADS: dict[str, str] = {}
_RECIPES: dict[str, dict] = {}
_TUNE_ALIASES: dict[str, dict[str, str]] = {}
_BLOCKS: dict[str, str | None] = {}
_CPU_BFLOAT16: dict[str, bool] = {}
HEADS = ("classifier", "ctc", "multihead")  # the built-in head kinds; plug-ins add theirs with register_head_kind
_HEAD_KINDS: list[str] = list(HEADS)
# Head kinds whose outputs are character sequences, decoded to text (recaptcha_tf.inference.decoding).
SEQUENCE_HEADS = ("ctc", "multihead")


def is_sequence_head(kind: str) -> bool:
    """Whether outputs of head kind ``kind`` (a model's ``ModelInfo.kind``) are decoded to text."""
    return kind in SEQUENCE_HEADS


def register_head_kind(kind: str) -> None:
    """Allow models of a new head kind (e.g. ``"regression"`` for a slider puzzle's gap); tasks that take it list it
    in their ``heads``, and :func:`recaptcha_tf.inference.outputs.register_output_kind` says how its outputs read."""
    if kind not in _HEAD_KINDS:
        _HEAD_KINDS.append(kind)


def head_kinds() -> tuple[str, ...]:
    """Every head kind a model may declare: the built-in ones and those registered."""
    return tuple(_HEAD_KINDS)


def register_model(
    name: str,
    head: str = "classifier",
    pretrained: dict | None = None,
    tune_aliases: dict[str, str] | None = None,
    blocks: str | None = None,
    cpu_bfloat16: bool = True,
    tasks: tuple[str, ...] | None = None,
):
    r"""Decorator adding a builder to the registry under ``name``; the tasks whose ``heads`` include ``head`` use it.

    ``head`` is what its outputs are: ``"classifier"`` (``(B, classes)``, softmax or
    sigmoid), ``"ctc"`` (per-frame logits ``(B, T, C + 1)``) or ``"multihead"``
    (per-position probabilities ``(B, L, C + 1)``).

    ``pretrained`` is the entry's transfer recipe (as timm's ``default_cfgs``): the
    training defaults used when the model starts from pretrained weights, e.g.
    ``image_size``, ``epochs``, ``freeze_epochs``, ``unfreeze``, ``learning_rate``,
    ``fine_tune_learning_rate``, ``batch_size``, ``label_smoothing``. Arguments the user
    gives win over it, and it wins over the task's defaults.

    ``tune_aliases`` maps the search spaces' architecture names (``c2d_layers``,
    ``c2d_filters``, ``dense_layers``, ``dense_neurons``, ``dropout``, ``activation``)
    to the builder's own arguments (e.g. ``{"dense_neurons": "dense_units"}``), so the
    built-in spaces search this model; its other arguments are searchable by their own names.

    ``blocks`` says where the backbone's blocks are, for ``--unfreeze N`` (the top N blocks):
    a regular expression whose first group is a block's name in its layers' names, e.g.
    ``r"^(block_\d+)(_|$)"`` for MobileNetV2's ``block_16_project``. Without it the
    generic pattern of :mod:`recaptcha_tf.models.finetune` applies.

    ``cpu_bfloat16=False`` says bfloat16 trains this model slower than float32 on a CPU, even one with
    bfloat16 instructions (depthwise convolutions: 1.7x slower for EfficientNet-Lite0, 1.6x for MobileNetV2
    on 2 AVX512-BF16 cores), so ``--precision auto`` trains it in float32 on a CPU.
    """
    if head not in _HEAD_KINDS:
        raise ValueError(f"head must be one of {head_kinds()} (register_head_kind adds one), got {head!r}.")
    if tasks is not None:
        warnings.warn(
            f"register_model({name!r}, tasks=...) is ignored and goes in 0.3.0: a model declares its head kind, "
            "and each task lists the head kinds it accepts (TaskSpec.heads).",
            FutureWarning,
            stacklevel=2,
        )

    def decorate(fn):
        if name in _MODELS:
            raise ValueError(f"Model {name!r} is already registered.")
        _MODELS[name] = fn
        _HEADS[name] = head
        _RECIPES[name] = dict(pretrained or {})
        _TUNE_ALIASES[name] = dict(tune_aliases or {})
        _BLOCKS[name] = blocks
        _CPU_BFLOAT16[name] = bool(cpu_bfloat16)
        return fn

    return decorate


# The built-in tasks that take each head kind, for the deprecated model_tasks() only: since 0.2.0 a task declares
# the head kinds it accepts (recaptcha_tf.tasks.TaskSpec.heads) and the model registry knows no task names.
_BUILT_IN_TASKS_BY_HEAD = {"classifier": ("tiles", "chars"), "ctc": ("text",), "multihead": ("text",)}


def model_tasks(name: str) -> tuple[str, ...]:
    """Deprecated (goes in 0.3.0): the built-in tasks whose head kinds include model ``name``'s; use
    ``recaptcha_tf.tasks.get_task(task).models()``."""
    warnings.warn(
        "model_tasks() is deprecated and goes in 0.3.0: use recaptcha_tf.tasks.get_task(task).models()",
        FutureWarning,
        stacklevel=2,
    )
    return _BUILT_IN_TASKS_BY_HEAD[model_head(name)]


def list_models(heads: str | collections.abc.Sequence[str] | None = None) -> list[str]:
    """Registered model names, optionally only those whose head kind is in ``heads`` (one kind or several).

    The models of a task are ``get_task(name).models()`` (:class:`recaptcha_tf.tasks.TaskSpec`): each task
    declares the head kinds it accepts.
    """
    if isinstance(heads, str):
        heads = (heads,)
    if heads is not None:
        unknown = sorted(set(heads) - set(_HEAD_KINDS))
        if unknown:
            raise ValueError(
                f"Unknown head kinds {unknown}; the kinds are {head_kinds()} (for a task's models: TaskSpec.models())."
            )
    return sorted(n for n in _MODELS if heads is None or _HEADS[n] in heads)


def model_builder(name: str) -> Callable[..., keras.Model]:
    if name not in _MODELS:
        raise ModelConfigError(f"Unknown model {name!r}. Available: {', '.join(list_models())}.")
    return _MODELS[name]


def model_head(name: str) -> str:
    """The head kind of registered model ``name`` (see :func:`register_model`)."""
    model_builder(name)
    return _HEADS[name]


def pretrained_recipe(name: str) -> dict:
    """The training defaults registered model ``name`` uses with pretrained weights (may be empty)."""
    model_builder(name)
    return dict(_RECIPES[name])


def model_tune_aliases(name: str) -> dict[str, str]:
    """Search-space architecture name -> builder argument of registered model ``name`` (may be empty)."""
    model_builder(name)
    return dict(_TUNE_ALIASES[name])


def model_blocks(name: str) -> str | None:
    """The block-name pattern registered model ``name`` declared (``None``: the generic one)."""
    model_builder(name)
    return _BLOCKS[name]


def _matches(value, hint) -> bool:
    """Whether ``value`` fits the type annotation ``hint`` (ints for floats too; unknown hints accept anything)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        item = args[0] if len(args) == 1 or (len(args) == 2 and args[1] is Ellipsis) else None
        return item is None or all(_matches(v, item) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    return True


def check_model_kwargs(name: str, kwargs: dict) -> None:
    """Raise :class:`ModelConfigError` for an unknown model, an argument its builder does not take,
    or a value of the wrong type (``conv_layers="banana"``), before anything is built."""
    builder = model_builder(name)
    params = inspect.signature(builder).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            valid = sorted(p for p in params if p not in ("input_shape", "num_classes"))
            raise ModelConfigError(f"Model {name!r} does not take {unknown}; it takes {valid}.")
    try:
        hints = typing.get_type_hints(builder)
    except Exception:  # noqa: BLE001  annotations that do not resolve: nothing to check against
        return
    for key, value in kwargs.items():
        if key in hints and not _matches(value, hints[key]):
            default = params[key].default if key in params else inspect.Parameter.empty
            shown = "" if default is inspect.Parameter.empty else f" (default {default!r})"
            raise ModelConfigError(
                f"Model {name!r}: {key}={value!r} is not a valid value; {key} takes {_describe(hints[key])}{shown}."
            )


def _describe(hint) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("collections.abc.", "")


def build_model(name: str, input_shape: tuple[int, int, int], num_classes: int, **kwargs) -> keras.Model:
    """Build registered model ``name``; unknown keyword arguments or wrong types are a clear error."""
    check_model_kwargs(name, kwargs)
    return model_builder(name)(input_shape, num_classes, **kwargs)


def model_cpu_bfloat16(name: str) -> bool:
    """Whether bfloat16 trains registered model ``name`` faster than float32 on a CPU that has it."""
    model_builder(name)
    return _CPU_BFLOAT16[name]
