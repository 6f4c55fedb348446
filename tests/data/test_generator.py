"""Synthetic text CAPTCHAs: reproducibility, sizes, labels, both styles and both output formats."""

import io
import os
import random
import secrets
import time

import numpy as np
import pytest
from PIL import Image

from recaptcha_tf.data.generator import (
    default_fonts,
    generate_captchas,
    parse_length,
    parse_size,
    render_captcha,
)
from recaptcha_tf.data.text.formats import load_text_dataset


def folder_bytes(folder):
    return {name: open(os.path.join(folder, name), "rb").read() for name in sorted(os.listdir(folder))}


def test_parse_size_and_length():
    assert parse_size("200x50") == (200, 50)
    assert parse_size("160X60") == (160, 60)
    assert parse_length("4-6") == (4, 6)
    assert parse_length("5") == (5, 5)
    for bad in ("200", "200x", "axb", "4x4"):
        with pytest.raises(ValueError, match="200x50|at least 8"):
            parse_size(bad)
    for bad in ("6-4", "0", "a-b", "1-2-3", ""):
        with pytest.raises(ValueError, match="length"):
            parse_length(bad)


def test_default_fonts_come_from_installed_packages():
    fonts = default_fonts()
    names = [os.path.basename(f) for f in fonts]
    assert "DejaVuSans.ttf" in names and "DroidSansMono.ttf" in names
    assert all(os.path.isfile(f) for f in fonts)


@pytest.mark.parametrize("style", ["project", "captcha-lib"])
def test_render_captcha_size_and_mode(style):
    image = render_captcha("ab3d9", np.random.default_rng(0), size=(160, 60), style=style)
    assert image.mode == "RGB" and image.size == (160, 60)
    pixels = np.asarray(image)
    assert pixels.std() > 10  # something was drawn on the background
    with pytest.raises(ValueError, match="style"):
        render_captcha("ab", np.random.default_rng(0), style="fancy")


@pytest.mark.parametrize("style", ["project", "captcha-lib"])
def test_generator_is_deterministic(tmp_path, style):
    a = generate_captchas(str(tmp_path / "a"), count=6, seed=1, style=style)
    b = generate_captchas(str(tmp_path / "b"), count=6, seed=1, style=style)
    c = generate_captchas(str(tmp_path / "c"), count=6, seed=2, style=style)
    assert a == b
    assert folder_bytes(tmp_path / "a") == folder_bytes(tmp_path / "b")
    assert a != c
    # The first images do not depend on how many are generated.
    d = generate_captchas(str(tmp_path / "d"), count=3, seed=1, style=style)
    assert d == a[:3]
    first = sorted(f"{label}.png" for label in d)
    assert {k: folder_bytes(tmp_path / "a")[k] for k in first} == folder_bytes(tmp_path / "d")


def test_captcha_lib_style_restores_global_randomness(tmp_path):
    import captcha.image

    random.seed(123)
    expected = random.random()
    random.seed(123)
    generate_captchas(str(tmp_path / "lib"), count=2, style="captcha-lib")
    assert random.random() == expected
    assert captcha.image.secrets is secrets


def test_labels_lengths_and_charset(tmp_path):
    charset = "2345678bcdefgmnpwxy"
    labels = generate_captchas(str(tmp_path / "out"), count=40, length=(3, 5), charset=charset, seed=4)
    assert len(labels) == 40
    assert {len(label) for label in labels} == {3, 4, 5}
    assert set("".join(labels)) <= set(charset)
    fixed = generate_captchas(str(tmp_path / "fixed"), count=5, length=6, charset="A-Z", seed=4)
    assert all(len(label) == 6 and label.isupper() for label in fixed)
    images = [Image.open(os.path.join(tmp_path / "fixed", f)) for f in os.listdir(tmp_path / "fixed")]
    assert all(im.size == (200, 50) and im.mode == "RGB" for im in images)


def test_png_output_with_duplicates_reads_back(tmp_path):
    out = str(tmp_path / "png")
    # 13 labels from only 4 possible ones: repeats are certain.
    labels = generate_captchas(out, count=13, length=2, charset="ab", seed=0)
    files = sorted(os.listdir(out))
    assert len(files) == 13
    assert any("-" in f for f in files)
    data = load_text_dataset(out)  # decodes every file
    assert sorted(data.labels) == sorted(labels)
    assert data.skipped == []


def test_png_output_refuses_characters_unfit_for_file_names(tmp_path):
    with pytest.raises(ValueError, match="parquet"):
        generate_captchas(str(tmp_path / "x"), count=2, charset="ab_", format="png")


@pytest.mark.parametrize("target", ["caps.parquet", "folder"])
def test_parquet_output_reads_back(tmp_path, target):
    out = str(tmp_path / target)
    labels = generate_captchas(out, count=7, format="parquet", seed=3, size=(120, 40))
    path = out if out.endswith(".parquet") else os.path.join(out, "captchas.parquet")
    assert os.path.isfile(path)
    data = load_text_dataset(path)
    assert data.labels == labels
    assert data.skipped == []
    with Image.open(io.BytesIO(data.sources[0])) as im:
        assert im.format == "PNG" and im.size == (120, 40)


def test_preview_is_a_png_contact_sheet(tmp_path):
    preview = str(tmp_path / "sheet" / "preview.png")
    generate_captchas(str(tmp_path / "out"), count=20, preview=preview, style="captcha-lib")
    with Image.open(preview) as im:
        assert im.format == "PNG"
        assert im.width >= 4 * 200 and im.height >= 4 * 50


def test_generation_is_fast(tmp_path):
    start = time.perf_counter()
    generate_captchas(str(tmp_path / "fast"), count=100, format="parquet", seed=5)
    # About 3 ms per image on one core; this only catches a slowdown of several times.
    assert time.perf_counter() - start < 5.0


def test_generator_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="format"):
        generate_captchas(str(tmp_path / "x"), count=1, format="jpg")
    with pytest.raises(ValueError, match="style"):
        generate_captchas(str(tmp_path / "x"), count=1, style="fancy")
    with pytest.raises(ValueError):
        generate_captchas(str(tmp_path / "x"), count=1, length=(6, 4))
    with pytest.raises(ValueError, match="Reversed range"):
        generate_captchas(str(tmp_path / "x"), count=1, charset="z-a")


def test_a_wave_warp_bends_the_text_and_keeps_the_size_and_the_seed(tmp_path):
    from recaptcha_tf.data.distort import wave_warp

    plain = render_captcha("ab3d9", np.random.default_rng(0), size=(200, 50))
    assert np.array_equal(
        np.asarray(plain), np.asarray(render_captcha("ab3d9", np.random.default_rng(0), (200, 50), warp=0))
    )
    bent = wave_warp(plain, np.random.default_rng(1))
    a, b = np.asarray(plain, dtype=float), np.asarray(bent, dtype=float)
    assert bent.size == plain.size and np.abs(a - b).mean() > 1.0  # moved
    assert abs(a.mean() - b.mean()) < 0.1 * a.std()  # bent, not erased: the same ink on the same background
    columns = np.flatnonzero(np.abs(a - a[0, 0]).sum(axis=(0, 2)) > 100)  # columns with text in them

    def centre(img):  # each text column's ink centre, in rows
        return np.array(
            [np.average(np.arange(50), weights=np.abs(img[:, x] - img[0, 0]).sum(1) + 1e-6) for x in columns]
        )

    assert np.ptp(centre(b) - centre(a)) > 1.0  # rows moved by different amounts along the width: a wave
    generate_captchas(str(tmp_path / "w1"), count=4, seed=3, warp=1.0)
    generate_captchas(str(tmp_path / "w2"), count=4, seed=3, warp=1.0)
    generate_captchas(str(tmp_path / "w0"), count=4, seed=3)
    assert folder_bytes(tmp_path / "w1") == folder_bytes(tmp_path / "w2")
    assert folder_bytes(tmp_path / "w1") != folder_bytes(tmp_path / "w0")
    with pytest.raises(ValueError, match="warp"):
        generate_captchas(str(tmp_path / "x"), count=1, warp=1.5)
