"""A run's settings and state files: settings that cannot work are one error line, damaged state is rebuilt."""

from __future__ import annotations

import logging
import os

import pytest
from conftest import make_class_folders, tiny_ink_crnn

from recaptcha_tf.cli.errors import is_user_error
from recaptcha_tf.cli.main import main
from recaptcha_tf.data.splits import SplitError, load_manifest, require_files, save_manifest, stratified_split
from recaptcha_tf.training.phases import TrainingConfigError, phase_settings
from recaptcha_tf.training.run_folder import finished_summary
from recaptcha_tf.utils.run_folder import RunFolder


def _errors(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]


def test_the_default_frozen_phase_leaves_a_fine_tuning_epoch():
    # --weights X --epochs 1 once failed with "--freeze-epochs 3 leaves no fine-tuning epochs" (a traceback)
    assert phase_settings("imagenet", None, 1, 1e-3, None)[1] == 0
    assert phase_settings("imagenet", None, 2, 1e-3, None)[1] == 1
    assert phase_settings("imagenet", None, 10, 1e-3, None)[1] == 3
    assert phase_settings(None, None, 1, 1e-3, None)[1] == 0
    with pytest.raises(TrainingConfigError, match="--freeze-epochs 3 leaves no fine-tuning epochs") as raised:
        phase_settings("imagenet", 3, 3, 1e-3, None)  # asked for explicitly: an error, in one line
    assert is_user_error(raised.value)


def test_a_damaged_config_or_summary_is_set_aside_not_a_traceback(tmp_path, caplog):
    run = RunFolder(tmp_path)
    config = {"task": "tiles", "epochs": 2, "data": str(tmp_path)}
    run.write_json(config, RunFolder.CONFIG)
    run.write_json({"epochs_run": 2}, RunFolder.SUMMARY)
    assert finished_summary(run.path, config)["epochs_this_session"] == 0  # the finished run is found
    with open(run.config, "w") as f:
        f.write('{"task": "tiles", "epo')  # truncated
    with caplog.at_level(logging.WARNING, logger="recaptcha_tf"):
        assert finished_summary(run.path, config) is None  # not proof of a finished run: train (or resume)
    assert any("config.json is damaged" in r.getMessage() for r in caplog.records)


def test_a_split_that_names_missing_files_is_refused_before_training(tmp_path, capsys):
    data = str(tmp_path / "tiles")
    make_class_folders(data, per_class=6)
    from recaptcha_tf.data.folders import scan_class_folders

    ds = scan_class_folders(data)
    split = stratified_split(ds.paths, ds.labels, ds.class_names, (0.5, 0.25, 0.25), 0, root=data)
    manifest = save_manifest(split, str(tmp_path / "split.json"))
    require_files(load_manifest(manifest), manifest)  # every file there: fine
    os.remove(split.val[0][0])
    with pytest.raises(SplitError, match="names 1 file"):
        require_files(load_manifest(manifest), manifest)
    out = str(tmp_path / "run")
    argv = ["train", "--task", "tiles", "--data", data, "--split", manifest, "--out", out, "--logdir", ""]
    capsys.readouterr()
    assert main([*argv, "--epochs", "1"]) == 2
    errors = _errors(capsys)
    assert len(errors) == 1 and "do not exist" in errors[0] and "--overwrite" in errors[0]


def test_flip_tta_on_a_text_model_is_one_error_line(tmp_path, capsys):
    model = tiny_ink_crnn(crop=None)
    path = str(tmp_path / "text.keras")
    model.save(path)
    make_class_folders(str(tmp_path / "img"), per_class=1)
    image = str(next((tmp_path / "img").rglob("*.png")))
    capsys.readouterr()
    assert main(["predict", "--model", path, "--tta", "flip", image]) == 2
    errors = _errors(capsys)
    assert len(errors) == 1 and "--tta flip is for tile models" in errors[0]


def test_labels_too_long_for_the_models_frames_are_one_error_line(tmp_path, capsys):
    from recaptcha_tf.data.generator import generate_captchas

    data = str(tmp_path / "long")
    generate_captchas(data, count=8, length=8, charset="ab", size=(96, 32), seed=0)
    out = str(tmp_path / "run")
    capsys.readouterr()
    status = main(
        [
            "train",
            "--task",
            "text",
            "--data",
            data,
            "--out",
            out,
            "--logdir",
            "",
            "--image-size",
            "32x32",
            "--steps",
            "2",
        ]
    )
    assert status == 2
    errors = _errors(capsys)
    assert len(errors) == 1 and "too few for labels of 8 characters" in errors[0]


def test_finishing_a_run_removes_both_phases_backups(tmp_path):
    """A kill between saving phase 1's weights and removing its backup leaves ``backup_phase1``: finishing the run
    removes it too, so a re-run finds the run finished instead of training phase 2 again."""
    from recaptcha_tf.training.run_folder import finish_run
    from recaptcha_tf.utils.run_folder import RunFolder

    run = RunFolder(str(tmp_path))
    for phase in (1, 2):
        os.makedirs(run.backup(phase))
    finish_run(str(tmp_path))
    assert not os.path.exists(run.backup(1)) and not os.path.exists(run.backup(2))


def test_a_run_records_the_digest_of_its_starting_weights_and_a_changed_file_is_another_setting(tmp_path):
    """The same weights read from another copy of the package are the same run; other bytes at the same path (a
    new version of a shipped model) are not."""
    import json

    from recaptcha_tf.training.run_folder import changed_settings, weights_digest
    from recaptcha_tf.utils.run_folder import RunFolder

    first, second = tmp_path / "a" / "model.keras", tmp_path / "b" / "model.keras"
    for path, data in ((first, b"version 1"), (second, b"version 1")):
        path.parent.mkdir()
        path.write_bytes(data)
    assert weights_digest(str(first)) == weights_digest(str(second)) == weights_digest(str(first.parent))
    assert weights_digest(None) is None and weights_digest("imagenet") is None
    run = RunFolder(str(tmp_path / "run"))
    os.makedirs(run.path)
    stored = {"weights": str(first), "weights_sha256": weights_digest(str(first)), "seed": 0}
    json.dump(stored, open(run.file(RunFolder.CONFIG), "w"))
    open(run.history, "w").write("epoch,loss\n0,1.0\n")  # the run has trained an epoch
    assert changed_settings(run.path, {**stored, "weights": str(second)}) == []
    second.write_bytes(b"version 2")
    assert changed_settings(
        run.path, {**stored, "weights": str(second), "weights_sha256": weights_digest(str(second))}
    ) == ["weights_sha256"]
