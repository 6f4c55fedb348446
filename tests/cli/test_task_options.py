"""Options that only some tasks take are refused with the others (``TaskSpec.options``), before TensorFlow starts."""

import importlib

import pytest

from recaptcha_tf.tasks import get_task, task_names

cli_main = importlib.import_module("recaptcha_tf.cli.main")  # the module (the package's `main` is the function)


@pytest.fixture
def no_tensorflow(monkeypatch):
    """Fail the test if the command gets as far as starting TensorFlow or running."""

    def started(*args, **kwargs):
        raise AssertionError("the command got past its checks")

    monkeypatch.setattr(cli_main, "_start_tensorflow", started)
    monkeypatch.setattr(cli_main, "dispatch", started)


def _error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_an_option_of_another_task_is_one_error_line(tmp_path, capsys, no_tensorflow):
    status = cli_main.main(["train", "--task", "text", "--mix", "mixup", "--data", str(tmp_path / "missing")])
    lines = _error_lines(capsys)
    assert status == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: --mix does not apply to --task text")
    assert "it is for: " in lines[0] and "tiles" in lines[0] and "chars" in lines[0]


@pytest.mark.parametrize(
    "argv, option",
    [
        (["train", "--task", "tiles", "--charset", "a-z"], "--charset"),
        (["train", "--task", "chars", "--tta", "flip"], None),  # train has no --tta: argparse refuses it
        (["train", "--task", "text", "--multi-label"], "--multi-label"),
        (["train", "--task", "text", "--balance", "0"], "--balance"),
        (["train", "--task", "text", "--optimizer", "sgd"], "--optimizer"),
        (["train", "--task", "tiles", "--curriculum", "0.25"], "--curriculum"),
        (["train", "--task", "chars", "--warmup-fraction", "0.1"], "--warmup-fraction"),
        (["train", "--task", "text", "--curriculum", "1.5"], None),  # a share: argparse refuses it
        (["tune", "--task", "tiles", "--label-pattern", "(?P<label>.*)"], "--label-pattern"),
    ],
)
def test_other_task_options_are_refused(argv, option, tmp_path, capsys, no_tensorflow):
    assert cli_main.main([*argv, "--data", str(tmp_path)]) == 2
    lines = _error_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("error: ")
    if option:
        assert lines[0].startswith(f"error: {option} does not apply to --task {argv[2]} (it is for: ")


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--task", "tiles", "--mix", "mixup"],
        ["train", "--task", "chars", "--mix", "cutmix", "--balance", "0"],
        ["train", "--task", "text", "--charset", "a-z", "--steps", "10"],
        ["train", "--task", "text", "--mix", "none", "--cache", "memory"],  # the defaults, given: not an error
        ["tune", "--task", "text", "--optimizer", "sgd"],  # a search applies --optimizer to every task
    ],
)
def test_options_the_task_takes_fail_for_the_data_not_the_option(argv, tmp_path, capsys, no_tensorflow):
    missing = str(tmp_path / "missing")
    assert cli_main.main([*argv, "--data", missing]) == 2
    lines = _error_lines(capsys)
    assert lines == [f"error: --data {missing!r} does not exist."]


def test_every_task_option_is_a_real_option():
    """A typo in a task's ``options`` would make that option silently unchecked: each must be a dest of
    ``train`` (or of ``tune``/``evaluate``, the other commands that check them)."""
    from recaptcha_tf.cli.commands import evaluate, train, tune
    from recaptcha_tf.cli.options import command_parser

    def dests(command):
        return {action.dest for action in command_parser(command.add_parser)._actions}

    train_dests = dests(train)
    checked = train_dests | dests(tune) | dests(evaluate)
    for name in task_names():
        options = get_task(name).options
        assert options, name
        assert len(set(options)) == len(options), name
        assert set(options) <= checked, (name, sorted(set(options) - checked))
    # the options `train` refuses are train's own
    for dest in ("mix", "balance", "multi_label", "charset", "steps", "colour", "val_data"):
        assert dest in train_dests


def test_a_new_task_declares_its_options_and_the_check_follows(monkeypatch, tmp_path, capsys, no_tensorflow):
    from recaptcha_tf import tasks

    monkeypatch.setattr(tasks.registry, "_TASKS", dict(tasks.registry._TASKS))  # undone after the test
    tasks.register_task(
        "digits",
        "4-digit login codes",
        defaults={"model": "cnn"},
        tune_model="cnn",
        objectives={"val_accuracy": "max"},
        trial_metrics=("val_accuracy",),
        report_keys=("n",),
        options=("mix",),
    )
    missing = str(tmp_path / "missing")
    assert cli_main.main(["train", "--task", "digits", "--mix", "mixup", "--data", missing]) == 2
    assert _error_lines(capsys) == [f"error: --data {missing!r} does not exist."]
    assert cli_main.main(["train", "--task", "digits", "--charset", "0-9", "--data", missing]) == 2
    assert _error_lines(capsys) == ["error: --charset does not apply to --task digits (it is for: text)."]
    assert cli_main.main(["train", "--task", "text", "--mix", "mixup", "--data", missing]) == 2
    assert "(it is for: chars, tiles, digits)" in _error_lines(capsys)[0]  # in the registry's order


def _fake_model(folder, task: str) -> str:
    """A run folder whose model.keras holds only a config naming ``task`` (read without TensorFlow)."""
    import json
    import zipfile

    folder.mkdir()
    config = {
        "class_name": "Functional",
        "config": {"layers": [{"class_name": "LabelNames", "config": {"names": ["a"], "task": task}}]},
    }
    with zipfile.ZipFile(folder / "model.keras", "w") as archive:
        archive.writestr("config.json", json.dumps(config))
    return str(folder)


@pytest.mark.parametrize(
    "task, option, value",
    [
        ("text", "--tta", "flip"),
        ("text", "--challenges", "0"),
        ("tiles", "--beam-width", "3"),
        ("chars", "--tta", "flip"),
    ],
)
def test_evaluate_refuses_options_the_models_task_does_not_take(task, option, value, tmp_path, capsys, no_tensorflow):
    model = _fake_model(tmp_path / "run", task)
    assert cli_main.main(["evaluate", "--model", model, "--data", str(tmp_path), option, value]) == 2
    lines = _error_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith(f"error: {option} does not apply to {model!r}, a {task} model")
