"""Shipped models: the manifest, the checked file, the name-or-path rule, and what the package ships."""

from __future__ import annotations

import fnmatch
import json
import os
import pathlib

import pytest
import tomllib

from recaptcha_tf.models import shipped
from recaptcha_tf.utils import shipped as core

ROOT = pathlib.Path(__file__).resolve().parents[2]


def tiny_model(path):
    from recaptcha_tf.models import build_classifier

    model = build_classifier("cnn", ["bus", "palm"], image_size=(16, 16), conv_layers=1, filters=4, dense_units=8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    model.save(path)
    return path


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    return tiny_model(str(tmp_path_factory.mktemp("model") / "model.keras"))


@pytest.fixture
def pretrained(tmp_path, monkeypatch, keras_file):
    """A pretrained folder with one model, ``tiny``, that ``$RECAPTCHA_TF_PRETRAINED_DIR`` points at."""
    folder = tmp_path / "pretrained"
    (folder / "tiny").mkdir(parents=True)
    (folder / "tiny" / "model.keras").write_bytes(pathlib.Path(keras_file).read_bytes())
    (folder / "tiny" / "MODEL_CARD.md").write_text("# tiny\nTwo classes, untrained.\n")
    monkeypatch.setenv(core.ENV_VAR, str(folder))
    shipped.write_manifest_entry("tiny", folder / "tiny" / "model.keras", "tiles", "1", "an untrained test model")
    return folder


def test_the_models_module_is_the_public_home():
    assert shipped.resolve_shipped is core.resolve_shipped and shipped.ShippedModel is core.ShippedModel


def test_write_manifest_entry_and_list(pretrained):
    manifest = json.loads((pretrained / "manifest.json").read_text())
    assert manifest == {
        "tiny": {
            "version": "1",
            "task": "tiles",
            "file": "tiny/model.keras",
            "sha256": core.sha256_of(pretrained / "tiny" / "model.keras"),
            "card": "tiny/MODEL_CARD.md",
            "description": "an untrained test model",
        }
    }
    (model,) = shipped.shipped_models().values()
    assert model.name == "tiny" and model.path == pretrained / "tiny" / "model.keras"
    assert model.card_path.read_text().startswith("# tiny")
    assert not list(pretrained.glob("*.tmp*"))  # written to a temporary name, then renamed
    with pytest.raises(AttributeError):
        model.task = "text"  # frozen


def test_resolve_shipped_checks_the_file(pretrained):
    assert shipped.resolve_shipped("tiny") == pretrained / "tiny" / "model.keras"
    with pytest.raises(shipped.UnknownShippedModel, match="No shipped model 'tinny'; the shipped models are: tiny"):
        shipped.resolve_shipped("tinny")


def test_a_damaged_file_is_refused(pretrained):
    file = pretrained / "tiny" / "model.keras"
    file.write_bytes(file.read_bytes() + b"x")
    with pytest.raises(shipped.ShippedModelError, match="not the manifest's"):
        shipped.resolve_shipped("tiny")
    file.unlink()
    with pytest.raises(shipped.ShippedModelError, match="is missing"):
        shipped.resolve_shipped("tiny")


def test_entries_must_lie_inside_the_folder(pretrained, keras_file):
    with pytest.raises(shipped.ShippedModelError, match="is not inside"):
        shipped.write_manifest_entry("outside", keras_file, "tiles", card=pretrained / "tiny" / "MODEL_CARD.md")
    with pytest.raises(shipped.ShippedModelError, match="not a usable"):
        shipped.write_manifest_entry("../up", pretrained / "tiny" / "model.keras", "tiles")


def test_a_path_that_exists_wins_over_a_name(pretrained, tmp_path, monkeypatch):
    assert shipped.resolve_model_source("tiny") == str(pretrained / "tiny" / "model.keras")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny").mkdir()
    assert shipped.resolve_model_source("tiny") == "tiny"
    with pytest.raises(shipped.UnknownShippedModel, match="neither a file nor a run folder.*shipped models are: tiny"):
        shipped.resolve_model_source("nosuch")


def test_load_takes_a_shipped_name(pretrained):
    import numpy as np

    import recaptcha_tf

    model = recaptcha_tf.load("tiny")
    assert model.info.names == ["bus", "palm"]
    assert model.predict(np.zeros((16, 16, 3), np.uint8))["label"] in ("bus", "palm")


def test_the_shipped_manifest_is_valid_and_its_files_match(monkeypatch):
    """What the package ships (``{}`` until models are trained): every entry's file there, with its hash."""
    monkeypatch.delenv(core.ENV_VAR, raising=False)
    folder = core.pretrained_dir()
    assert folder == ROOT / "recaptcha_tf" / "pretrained"
    assert isinstance(json.loads((folder / "manifest.json").read_text()), dict)
    for name, model in shipped.shipped_models().items():
        assert shipped.resolve_shipped(name).is_file() and model.card_path.is_file()


def test_package_data_covers_the_shipped_files():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = patterns["recaptcha_tf"]
    for name in ("pretrained/manifest.json", "pretrained/x/model.keras", "pretrained/x/MODEL_CARD.md"):
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name


def test_the_build_tools_ship_a_run_without_its_optimizer_and_within_the_size_limit(tmp_path, monkeypatch):
    import keras

    monkeypatch.syspath_prepend(str(ROOT / "tools"))
    from _ship import ship_run

    run = tmp_path / "run"
    model = keras.saving.load_model(tiny_model(str(run / "model.keras")), safe_mode=True)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(keras.random.uniform((4, 16, 16, 3), maxval=255), keras.ops.one_hot([0, 1, 0, 1], 2), verbose=0)
    model.save(run / "model.keras")  # a checkpoint: with Adam's two moments per weight
    folder = tmp_path / "pretrained"
    target = ship_run(str(run), str(folder / "tiny"), "tiny", "3", "tiles", "a test model")
    assert os.path.getsize(target) < os.path.getsize(run / "model.keras")
    monkeypatch.setenv(core.ENV_VAR, str(folder))
    assert os.path.samefile(shipped.resolve_shipped("tiny"), target)
    assert {name: m.version for name, m in shipped.shipped_models().items()} == {"tiny": "3"}
    assert (folder / "tiny" / "MODEL_CARD.md").is_file()
    with pytest.raises(SystemExit, match="over the 0.001 MB allowed"):
        ship_run(str(run), str(folder / "big"), "big", "1", "tiles", "too big", max_bytes=1000)
    assert "big" not in json.loads((folder / "manifest.json").read_text())


def test_the_shipped_tile_model_picks_grid_tiles_at_its_stored_challenge_threshold(tmp_path, capsys, monkeypatch):
    """``evaluate --model tiles`` (the real shipped file) scores grids at its stored threshold beside the arg-max."""
    from conftest import make_class_folders

    from recaptcha_tf.cli import main
    from recaptcha_tf.inference.loading import load_model, model_info

    monkeypatch.delenv(core.ENV_VAR, raising=False)
    if "tiles" not in shipped.shipped_models():
        pytest.fail("the package ships no tiles model")
    info = model_info(load_model(str(shipped.resolve_shipped("tiles"))))
    assert info.challenge_threshold is not None and 0 < info.challenge_threshold <= 0.5
    data = str(tmp_path / "tiles")
    make_class_folders(data, classes=("bus", "car", "palm"), per_class=5)  # 15 tiles: 3x3 grids can be drawn
    assert main(["evaluate", "--model", "tiles", "--data", data, "--challenges", "20"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed["challenge_solved"]) == set(printed["challenge_solved_at_threshold"]) == {"3x3", "4x4"}
    assert all(0.0 <= v <= 1.0 for v in printed["challenge_solved_at_threshold"].values())


def test_predict_answers_the_same_label_at_every_top_k(tmp_path, capsys, monkeypatch):
    """``predict --model tiles --top-k 1`` abstains as ``--top-k 3`` does: the stored ``--min-confidence`` is
    applied to each tile's best object class, whether or not the printed list holds it."""
    from conftest import make_class_folders

    from recaptcha_tf.cli import main

    monkeypatch.delenv(core.ENV_VAR, raising=False)
    data = str(tmp_path / "tiles")
    make_class_folders(data, classes=("bus", "car", "palm"), per_class=4)
    images = sorted(str(p) for p in (tmp_path / "tiles").rglob("*.png"))
    answers = {}
    for top_k in ("1", "3"):
        assert main(["predict", "--model", "tiles", "--top-k", top_k, "--json", *images]) == 0
        results = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
        assert len(results) == len(images)
        answers[top_k] = [(r["label"], r["abstained"]) for r in results]
        assert all(len(r["top_k"]) == int(top_k) for r in results)
    assert answers["1"] == answers["3"]
