"""Task specs (recaptcha_tf.tasks): one place that says what each task is."""

from __future__ import annotations

import sys

import pytest


def test_every_task_spec_is_consistent_with_the_model_registry():
    from recaptcha_tf.tasks import get_task, task_names

    assert set(task_names()) == {"tiles", "chars", "text"}
    for name in task_names():
        spec = get_task(name)
        assert spec.defaults["model"] in spec.models() and spec.tune_model in spec.models()
        assert set(spec.objectives.values()) <= {"min", "max"} and spec.objectives["val_loss"] == "min"
        assert spec.default_objective in spec.trial_metrics and "n" in spec.report_keys
    assert get_task("tiles").flip_invariant and not get_task("chars").flip_invariant
    assert get_task("text").sequence and get_task("text").default_objective == "val_cer"
    with pytest.raises(ValueError, match="Unknown task 'nosuch'"):
        get_task("nosuch")


def test_the_specs_defaults_are_read_only_and_copied_for_callers():
    from recaptcha_tf import runs
    from recaptcha_tf.tasks import get_task, task_defaults

    with pytest.raises(TypeError):
        get_task("tiles").defaults["epochs"] = 1
    mine = task_defaults("tiles")
    mine["epochs"] = 1
    assert get_task("tiles").defaults["epochs"] != 1 and runs.task_defaults("tiles")["epochs"] != 1


def test_a_new_task_is_one_registration_that_tuning_and_the_cli_see(monkeypatch):
    """Adding a task: one register_task call; objectives, the tune model and the CLI choices follow."""
    from recaptcha_tf import cli, tasks
    from recaptcha_tf.tuning.spaces import resolve_objective

    monkeypatch.setattr(tasks.registry, "_TASKS", dict(tasks.registry._TASKS))  # undone after the test
    tasks.register_task(
        "digits",
        "4-digit login codes",
        defaults={"model": "cnn", "image_size": (32, 32)},
        tune_model="cnn",
        objectives={"val_accuracy": "max"},
        trial_metrics=("val_accuracy", "val_loss"),
        report_keys=("n", "top1"),
    )
    assert resolve_objective(None, "digits") == ("val_accuracy", "max")
    assert resolve_objective("loss", "digits") == ("val_loss", "min")
    args = cli.build_parser().parse_args(["tune", "--task", "digits", "--data", "x"])
    assert args.task == "digits"


_CALLS = []


def _train_digits(data, out, model="cnn", epochs=None, seed=0):
    """A new task's training function: it declares the options that apply to it, and gets only those."""
    _CALLS.append({"data": data, "out": out, "model": model, "epochs": epochs, "seed": seed})
    return {"out": out, "epochs_run": epochs}


def test_the_cli_trains_and_evaluates_through_the_task_spec(monkeypatch, tmp_path, capsys):
    """`train` asks the task for its training function (no task names in the CLI), and passes it the options it
    takes; every built-in task names importable train and evaluate workflows."""
    import inspect

    from recaptcha_tf import cli, tasks

    for name in tasks.task_names():
        spec = tasks.get_task(name)
        assert list(inspect.signature(spec.workflow("train")).parameters)[:2] == ["data", "out"]
        assert {"net", "info", "subset"} <= set(inspect.signature(spec.workflow("evaluate")).parameters)
    with pytest.raises(tasks.TaskError, match="no 'serve' workflow") as raised:
        tasks.get_task("text").workflow("serve")
    assert cli.is_user_error(raised.value)  # one `error:` line and status 2, not a traceback

    monkeypatch.setattr(tasks.registry, "_TASKS", dict(tasks.registry._TASKS))
    tasks.register_task(
        "digits",
        "4-digit login codes",
        defaults={"model": "cnn"},
        tune_model="cnn",
        objectives={"val_accuracy": "max"},
        trial_metrics=("val_accuracy",),
        report_keys=("n",),
        workflows={"train": f"{__name__}:_train_digits"},
    )
    _CALLS.clear()
    data = tmp_path / "digits"
    data.mkdir()
    argv = ["train", "--task", "digits", "--data", str(data), "--epochs", "3", "--out", str(tmp_path / "r")]
    status = cli.main([*argv, "--json"])
    assert status == 0 and _CALLS == [
        {"data": str(data), "out": str(tmp_path / "r"), "model": "cnn", "epochs": 3, "seed": 0}
    ]
    assert '"epochs_run": 3' in capsys.readouterr().out
    assert cli.main(argv) == 0  # without --json: one line, with the run's epochs and the next command
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "3 epochs" in line and "next: recaptcha-tf evaluate" in line


@pytest.mark.parametrize(
    "head, options, loss, metric",
    [
        ("ctc", {}, "CTC", None),
        ("multihead", {}, "CategoricalCrossentropy", None),
        ("classifier", {"label_smoothing": 0.1}, "CategoricalCrossentropy", "accuracy"),
        ("classifier", {"one_hot": False}, "SparseCategoricalCrossentropy", "accuracy"),
        ("classifier", {"multi_label": True, "threshold": 0.3}, "BinaryCrossentropy", "hamming_accuracy"),
    ],
)
def test_each_head_kind_trains_against_its_own_loss_and_metrics(head, options, loss, metric):
    from recaptcha_tf.tasks.objectives import training_objective

    got_loss, metrics = training_objective(head, **options)
    assert type(got_loss).__name__ == loss
    assert [m.name for m in metrics] == ([metric] if metric else [])
    if "label_smoothing" in options:
        assert got_loss.get_config()["label_smoothing"] == 0.1
    if head == "multihead":
        assert got_loss.get_config()["label_smoothing"] == 0.1
    if options.get("multi_label"):
        assert metrics[0].get_config()["threshold"] == 0.3
    with pytest.raises(ValueError, match="head kind"):
        training_objective("regression")


def test_a_new_task_is_one_module_in_the_tasks_package(tmp_path, monkeypatch):
    import recaptcha_tf.tasks as tasks

    (tmp_path / "captions.py").write_text(
        "from recaptcha_tf.tasks import register_task\n"
        "CAPTIONS = register_task('captions', 'a task added as one module', defaults={'model': 'crnn'},\n"
        "    tune_model='crnn', objectives={'val_cer': 'min'}, trial_metrics=('val_cer',), report_keys=('cer',),\n"
        "    sequence=True, workflows={'train': 'recaptcha_tf.training.text:train_text'})\n"
    )
    monkeypatch.setattr(tasks, "__path__", [*tasks.__path__, str(tmp_path)])
    monkeypatch.setattr(tasks.registry, "_TASKS", dict(tasks.registry._TASKS))
    try:
        tasks._register_task_modules()
        assert "captions" in tasks.task_names()
        assert tasks.get_task("captions").workflow("train").__name__ == "train_text"
        assert tasks.task_defaults("captions") == {"model": "crnn"}
    finally:
        sys.modules.pop("recaptcha_tf.tasks.captions", None)
        if hasattr(tasks, "captions"):
            delattr(tasks, "captions")
