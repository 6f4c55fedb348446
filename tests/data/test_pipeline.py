import io

import numpy as np
import pytest
from conftest import make_class_folders
from PIL import Image

from recaptcha_tf.data.folders import scan_class_folders
from recaptcha_tf.data.pipeline import batch_mixing, make_dataset, multi_hot, pad_sequences, tile_augmentation


@pytest.fixture
def small(tmp_path):
    root = str(tmp_path / "d")
    make_class_folders(root, per_class=5, sizes=(20, 31), modes=("RGB", "RGBA", "L"))
    return scan_class_folders(root)


def test_shapes_dtypes_and_ranges(small):
    ds = make_dataset(small.paths, small.labels, image_size=(16, 24), batch_size=4)
    batches = list(ds.as_numpy_iterator())
    assert sum(len(x) for x, _ in batches) == 15
    x, y = batches[0]
    assert x.shape == (4, 16, 24, 3) and x.dtype == np.uint8
    assert y.dtype.kind == "i" and set(y) <= {0, 1, 2}
    assert x.max() > 100  # real pixels, not a black image
    assert all(len(b[0]) <= 4 for b in batches)


def test_grayscale_and_inference_only(small):
    ds = make_dataset(small.paths, None, image_size=(12, 12), channels=1, batch_size=8)
    x = next(iter(ds.as_numpy_iterator()))
    assert x.shape == (8, 12, 12, 1) and x.dtype == np.uint8


def test_pad_keeps_aspect_ratio():
    buf = io.BytesIO()
    Image.new("RGB", (40, 10), (255, 255, 255)).save(buf, format="PNG")
    (pad,) = make_dataset([buf.getvalue()], None, image_size=(20, 20), resize="pad", batch_size=1)
    (stretch,) = make_dataset([buf.getvalue()], None, image_size=(20, 20), resize="stretch", batch_size=1)
    pad, stretch = pad.numpy()[0], stretch.numpy()[0]
    assert stretch.min() == 255
    assert pad[0].max() == 0 and pad[-1].max() == 0 and pad[10].min() == 255  # black bars top and bottom


def test_augmentation_changes_pixels_not_shapes(small):
    plain = make_dataset(small.paths, small.labels, image_size=(16, 16), batch_size=15)
    aug = make_dataset(small.paths, small.labels, image_size=(16, 16), batch_size=15, augment=tile_augmentation(seed=1))
    (x0, y0), (x1, y1) = next(iter(plain.as_numpy_iterator())), next(iter(aug.as_numpy_iterator()))
    assert x1.shape == x0.shape and x1.dtype == np.uint8
    assert (y0 == y1).all()
    assert np.abs(x0.astype(int) - x1.astype(int)).mean() > 1


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_batch_mixing_blends_images_and_labels_alike(small, kind):
    one_hot = multi_hot(small.labels, 3)
    plain = make_dataset(small.paths, one_hot, image_size=(16, 16), batch_size=15)
    mixed = make_dataset(small.paths, one_hot, image_size=(16, 16), batch_size=15, mix=batch_mixing(kind, seed=2))
    (x0, _), (x1, y1) = next(iter(plain.as_numpy_iterator())), next(iter(mixed.as_numpy_iterator()))
    assert x1.shape == x0.shape and x1.dtype == np.uint8 and y1.dtype == np.float32
    np.testing.assert_allclose(y1.sum(1), 1.0, atol=1e-5)  # still a distribution over the classes
    assert (y1 >= 0).all() and ((y1 > 0.01) & (y1 < 0.99)).any()  # some targets are now a blend of two
    changed = np.abs(x0.astype(int) - x1.astype(int)).reshape(15, -1).mean(1) > 0.5
    blended = y1.max(1) < 0.9
    assert blended.any() and (changed | ~blended).all()  # a target blended 10% or more comes with a changed image


def test_batch_mixing_needs_one_hot_labels_and_a_known_kind(small):
    with pytest.raises(ValueError, match="one-hot"):
        make_dataset(small.paths, small.labels, image_size=(8, 8), mix=batch_mixing("mixup"))
    with pytest.raises(ValueError, match="Unknown mix"):
        batch_mixing("mosaic")
    assert batch_mixing("none") is None


def test_shuffle_is_seeded_and_reshuffles(small):
    ds = make_dataset(small.paths, np.arange(15), image_size=(8, 8), batch_size=15, shuffle=True, seed=3)
    first = next(iter(ds))[1].numpy()
    second = next(iter(ds))[1].numpy()
    assert sorted(first) == list(range(15)) and not (first == second).all()


def test_file_cache(small, tmp_path):
    prefix = str(tmp_path / "cache" / "c")
    (tmp_path / "cache").mkdir()
    ds = make_dataset(small.paths, small.labels, image_size=(8, 8), cache=prefix)
    n = sum(len(x) for x, _ in ds)
    assert n == 15 and any(p.name.startswith("c") for p in (tmp_path / "cache").iterdir())


def test_label_helpers():
    assert multi_hot([[0, 2], [1]], 3).tolist() == [[1, 0, 1], [0, 1, 0]]
    assert pad_sequences([[1, 2], [3]], 3).tolist() == [[1, 2, 0], [3, 0, 0]]
    with pytest.raises(ValueError, match="at most 1"):
        pad_sequences([[1, 2]], 1)


def test_a_file_cache_prefix_never_serves_one_dataset_from_anothers_cache(tmp_path):
    """``--cache PREFIX`` gives the training and validation datasets (and a later split) their own files: the
    validation images are read, not the cached training images."""

    def images(name, value, count):
        paths = []
        for i in range(count):
            paths.append(str(tmp_path / f"{name}{i}.png"))
            Image.new("RGB", (8, 8), (value, value, value)).save(paths[-1])
        return paths

    prefix = str(tmp_path / "cache")
    train = make_dataset(images("t", 10, 4), [0] * 4, image_size=(8, 8), batch_size=4, cache=prefix)
    val = make_dataset(images("v", 200, 4), [1] * 4, image_size=(8, 8), batch_size=4, cache=prefix)
    (x_train, y_train), (x_val, y_val) = next(iter(train)), next(iter(val))
    assert int(x_train.numpy().max()) == 10 and y_train.numpy().tolist() == [0] * 4
    assert int(x_val.numpy().min()) == 200 and y_val.numpy().tolist() == [1] * 4


def test_a_training_list_longer_than_the_shuffle_buffer_is_permuted_first(monkeypatch):
    """Training lists come in class order; past the shuffle buffer, the first batches of an epoch would hold the
    first classes only. The list is permuted once (seeded) before the buffer."""
    import recaptcha_tf.data.pipeline as pipeline

    monkeypatch.setattr(pipeline, "SHUFFLE_BUFFER", 8)
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG")
    labels = np.repeat(np.arange(5), 16)  # 80 images, class by class
    ds = pipeline.make_dataset([buf.getvalue()] * 80, labels, image_size=(4, 4), batch_size=16, shuffle=True, seed=0)
    first = next(iter(ds))[1].numpy()
    assert len(set(first.tolist())) >= 3  # without the permutation: classes 0 and 1 only (a buffer of 8)
    again = next(iter(pipeline.make_dataset([buf.getvalue()] * 80, labels, image_size=(4, 4), batch_size=16,
                                             shuffle=True, seed=0)))[1].numpy()  # fmt: skip
    assert again.tolist() == first.tolist()  # seeded
