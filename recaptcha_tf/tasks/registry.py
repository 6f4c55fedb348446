"""The task registry: :class:`TaskSpec` and :func:`register_task` (no TensorFlow here)."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from types import MappingProxyType


class TaskError(ValueError):
    """An unknown task, or a workflow a task does not have (a user error: one ``error:`` line in the CLI)."""


# The task-specific command-line options (argparse dests) of the class-folder tasks (tiles, chars): what
# training.classifier.train_classifier and evaluation.workflow.evaluate_classifier take and train_text does not.
# recaptcha_tf.cli refuses another task's options (TaskSpec.options).
CLASSIFIER_OPTIONS = (
    "resize",
    "optimizer",  # train; tune applies it to every task
    "label_smoothing",
    "balance",
    "balanced_dir",
    "class_weight",
    "mix",
    "cache",
    "multi_label",
    "labels",
    "allow_outside_data",
    "threshold",
    "challenges",
    "teachers",  # train: knowledge distillation (training.distillation)
    "distill_alpha",
    "distill_temperature",
)


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """What one task is.

    Attributes:
        name: the ``--task`` name.
        description: one line for help texts.
        defaults: training defaults (``model``, ``image_size`` ``(H, W)`` in pixels,
            ``channels``, ``resize``, ``batch_size``, ``learning_rate`` and the budget keys
            each workflow reads); a model's pretrained recipe overrides them.
        tune_model: the model ``tune`` searches when none is given.
        objectives: tuning objectives, ``{"val_<metric>": "max" | "min"}``; the first is the default.
        trial_metrics: what every tuning trial reports to the HParams dashboard.
        report_keys: the test-report keys copied into a run's ``summary.json``.
        flip_invariant: a left-right mirror image has the same label (random flips in
            training, ``--tta flip`` at test time).
        sequence: the targets are character sequences (text), not classes.
        heads: the head kinds a model must have to serve this task (``"classifier"``; ``"ctc"``, ``"multihead"``
            for text): a model declares its head kind, and the task's models are those of its kinds.
        workflows: ``{"train": "module:function", "evaluate": "module:function", "prepare": ...}``. ``train(data, out,
            **options)`` trains a run folder and returns its summary; ``evaluate(model_path, data, *, net,
            info, subset, report, **options)`` evaluates a loaded model and returns its report; ``prepare(data, out,
            ...)`` splits the data for a run (reused on resume), shared by ``train`` and ``tune``.
        options: the task-specific command-line options this task takes, by argparse dest (``"mix"`` for
            ``--mix``). An option that some task declares and this one does not is refused with this task
            (``train``, ``tune``, ``evaluate``) unless left at its default; options no task declares (``--epochs``,
            ``--seed``, ...) apply to every task.
    """

    name: str
    description: str
    defaults: MappingProxyType
    tune_model: str
    objectives: MappingProxyType
    trial_metrics: tuple[str, ...]
    report_keys: tuple[str, ...]
    flip_invariant: bool = False
    sequence: bool = False
    workflows: MappingProxyType = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    options: tuple[str, ...] = ()
    heads: tuple[str, ...] = ("classifier",)

    def models(self) -> list[str]:
        """The registered models whose head kind this task takes (imports the model registry, and so TensorFlow)."""
        from recaptcha_tf.models.registry import list_models

        return list_models(self.heads)

    def check_model(self, name: str, kwargs: dict | None = None) -> None:
        """Raise ``ModelConfigError`` unless ``name`` is a registered model with a head kind this task takes (and,
        given ``kwargs``, takes those builder arguments with values of the right type)."""
        from recaptcha_tf.models.registry import ModelConfigError, check_model_kwargs, model_head

        if model_head(name) not in self.heads:
            raise ModelConfigError(
                f"Model {name!r} has a {model_head(name)} head, which task {self.name!r} does not take "
                f"(it takes {', '.join(self.heads)}); use one of {self.models()}."
            )
        if kwargs is not None:
            check_model_kwargs(name, kwargs)

    @property
    def default_objective(self) -> str:
        return next(iter(self.objectives))

    def workflow(self, name: str):
        """The task's ``name`` workflow (``"train"``, ``"evaluate"``), imported now."""
        if name not in self.workflows:
            raise TaskError(f"Task {self.name!r} has no {name!r} workflow; it has {sorted(self.workflows)}.")
        module, _, function = self.workflows[name].partition(":")
        return getattr(importlib.import_module(module), function)

    def run_workflow(self, name: str, *args, **options):
        """Call the ``name`` workflow with the ``options`` it takes: the CLI collects every option of a command
        once, and each task's function declares the ones that apply to it (the others are not passed; a function
        with ``**options`` gets them all)."""
        function = self.workflow(name)
        taken = inspect.signature(function).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in taken.values()):
            return function(*args, **options)
        return function(*args, **{k: v for k, v in options.items() if k in taken})


_TASKS: dict[str, TaskSpec] = {}


def register_task(
    name: str,
    description: str,
    *,
    defaults: dict,
    tune_model: str,
    objectives: dict,
    trial_metrics: tuple[str, ...],
    report_keys: tuple[str, ...],
    flip_invariant: bool = False,
    sequence: bool = False,
    workflows: dict | None = None,
    options: tuple[str, ...] = (),
    heads: tuple[str, ...] | None = None,
) -> TaskSpec:
    """Add a task to the registry; returns its (read-only) spec."""
    if name in _TASKS:
        raise ValueError(f"Task {name!r} is already registered.")
    objectives = {**objectives, "val_loss": objectives.get("val_loss", "min")}  # the first is the default
    spec = TaskSpec(
        name,
        description,
        MappingProxyType(dict(defaults)),
        tune_model,
        MappingProxyType(objectives),
        tuple(trial_metrics),
        tuple(report_keys),
        flip_invariant,
        sequence,
        MappingProxyType(dict(workflows or {})),
        tuple(options),
        tuple(heads or (("ctc", "multihead") if sequence else ("classifier",))),
    )
    _TASKS[name] = spec
    return spec


def get_task(name: str) -> TaskSpec:
    """The spec of task ``name``; an unknown name is a :class:`TaskError` that lists the tasks."""
    if name not in _TASKS:
        raise TaskError(f"Unknown task {name!r}; choose from {sorted(_TASKS)}.")
    return _TASKS[name]


def task_names() -> tuple[str, ...]:
    """Registered task names."""
    return tuple(_TASKS)


def task_defaults(name: str) -> dict:
    """A mutable copy of task ``name``'s training defaults."""
    return dict(get_task(name).defaults)
