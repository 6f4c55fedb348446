"""benchmarks/background_tiles.py: the bias toward `other`, the false positives it lists, the contact sheet."""

import importlib.util
import os

import numpy as np
from PIL import Image

SCRIPT = os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks", "background_tiles.py")


def _script():
    spec = importlib.util.spec_from_file_location("background_tiles", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_bias_toward_other_lowers_the_background_false_positive_rate_and_keeps_rows_distributions():
    script = _script()
    names = ["car", "other", "palm"]
    probs = np.array([[0.8, 0.1, 0.1], [0.75, 0.2, 0.05], [0.1, 0.8, 0.1], [0.05, 0.05, 0.9]])  # rows: tiles
    labels = np.array([1, 1, 1, 2])  # three background tiles, two of them scored >= 0.7 as car
    assert script.false_positives(probs, labels, names, 0.7) == [0, 1]
    plain = script.scores(probs, labels, names)
    assert plain["background_fpr"] == round(2 / 3, 4)
    biased = script.other_biased(probs, 1, 3.0)
    np.testing.assert_allclose(biased.sum(axis=1), 1.0)
    assert (biased[:, 1] > probs[:, 1]).all()
    assert (biased.argmax(1) == [1, 1, 1, 1]).all()  # the cost: the palm tile (0.9) now reads other too
    assert script.scores(biased, labels, names)["background_fpr"] == 0.0
    np.testing.assert_allclose(script.other_biased(probs, 1, 0.0), probs)


def test_the_contact_sheet_holds_every_listed_tile(tmp_path):
    script = _script()
    paths = []
    for i in range(7):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (40, 40), (30 * i, 0, 0)).save(path)
        paths.append(str(path))
    sheet = script.contact_sheet(paths, [f"car {i}" for i in range(7)], str(tmp_path / "sheet.png"), columns=3, tile=20)
    with Image.open(sheet) as image:
        assert image.size == (3 * 30, 3 * 45)  # 7 tiles in rows of 3: 3 rows
        assert image.getpixel((2 * 30 + 5, 5)) == (60, 0, 0)  # the third tile where the third tile goes
