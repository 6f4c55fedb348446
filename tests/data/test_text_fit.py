"""Text defaults that fit themselves to the data: geometry, crop, colour, transparency, plateau and step budget."""

from __future__ import annotations

import io
import json
import logging
import os
import re

import keras
import numpy as np
import pytest
from conftest import tiny_ink_crnn
from PIL import Image, ImageDraw, ImageFont

from recaptcha_tf.data.images import decode_image
from recaptcha_tf.data.text.fit import fit_text_input
from recaptcha_tf.layers import InkMap
from recaptcha_tf.training.callbacks import BlankPlateauWarning, PlateauAwareEarlyStopping


def _text_image(
    text: str, size=(200, 50), ink=(30, 30, 30), paper=(235, 235, 235), at=None, font_size=None, line=False
):
    """``text`` drawn on a plain canvas; ``line`` adds a thin noise line across the whole width."""
    image = Image.new("RGB", size, paper)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=font_size or int(size[1] * 0.7))
    draw.text(at or (size[0] // 12, size[1] // 8), text, font=font, fill=ink)
    if line:
        draw.line((0, size[1] // 2, size[0], size[1] // 2 + 3), fill=ink, width=1)
    return image


def _write_set(folder, count, size, length, **kwargs) -> list[str]:
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        label = "".join(rng.choice(list("abcd"), size=length))
        path = os.path.join(folder, f"{label}-{i}.png")
        _text_image(label, size, **kwargs).save(path)
        paths.append(path)
    return paths


@pytest.mark.parametrize(
    "size, length, expected",
    [
        ((200, 50), 5, (48, 192)),  # captcha-v2's shape
        ((100, 50), 4, (64, 128)),  # aspect 2: 4 characters would get 24 px each at 48x96
        ((90, 30), 4, (48, 144)),  # aspect 3: 4 digits on a login page
        ((640, 80), 8, (48, 256)),  # very wide: capped, 32 px per character
        ((280, 70), 8, (64, 256)),  # 8 characters would get 24 px each at 48x192: 64 px high, the aspect kept
        ((200, 80), 6, (64, 160)),  # 6 characters would get 21 px each at 48x128
        ((120, 60), 8, (64, 160)),  # long labels on a narrow image: taller, and at least 20 px per character
    ],
)
def test_fit_chooses_the_geometry_from_the_images(tmp_path, size, length, expected):
    paths = _write_set(str(tmp_path / "set"), 12, size, length, line=True)
    fit = fit_text_input(paths, max_length=length)
    assert fit.crop is None
    assert fit.image_size == expected
    assert fit.colour == "ink" and fit.resize == "stretch"
    assert fit.stats["light_background"] == 1.0 and fit.stats["transparent"] == 0.0


def test_fit_crops_text_that_sits_in_a_small_part_of_a_large_canvas(tmp_path):
    paths = _write_set(str(tmp_path / "set"), 12, (480, 320), 5, at=(160, 140), font_size=30)
    fit = fit_text_input(paths, max_length=5)
    assert fit.crop is not None
    top, left, bottom, right = fit.crop
    assert 0.38 < top < 0.46 and 0.52 < bottom < 0.62  # the text is at y 140-170 of 320
    assert 0.28 < left < 0.34 and 0.5 < right < 0.62  # and at x 160-250 of 480
    assert "crop (" in fit.describe()


@pytest.mark.slow
def test_fit_crops_each_image_to_its_own_text_when_the_text_moves(tmp_path):
    """Text at a different place in every canvas: the crop box is wide, so each image's text is cut out too."""
    folder = str(tmp_path / "moving")
    os.makedirs(folder)
    rng = np.random.default_rng(1)
    paths = []
    for i in range(16):
        label = "".join(rng.choice(list("abcd"), size=5))
        at = (int(rng.integers(60, 260)), int(rng.integers(60, 220)))
        _text_image(label, (480, 320), at=at, font_size=30).save(os.path.join(folder, f"{label}-{i}.png"))
        paths.append(os.path.join(folder, f"{label}-{i}.png"))
    fit = fit_text_input(paths, max_length=5)
    assert fit.crop is not None and fit.region is not None
    share_h, share_w = fit.stats["text_share_of_crop"]
    assert share_h < 0.5  # 30-40 px of text in a box about 200 px high
    assert fit.region[0] > 2 * fit.image_size[0]  # the box is resized so the text reaches the input height
    assert fit.canvas_size()[0] >= fit.region[0] and "each image's text" in fit.describe()

    fixed = fit_text_input(_write_set(str(tmp_path / "fixed"), 12, (480, 320), 5, at=(160, 140), font_size=30), 5)
    assert fixed.crop is not None and fixed.region is None  # text in one place: the shared box is enough

    # A run on the moving text augments inside its model, after the crop (not the whole canvas in the pipeline).
    from recaptcha_tf.inference.loading import load_model
    from recaptcha_tf.training.text import train_text

    out = str(tmp_path / "run")
    tiny = {"filters": [4, 4, 8, 8], "rnn_units": 8}
    summary = train_text(folder, out, charset="abcd", epochs=1, batch_size=8, logdir=None, model_kwargs=tiny)
    assert summary["content_region"] is not None  # fitted to the training part alone
    layers = [layer.name for layer in load_model(os.path.join(out, "model.keras")).layers]
    assert layers.index("text_crop") < layers.index("augmentation") < len(layers) - 2  # then network, labels


def test_content_crop_cuts_out_each_images_text():
    from recaptcha_tf.layers import ContentCrop

    ink = np.zeros((3, 100, 200, 1), "float32")
    ink[0, 40:60, 50:150] = 255.0  # a block of text in the middle
    ink[1, 5:25, 0:60] = 255.0  # the same near the top left corner
    out = ContentCrop((20, 50))(ink).numpy()
    assert out.shape == (3, 20, 50, 1)
    for image in out[:2]:  # both fill most of the output, with a thin dark margin on every side
        assert image[:, :, 0].mean() > 150
        assert image[0].max() < 128 and image[-1].max() < 128 and image[10, 20:30].min() > 250
    assert out[2].max() == 0.0  # no ink: the whole (black) frame, no NaN


def test_per_image_text_crop_round_trips_in_a_saved_model(tmp_path):
    from recaptcha_tf.inference.loading import load_model, model_info

    model = tiny_ink_crnn((0.25, 0.0, 0.75, 1.0), region=(96, 128))
    assert model.get_layer("text_crop").output.shape[1:3] == (32, 64)
    assert model_info(model).image_size == (192, 128)  # the canvas whose crop box is the 96x128 region
    path = str(tmp_path / "m.keras")
    model.save(path)
    x = np.random.default_rng(0).integers(0, 255, (2, 150, 100, 3)).astype("float32")
    np.testing.assert_allclose(load_model(path)(x), model(x), atol=1e-5)


def test_augmentation_inside_the_model_runs_after_the_text_crop_and_only_in_training(tmp_path):
    import keras

    from recaptcha_tf.data.pipeline import text_augmentation
    from recaptcha_tf.inference.loading import load_model
    from recaptcha_tf.models import network_of

    crop, region = (0.25, 0.0, 0.75, 1.0), (96, 128)
    model = tiny_ink_crnn(crop, region=region, augmentation=text_augmentation(0))
    plain = tiny_ink_crnn(crop, region=region)
    network_of(plain).set_weights(network_of(model).get_weights())
    augmentation = model.get_layer("augmentation")
    assert augmentation.input.shape[1:] == (32, 64, 1)  # the network's input, not the 192x128 canvas
    x = np.random.default_rng(0).integers(0, 255, (2, 150, 100, 3)).astype("float32")
    np.testing.assert_allclose(model(x), plain(x), atol=1e-5)  # inference: the augmentation is the identity
    crop_only = keras.Model(model.input, augmentation.output)
    assert not np.allclose(crop_only(x, training=True), crop_only(x))  # training: it moves the pixels
    path = str(tmp_path / "m.keras")
    model.save(path)
    np.testing.assert_allclose(load_model(path)(x), model(x), atol=1e-5)


def test_fit_sees_light_backgrounds_colours_and_transparency(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    for i in range(6):
        rgba = np.zeros((40, 120, 4), np.uint8)
        rgba[10:30, 10:110] = (250, 30, 30, 255) if i % 2 else (30, 30, 250, 255)
        Image.fromarray(rgba, "RGBA").save(folder / f"ab{i}.png")
    fit = fit_text_input(sorted(str(p) for p in folder.iterdir()), max_length=2)
    assert fit.stats["transparent"] == 1.0
    assert fit.stats["coloured_text"] == 1.0


def _png(array: np.ndarray, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("glyph", [(20, 20, 20), (250, 250, 250), (250, 220, 0)])
def test_rgba_text_on_a_transparent_background_decodes_to_visible_glyphs(glyph):
    rgba = np.zeros((20, 40, 4), np.uint8)  # transparent pixels store black, as many exporters do
    rgba[6:14, 8:32] = (*glyph, 255)
    for channels in (1, 3):
        image = decode_image(_png(rgba, "RGBA"), channels).numpy().astype(int)
        assert image.shape == (20, 40, channels)
        background, text = image[0, 0].mean(), image[10, 20].mean()
        assert abs(background - text) > 100, (glyph, channels, background, text)


def test_grey_with_alpha_and_opaque_images_decode_as_before():
    la = np.zeros((10, 10, 2), np.uint8)
    la[..., 0], la[..., 1] = 40, 0
    la[3:7, 3:7] = (40, 255)
    image = decode_image(_png(la, "LA"), 1).numpy()
    assert image[0, 0, 0] == 255 and image[5, 5, 0] == 40
    rgb = np.random.default_rng(0).integers(0, 255, (10, 12, 3), dtype=np.uint8)
    assert np.array_equal(decode_image(_png(rgb, "RGB"), 3).numpy(), rgb)


def test_ink_map_reads_every_polarity_and_colour_the_same_way():
    dark = np.asarray(_text_image("ab12", (120, 40), ink=(20, 20, 20), paper=(235, 235, 235)), np.float32)
    light = 255 - dark
    coloured = np.asarray(_text_image("ab12", (120, 40), ink=(250, 200, 0), paper=(255, 255, 255)), np.float32)
    maps = InkMap()(np.stack([dark, light, coloured])).numpy()[..., 0]
    text = np.asarray(_text_image("ab12", (120, 40), ink=(0, 0, 0), paper=(255, 255, 255)).convert("L")) < 128
    for m in maps:
        assert m[text].mean() > 150 and m[~text].mean() < 20
    assert np.abs(maps[0] - maps[1]).max() < 1.0  # inverted colours give the same input


def test_ink_map_round_trips_in_a_saved_model(tmp_path):
    from recaptcha_tf.inference.loading import load_model, model_info

    model = tiny_ink_crnn((0.25, 0.0, 0.75, 1.0))
    info = model_info(model)
    assert info.channels == 3 and info.image_size == (64, 64)  # the canvas the crop box is cut from
    path = str(tmp_path / "m.keras")
    model.save(path)
    x = np.random.default_rng(0).integers(0, 255, (2, 50, 90, 3)).astype("float32")
    np.testing.assert_allclose(load_model(path)(x), model(x), atol=1e-5)


def test_plateau_warning_fires_on_a_model_that_reads_only_blanks(caplog):
    warning = BlankPlateauWarning(steps=100, steps_per_epoch=50, remedy="try more --steps")
    with caplog.at_level(logging.WARNING, logger="recaptcha_tf"):
        warning.on_epoch_end(0, {"val_blank_fraction": 1.0})  # 50 steps: too early to say
        assert not caplog.records and not warning.on_plateau
        warning.on_epoch_end(1, {"val_blank_fraction": 1.0})
        warning.on_epoch_end(2, {"val_blank_fraction": 0.95})
    assert warning.on_plateau
    assert len(caplog.records) == 1 and "blank plateau" in caplog.text and "try more --steps" in caplog.text
    warning.on_epoch_end(3, {"val_blank_fraction": 0.2})
    assert not warning.on_plateau


def test_early_stopping_waits_while_the_model_reads_blanks():
    stop = PlateauAwareEarlyStopping(monitor="val_cer", mode="min", patience=2)
    stop.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    stop.model.stop_training = False
    stop.on_train_begin()
    for epoch in range(10):  # CER stuck at 1.0 on the plateau: never stops
        stop.on_epoch_end(epoch, {"val_cer": 1.0, "val_blank_fraction": 1.0})
    assert not stop.model.stop_training
    for epoch in range(10, 14):  # left the plateau, then no improvement for 2 epochs: stops
        stop.on_epoch_end(epoch, {"val_cer": 0.5, "val_blank_fraction": 0.0})
    assert stop.model.stop_training


class _Updates(keras.callbacks.Callback):
    def on_train_end(self, logs=None):
        self.iterations = int(self.model.optimizer.iterations.numpy())


def test_early_stopping_is_off_by_default_when_too_few_images_validate(tmp_path, caplog):
    from recaptcha_tf.tasks import task_defaults
    from recaptcha_tf.training.text import default_patience, train_text

    defaults = task_defaults("text")
    enough = defaults["early_stopping_min_validation"]
    assert default_patience(enough, 20, defaults) == 5  # a quarter of the evaluations
    assert default_patience(enough, 4, defaults) == 3  # at least 3
    assert default_patience(enough - 1, 20, defaults) == 0  # e.g. 20 of 100 labels: the whole budget
    data = str(tmp_path / "set")
    _write_set(data, 16, (64, 24), 3)
    with caplog.at_level(logging.INFO, logger="recaptcha_tf"):
        summary = train_text(
            data, str(tmp_path / "run"), charset="abcd", steps=8, batch_size=4, logdir=None, augment=False,
            model_kwargs={"rnn_units": 4, "filters": [4, 4, 8, 8]},
        )  # fmt: skip
    assert re.search(r"no early stopping: \d+ validation images are too few", caplog.text)
    assert summary["epochs_run"] == defaults["evaluations"]  # every planned evaluation ran


def test_validation_sample_is_all_images_up_to_the_cap_then_a_seeded_spread_out_subset():
    from recaptcha_tf.training.text import validation_sample

    assert validation_sample(7, 512) == list(range(7))
    kept = validation_sample(2000, 512, seed=3)
    assert len(kept) == 512 == len(set(kept)) and kept == sorted(kept) and kept == validation_sample(2000, 512, seed=3)
    # not the first 512 (split order can follow the labels): the sample reaches the end of the split
    assert kept[-1] > 1500 and kept != list(range(512)) and kept != validation_sample(2000, 512, seed=4)


def test_the_default_steps_grow_for_a_small_input_and_do_not_shrink_for_a_large_one():
    from recaptcha_tf.training.text import step_budget

    assert step_budget(4000, (48, 192)) == 4000
    assert step_budget(4000, (48, 112)) == 6857  # 4,000 steps' pixels at 48x192
    # a 64 px input for long labels keeps every step: the time budget, not the step count, holds its run short
    assert step_budget(4000, (64, 256)) == step_budget(4000, (64, 160)) == step_budget(4000, (48, 256)) == 4000


@pytest.mark.slow
def test_a_step_budget_gives_the_same_updates_for_a_small_and_a_larger_set(tmp_path, monkeypatch):
    from recaptcha_tf import tasks
    from recaptcha_tf.training import text as text_trainer
    from recaptcha_tf.training.text import train_text

    # a validation cap of 5 images: the 48-image set's 7 validation images are sampled, the 16-image set's are not;
    # 4 evaluations instead of 20 keep the test short (each is a validation pass and a checkpoint)
    defaults = {"validation_images": 5, "evaluations": 4}
    monkeypatch.setattr(text_trainer, "task_defaults", lambda name: {**tasks.task_defaults(name), **defaults})
    updates = []
    for count in (16, 48):
        data = str(tmp_path / f"set{count}")
        _write_set(data, count, (64, 24), 3)
        counter = _Updates()
        summary = train_text(
            data,
            str(tmp_path / f"run{count}"),
            charset="abcd",
            steps=10,
            batch_size=4,
            logdir=None,
            patience=0,
            augment=False,
            callbacks=[counter],
            model_kwargs={"rnn_units": 4, "filters": [4, 4, 8, 8]},
        )
        updates.append(counter.iterations)
        assert summary["steps"] == 12  # 10 rounded up to 4 evaluations of 3 steps
        config = json.load(open(tmp_path / f"run{count}" / "config.json"))
        assert config["colour"] == "ink" and config["image_size"] == summary["image_size"]
        assert config.get("validation_images") == (5 if count == 48 else None)
    assert updates == [12, 12]


@pytest.mark.slow
def test_the_default_budget_is_cut_to_the_time_budget_and_a_resumed_run_keeps_its_measurement(
    tmp_path, monkeypatch, caplog
):
    from recaptcha_tf import tasks
    from recaptcha_tf.training import text as text_trainer
    from recaptcha_tf.training.text import train_text

    data = str(tmp_path / "set")
    _write_set(data, 16, (64, 24), 3)
    timed = []
    # 4 evaluations instead of 20 keep the test short (each is a validation pass and a checkpoint)
    monkeypatch.setattr(text_trainer, "task_defaults", lambda name: {**tasks.task_defaults(name), "evaluations": 4})

    def slow_machine(model, loss, dataset):  # the measurement itself is tested in tests/test_training.py
        timed.append(model.name)
        return 0.5  # seconds a step

    monkeypatch.setattr(text_trainer, "seconds_per_step", slow_machine)
    kwargs = dict(
        charset="abcd",
        batch_size=4,
        logdir=None,
        augment=False,
        time_budget=0.5,  # minutes: 60 steps at 0.5 s
        model_kwargs={"rnn_units": 4, "filters": [4, 4, 8, 8]},
    )
    out = str(tmp_path / "run")
    with caplog.at_level("WARNING", logger="recaptcha_tf"):
        summary = train_text(data, out, patience=20, **kwargs)
    assert timed == ["crnn"] and summary["steps"] == 60  # 4 evaluations of 15 steps, not the default thousands
    assert "--time-budget 0.5 minutes" in caplog.text and "--steps N runs exactly N" in caplog.text
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["step_seconds"] == 0.5 and config["time_budget_minutes"] == 0.5
    assert config["steps_per_epoch"] * config["epochs"] == 60
    # the same command again: the stored measurement is reused, so the config matches and the run is finished
    again = train_text(data, out, patience=20, **kwargs)
    assert timed == ["crnn"] and again["epochs_this_session"] == 0 and again["steps"] == 60
    # an explicit --steps is run exactly, with nothing timed
    given = train_text(data, str(tmp_path / "given"), steps=10, patience=20, **kwargs)
    assert timed == ["crnn"] and given["steps"] == 12
    assert "step_seconds" not in json.load(open(tmp_path / "given" / "config.json"))


@pytest.mark.slow
def test_a_default_run_whose_steps_run_slower_than_timed_stops_within_the_time_limit(tmp_path, monkeypatch, caplog):
    from recaptcha_tf import tasks
    from recaptcha_tf.training import text as text_trainer
    from recaptcha_tf.training.text import train_text

    data = str(tmp_path / "set")
    _write_set(data, 16, (64, 24), 3)
    monkeypatch.setattr(text_trainer, "task_defaults", lambda name: {**tasks.task_defaults(name), "evaluations": 4})
    # the timing says 1 ms a step, so 0.01 minutes (0.6 s) hold 600 steps: 4 evaluations of 150, while the real
    # steps take tens of milliseconds and the limit is 4/3 of the budget (0.8 s)
    monkeypatch.setattr(text_trainer, "seconds_per_step", lambda model, loss, dataset: 0.001)
    with caplog.at_level("WARNING", logger="recaptcha_tf"):
        summary = train_text(
            data,
            str(tmp_path / "run"),
            charset="abcd",
            batch_size=4,
            logdir=None,
            augment=False,
            time_budget=0.01,
            patience=20,
            model_kwargs={"rnn_units": 4, "filters": [4, 4, 8, 8]},
        )
    config = json.load(open(tmp_path / "run" / "config.json"))
    assert config["epochs"] * config["steps_per_epoch"] == 600
    assert summary["epochs_run"] == 1 and "another would pass the time budget of 0.0133333 minutes" in caplog.text
    assert summary["test"]["n"] > 0  # the run still ends with its test report


def test_checkpoint_score_is_the_cer_with_ties_broken_by_the_loss():
    from recaptcha_tf.training.callbacks import cer_then_loss

    # a lower CER always wins, whatever the losses (the smallest CER step of 100,000 characters is 1e-5)
    assert cer_then_loss(0.00099, 10.0) < cer_then_loss(0.001, 0.0)
    assert cer_then_loss(0.0, 50.0) < cer_then_loss(1e-5 + 1e-9, 0.0)
    # at equal CER the lower loss wins, so a perfect model keeps improving instead of stopping early
    assert cer_then_loss(0.0, 0.005) < cer_then_loss(0.0, 0.0067) < cer_then_loss(0.0, 0.0232)


def test_user_overrides_replace_what_the_fit_chose(tmp_path):
    from recaptcha_tf.data.text.fit import choose_text_input

    paths = _write_set(str(tmp_path / "set"), 12, (480, 320), 5, at=(160, 140), font_size=30)
    fitted = choose_text_input(paths, 5)
    assert fitted.crop is not None and fitted.colour == "ink"
    sized = choose_text_input(paths, 5, image_size=(32, 128))
    assert sized.image_size == (32, 128) and sized.crop is None and sized.colour == "ink"
    gray = choose_text_input(paths, 5, colour="gray")
    assert gray.colour == "gray" and gray.resize == "pad" and gray.region is None and gray.crop == fitted.crop


def test_grayscale_is_the_gray_colour_map_for_text_searches_and_contradicting_ink_is_an_error(tmp_path):
    from recaptcha_tf.training.text import train_text
    from recaptcha_tf.tuning.hypermodel import prepare_task_data

    data = str(tmp_path / "set")
    _write_set(data, 16, (64, 24), 3)
    common = dict(image_size=None, channels=None, resize=None, batch_size=4, charset="abcd")
    ink = prepare_task_data("text", data, str(tmp_path / "ink"), "crnn", **common)
    gray = prepare_task_data("text", data, str(tmp_path / "gray"), "crnn", colour="gray", **common)
    assert ink.channels == 3 and ink.text_input["colour"] == "ink"
    assert gray.channels == 1 and gray.text_input["colour"] == "gray" and gray.resize == "pad"
    assert next(iter(gray.train))[0].shape[-1] == 1
    with pytest.raises(ValueError, match="--grayscale and --colour ink"):
        train_text(data, str(tmp_path / "run"), grayscale=True, colour="ink", charset="abcd", logdir=None)
