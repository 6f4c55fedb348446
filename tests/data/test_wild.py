"""The ``wild`` generator style (recaptcha_tf.data.wild): fonts, determinism, defaults and the no-fonts error."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from recaptcha_tf.data.generator import default_fonts, generate_captchas
from recaptcha_tf.data.wild import NoFontsError, render_wild_captcha, usable_font, wild_fonts


@pytest.fixture(scope="module")
def font_folder(tmp_path_factory):
    """A folder of two text fonts (matplotlib's DejaVu, always installed) and a 'symbol' font by name."""
    folder = tmp_path_factory.mktemp("fonts")
    sans, mono = default_fonts()[0], default_fonts()[2]
    shutil.copy(sans, folder / "DejaVuSans.ttf")
    shutil.copy(mono, folder / "DejaVuSansMono.ttf")
    shutil.copy(sans, folder / "StandardSymbols.ttf")  # a letters-as-symbols font is skipped by its name
    return folder


def test_only_fonts_that_draw_every_character_distinctly_are_used(font_folder, tmp_path):
    fonts = wild_fonts(roots=[str(font_folder)])
    assert [os.path.basename(f) for f in fonts] == ["DejaVuSans.ttf", "DejaVuSansMono.ttf"]
    broken = tmp_path / "broken.ttf"
    broken.write_bytes(b"not a font")
    assert not usable_font(str(broken))


def test_a_pinned_font_list_selects_fonts_and_a_missing_one_is_an_error(font_folder, tmp_path):
    listing = tmp_path / "fonts.txt"
    listing.write_text("# pinned\nDejaVuSansMono.ttf\n")
    assert [os.path.basename(f) for f in wild_fonts([str(font_folder)], str(listing))] == ["DejaVuSansMono.ttf"]
    listing.write_text("DejaVuSansMono.ttf\nNoSuchFont-Regular.ttf\n")
    with pytest.raises(NoFontsError, match="NoSuchFont-Regular.ttf"):
        wild_fonts([str(font_folder)], str(listing))
    with pytest.raises(NoFontsError, match="apt-get install"):
        wild_fonts([str(tmp_path / "empty")])


def test_wild_images_vary_in_size_and_are_reproducible(font_folder):
    fonts = wild_fonts(roots=[str(font_folder)])
    first = [render_wild_captcha("Ab3xY", np.random.default_rng(seed), fonts) for seed in range(12)]
    again = [render_wild_captcha("Ab3xY", np.random.default_rng(seed), fonts) for seed in range(12)]
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, again))
    sizes = {image.size for image in first}
    assert len(sizes) > 6 and all(32 <= h <= 100 and w >= 2 * h for w, h in sizes)
    for image in first:  # the text is drawn: the image is not one flat background
        assert np.asarray(image.convert("L")).std() > 5
    fixed = render_wild_captcha("abc", np.random.default_rng(0), fonts, size=(160, 60))
    assert fixed.size == (160, 60)


def test_generate_wild_uses_the_styles_defaults(font_folder, tmp_path):
    fonts = wild_fonts(roots=[str(font_folder)])
    out = tmp_path / "wild"
    labels = generate_captchas(str(out), count=40, style="wild", fonts=fonts, seed=3, preview=str(tmp_path / "p.png"))
    assert all(3 <= len(label) <= 8 for label in labels)
    characters = set("".join(labels))
    assert any(c.isupper() for c in characters) and any(c.islower() for c in characters)
    assert any(c.isdigit() for c in characters)
    assert len(os.listdir(out)) == 40
    assert Image.open(tmp_path / "p.png").size[0] > 0


def test_generate_wild_without_fonts_is_one_error_line(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    listing = tmp_path / "fonts.txt"
    listing.write_text("NoSuchFont-Regular.ttf\n")
    result = subprocess.run(
        [sys.executable, "-m", "recaptcha_tf", "generate", "--style", "wild", "--out", str(tmp_path / "o"),
         "--count", "2", "--fonts", str(listing)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "apt-get install" in lines[0]


def test_ci_installs_the_wild_fonts():
    """.ci/run installs exactly the font packages the wild style names (so CI renders what the docs promise)."""
    from recaptcha_tf.data.wild import WILD_FONT_PACKAGES

    script = open(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, ".ci", "run")).read()
    line = next(line for line in script.splitlines() if line.startswith("WILD_FONT_PACKAGES="))
    assert line.split("=", 1)[1].strip('"').split() == list(WILD_FONT_PACKAGES)
