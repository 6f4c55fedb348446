"""Figures for notebooks and reports (evaluation.plots), and the helpers the notebooks use to analyse results."""

import os

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from recaptcha_tf.evaluation import plots as plots
from recaptcha_tf.evaluation.metrics import character_confusions, confusable_pairs, markdown_table


def titles(fig):
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def shown_images(fig):
    return [ax.images[0].get_array() for ax in fig.axes if ax.images]


@pytest.fixture
def files(tmp_path):
    """Six 20x30 images of three classes (RGBA, palette, 16-bit grayscale among them); pixel value = index * 40."""
    paths = []
    for i, mode in enumerate(["RGB", "RGBA", "P", "L", "I;16", "RGB"]):
        path = str(tmp_path / f"{i}.png")
        if mode == "I;16":
            Image.fromarray(np.full((30, 20), i * 40 * 257, np.uint16)).save(path)
        else:
            Image.new("RGB", (20, 30), (i * 40,) * 3).convert(mode).save(path)
        paths.append(path)
    return paths, [0, 0, 1, 1, 2, 2], ["bus", "hydrant", "palm"]


def test_load_thumbnails_resizes_and_converts_every_mode(files):
    paths, _, _ = files
    rgb = plots.load_thumbnails(paths, size=(16, 12))
    assert all(t.shape == (16, 12, 3) and t.dtype == np.uint8 for t in rgb)
    # the palette image is quantised by Pillow (80 becomes 77); the 16-bit one keeps its top byte
    assert np.allclose([int(t[8, 6, 0]) for t in rgb], [0, 40, 80, 120, 160, 200], atol=4)
    gray = plots.load_thumbnails(paths[:2], size=(8, 8), channels=1)
    assert gray[0].shape == (8, 8, 1)


def test_image_grid_titles_each_image(files):
    paths, _, _ = files
    fig = plots.image_grid(paths[:3], ["a", "b", "c"], columns=2, size=(10, 10))
    assert titles(fig) == ["a", "b", "c"] and len(fig.axes) == 4  # 2x2 grid, last cell empty
    plt.close(fig)
    with pytest.raises(ValueError, match="No images"):
        plots.image_grid([], [])


def test_class_sample_grid_has_one_row_per_class_and_pads_small_classes(files):
    paths, labels, names = files
    labels = [0, 0, 0, 1, 1, 2]  # palm has a single image
    fig = plots.class_sample_grid(paths, labels, names, per_class=2, size=(10, 10), seed=1)
    assert titles(fig) == ["bus", "bus", "hydrant", "hydrant", "palm"]
    images = shown_images(fig)
    assert len(images) == 6 and int(images[-1].min()) == 255  # the blank pad cell
    assert int(images[4][5, 5, 0]) == 200  # palm's only image is paths[5]
    plt.close(fig)
    # seeded: the same seed picks the same images
    again = plots.class_sample_grid(paths, labels, names, per_class=2, size=(10, 10), seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(images, shown_images(again)))
    flowing = plots.class_sample_grid(paths, labels, names, per_class=2, size=(10, 10), columns=5, scale=0.5)
    assert len(shown_images(flowing)) == 5  # no padding when filling rows
    assert flowing.get_size_inches()[0] < again.get_size_inches()[0] * 5 / 2
    plt.close("all")


def test_misclassified_grid_shows_only_mistakes_most_confident_first(files):
    paths, labels, names = files
    probs = np.array(
        [
            [0.9, 0.05, 0.05],  # right
            [0.2, 0.7, 0.1],  # wrong, 0.7
            [0.1, 0.8, 0.1],  # right
            [0.05, 0.05, 0.9],  # wrong, 0.9
            [0.1, 0.1, 0.8],  # right
            [0.6, 0.3, 0.1],  # wrong, 0.6
        ]
    )
    fig = plots.misclassified_grid(paths, labels, probs, names, limit=2, size=(10, 10))
    assert titles(fig) == ["x palm (0.90)\ntrue: hydrant", "x hydrant (0.70)\ntrue: bus"]
    assert "2 of 3 misclassified (of 6)" in fig._suptitle.get_text()
    assert [int(i[5, 5, 0]) for i in shown_images(fig)] == [120, 40]
    plt.close(fig)
    right = plots.misclassified_grid(paths, labels, np.eye(3)[labels], names)
    assert "No misclassified images among 6" in right.axes[0].texts[0].get_text()
    plt.close(right)


def test_history_figure_plots_training_and_validation_per_metric(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text(
        "epoch,accuracy,learning_rate,loss,val_accuracy,val_loss\n"
        "0,0.5,0.001,1.2,0.4,1.3\n1,0.7,0.001,0.9,0.6,1.0\n2,0.8,0.0005,0.7,0.65,0.95\n"
    )
    fig = plots.history_figure(str(path), phase_boundary=1)
    assert titles(fig) == ["accuracy", "loss"]  # learning_rate is not a metric panel
    loss = fig.axes[1]
    assert [list(line.get_ydata()) for line in loss.lines[:2]] == [[1.2, 0.9, 0.7], [1.3, 1.0, 0.95]]
    assert list(loss.lines[0].get_xdata()) == [1, 2, 3]
    assert list(loss.lines[2].get_xdata()) == [1.5, 1.5]  # fine-tuning starts after epoch 1
    plt.close(fig)
    (tmp_path / "empty.csv").write_text("epoch,loss\n")
    with pytest.raises(ValueError, match="no epochs"):
        plots.history_figure(str(tmp_path / "empty.csv"))


def test_challenge_figure_marks_right_false_and_missed_cells(files):
    paths, _, _ = files
    tiles = (paths * 2)[:9]
    fig = plots.challenge_figure(tiles, answer=[0, 4], picked=[0, 5], target="bus", size=(10, 10))
    t = titles(fig)
    assert t[0] == "1 picked" and t[4] == "5 MISSED" and t[5] == "6 FALSE PICK" and t[1] == "2 "
    assert "not solved" in fig._suptitle.get_text()
    plt.close(fig)
    solved = plots.challenge_figure(tiles, [2], [2], "bus", size=(10, 10))
    assert solved._suptitle.get_text().endswith(": solved")
    plt.close(solved)
    with pytest.raises(ValueError, match="needs 16 tiles"):
        plots.challenge_figure(tiles, [0], [0], "bus", grid=4)


def test_figures_save_to_png(tmp_path, files):
    paths, labels, names = files
    out = plots.save_figure(plots.class_sample_grid(paths, labels, names, per_class=1), str(tmp_path / "grid.png"))
    assert os.path.getsize(out) > 1000 and Image.open(out).size[0] > 100


def test_character_confusions_align_strings_of_different_length():
    # "lo0" -> "1o": l read as 1, the 0 dropped (a deletion is not a confusion)
    assert character_confusions(["lo0", "abc", "o0"], ["1o", "abc", "oo"]) == {("0", "o"): 1, ("l", "1"): 1}


def test_confusable_pairs_count_both_directions_most_frequent_first():
    refs = ["0a", "o0", "0b", "l1", "xy"]
    hyps = ["oa", "oo", "ob", "11", "xy"]
    pairs = confusable_pairs(refs, hyps)
    assert pairs[0] == {"pair": "0/o", "a_read_as_b": 3, "b_read_as_a": 0, "total": 3, "share": 0.75}
    assert pairs[1]["pair"] == "1/l" and pairs[1]["b_read_as_a"] == 1
    refs, hyps = ["o1", "0i"], ["01", "oi"]  # o read as 0 once, 0 read as o once
    assert confusable_pairs(refs, hyps) == [
        {"pair": "0/o", "a_read_as_b": 1, "b_read_as_a": 1, "total": 2, "share": 1.0}
    ]
    assert confusable_pairs(["abc"], ["abc"]) == []
    assert len(confusable_pairs(["abcdef"], ["ghijkl"], top=3)) == 3


def test_markdown_table_formats_numbers_missing_values_and_pipes():
    text = markdown_table([{"name": "a|b", "score": 0.123456}, {"name": "c", "extra": 3}])
    assert text.splitlines() == ["| name | score | extra |", "|---|---|---|", "| a\\|b | 0.1235 |  |", "| c |  | 3 |"]
    assert markdown_table([{"x": 1.5, "y": 2}], columns=["y"]).splitlines()[-1] == "| 2 |"
