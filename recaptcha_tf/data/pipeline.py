"""tf.data input pipelines for image classification and text CAPTCHAs.

The order follows the TensorFlow data performance guide:

    list files -> parallel read+decode+resize -> cache -> shuffle -> batch
    -> random augmentation (Keras preprocessing layers, after the cache)
    -> prefetch(AUTOTUNE)

Images leave the pipeline as ``uint8`` tensors ``(B, H, W, C)`` at the model's
input size, the same pixels a saved model sees from raw images, because the
resize here uses the same Keras layer the model applies to raw input.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from recaptcha_tf.data.images import decode_image

AUTOTUNE = tf.data.AUTOTUNE
RESIZE_MODES = ("stretch", "pad")


def resizing_layer(image_size: tuple[int, int], resize: str = "stretch") -> keras.layers.Layer:
    """The Keras layer that fits any image to ``image_size = (height, width)``.

    ``"stretch"`` ignores the aspect ratio; ``"pad"`` keeps it and pads with black.
    """
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}.")
    height, width = image_size
    return keras.layers.Resizing(
        height,
        width,
        interpolation="bilinear",
        pad_to_aspect_ratio=(resize == "pad"),
        name="resize",
        dtype="float32",
    )


def tile_augmentation(
    flip: bool = True, rotation: float = 0.05, zoom: float = 0.1, contrast: float = 0.2, seed: int | None = None
) -> keras.Sequential:
    """Random augmentation for image tiles: flip, rotation (fraction of 2*pi), zoom, contrast."""
    layers = []
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if rotation:
        layers.append(keras.layers.RandomRotation(rotation, fill_mode="reflect", seed=seed))
    if zoom:
        layers.append(keras.layers.RandomZoom(zoom, fill_mode="reflect", seed=seed))
    if contrast:
        layers.append(keras.layers.RandomContrast(contrast, value_range=(0, 255), seed=seed))
    return keras.Sequential(layers, name="augmentation")


def text_augmentation(seed: int | None = None) -> keras.Sequential:
    """Mild augmentation for text CAPTCHAs: no flips; small shifts, rotation, zoom, contrast."""
    return keras.Sequential(
        [
            keras.layers.RandomTranslation(0.06, 0.03, fill_mode="nearest", seed=seed),
            keras.layers.RandomRotation(0.01, fill_mode="nearest", seed=seed),
            keras.layers.RandomZoom((-0.08, 0.08), fill_mode="nearest", seed=seed),
            keras.layers.RandomContrast(0.3, value_range=(0, 255), seed=seed),
        ],
        name="augmentation",
    )


SHUFFLE_BUFFER = 10_000  # images; a larger training list is permuted once (seeded) before the buffer


def cache_file(prefix: str, sources, labels, image_size, channels: int, resize: str) -> str:
    """``prefix`` made unique to what the dataset holds (its images, labels and decoding), so that the training
    and validation datasets of a run, or a later run with another split, never read each other's cache."""
    import hashlib

    digest = hashlib.sha1(repr((tuple(image_size), channels, resize)).encode())
    for source in sources:
        digest.update(source if isinstance(source, bytes) else str(source).encode())
        digest.update(b"\0")
    if labels is not None:
        digest.update(np.ascontiguousarray(np.asarray(labels)).tobytes())
    return f"{prefix}-{digest.hexdigest()[:16]}"


def make_dataset(
    sources: Sequence,
    labels=None,
    image_size: tuple[int, int] = (120, 120),
    channels: int = 3,
    resize: str = "stretch",
    batch_size: int = 32,
    shuffle: bool = False,
    cache: bool | str = True,
    augment: keras.layers.Layer | None = None,
    mix: keras.layers.Layer | None = None,
    seed: int = 0,
    parallel: bool = True,
    prefetch: bool = True,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Build a batched dataset of ``(images, labels)`` or of images alone.

    Args:
        sources: image file paths, or encoded image bytes (decoded by content).
        labels: per-image labels (``int`` class indices, multi-hot float vectors,
            or padded int sequences for text), or ``None`` for inference.
        image_size: ``(height, width)`` in pixels.
        channels: 3 for RGB, 1 for grayscale.
        resize: ``"stretch"`` or ``"pad"`` (keep aspect ratio).
        batch_size: images per batch.
        shuffle: reshuffle every epoch (training).
        cache: ``True`` caches decoded images in memory, a string caches them
            in files with that prefix, ``False`` disables caching.
        augment: a Keras layer applied to float batches after the cache (training).
        mix: a Keras layer mixing images *and* labels across a batch (``keras.layers.MixUp``
            or ``CutMix``, see :func:`batch_mixing`), applied after ``augment``; labels
            must be one-hot or multi-hot and come back as ``float32``.
        seed: shuffle seed.
        parallel: parallel map with AUTOTUNE (``False`` gives the naive pipeline).
        prefetch: prefetch batches with AUTOTUNE.

    Returns:
        ``tf.data.Dataset`` of ``uint8`` images ``(B, H, W, channels)`` (and labels).
    """
    sources = list(sources)
    if not sources:
        raise ValueError("make_dataset() got no images.")
    is_path = isinstance(sources[0], str)
    calls = AUTOTUNE if parallel else None
    resizer = resizing_layer(image_size, resize)

    def load(source):
        return load_image(tf.io.read_file(source) if is_path else source, channels, resizer)

    if labels is not None:
        labels = np.asarray(labels)
        if len(labels) != len(sources):
            raise ValueError(f"{len(sources)} images but {len(labels)} labels.")
    if shuffle and len(sources) > SHUFFLE_BUFFER:  # lists come in class order: a buffer this size would start
        order = np.random.default_rng(seed).permutation(len(sources))  # each epoch with a few classes only
        sources = [sources[i] for i in order]
        labels = labels[order] if labels is not None else None
    if labels is None:
        ds = tf.data.Dataset.from_tensor_slices(sources)
        ds = ds.map(load, num_parallel_calls=calls)
    else:
        ds = tf.data.Dataset.from_tensor_slices((sources, labels))
        ds = ds.map(lambda s, y: (load(s), y), num_parallel_calls=calls)
    if mix is not None and (labels is None or labels.ndim != 2):
        raise ValueError("mix needs one-hot (or multi-hot) labels of shape (N, classes).")
    if cache:
        prefix = cache_file(cache, sources, labels, image_size, channels, resize) if isinstance(cache, str) else ""
        ds = ds.cache(prefix)
    if shuffle:
        ds = ds.shuffle(min(len(sources), SHUFFLE_BUFFER), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if augment is not None or mix is not None:

        def transform(images, targets=None):
            """One float pass per batch: augment, then mix images and labels, then back to uint8."""
            images = tf.cast(images, tf.float32)
            if augment is not None:
                images = augment(images, training=True)
            if mix is not None:
                mixed = mix({"images": images, "labels": tf.cast(targets, tf.float32)}, training=True)
                images, targets = mixed["images"], mixed["labels"]
            return to_uint8(images) if labels is None else (to_uint8(images), targets)

        ds = ds.map(transform, num_parallel_calls=calls)
    if prefetch:
        ds = ds.prefetch(AUTOTUNE)
    return ds


def load_image(contents, channels: int, resizer: keras.layers.Layer):
    """Encoded image bytes -> ``uint8`` ``(H, W, channels)`` at the resizer's size.

    The one decode-and-resize used by training, evaluation, ``predict`` and
    ``serve`` (:class:`recaptcha_tf.inference.Inference`), so they all see the
    same pixels.
    """
    return fit_image(decode_image(contents, channels), resizer)


def fit_image(image, resizer: keras.layers.Layer):
    """Pixels ``(H, W, C)`` or ``(B, H, W, C)`` of any size -> ``uint8`` at the resizer's size (rounded)."""
    return to_uint8(resizer(tf.cast(image, tf.float32)))


def to_uint8(images):
    """Float pixels back to ``uint8`` (rounded, clipped to 0-255)."""
    return tf.cast(tf.clip_by_value(tf.round(images), 0, 255), tf.uint8)


MIXES = ("none", "mixup", "cutmix")


def batch_mixing(kind: str = "none", seed: int | None = None) -> keras.layers.Layer | None:
    """Keras's batch mixing layer by name: ``mixup`` (alpha 0.2), ``cutmix`` (factor 1.0) or ``none``.

    Both blend pairs of images in a batch and their one-hot labels in the same
    proportion (MixUp: pixel-wise; CutMix: a pasted rectangle, by its area).
    """
    if kind not in MIXES:
        raise ValueError(f"Unknown mix {kind!r}; choose from {MIXES}.")
    if kind == "mixup":
        return keras.layers.MixUp(alpha=0.2, seed=seed)
    if kind == "cutmix":
        return keras.layers.CutMix(factor=1.0, seed=seed)
    return None


def multi_hot(labels: Sequence, num_classes: int) -> np.ndarray:
    """``[[0, 2], [1]]`` -> float32 multi-hot array ``(N, num_classes)``; ints become one-hot."""
    out = np.zeros((len(labels), num_classes), dtype=np.float32)
    for i, lab in enumerate(labels):
        for j in lab if isinstance(lab, (list, tuple, np.ndarray)) else [lab]:
            out[i, int(j)] = 1.0
    return out


def pad_sequences(encoded: Sequence[Sequence[int]], max_length: int) -> np.ndarray:
    """Right-pad integer label sequences with 0 (the CTC blank / end symbol) to ``max_length``."""
    out = np.zeros((len(encoded), max_length), dtype=np.int32)
    for i, seq in enumerate(encoded):
        if len(seq) > max_length:
            raise ValueError(f"Label {i} has {len(seq)} characters; the model reads at most {max_length}.")
        out[i, : len(seq)] = seq
    return out


def curriculum_dataset(stages: list, boundaries: list[int], start_step: int = 0):
    """Batches of ``stages[0]`` until step ``boundaries[0]``, then of ``stages[1]`` until ``boundaries[1]``, ...,
    then of ``stages[-1]`` for good.

    Args:
        stages: batched datasets that repeat forever (e.g. labels up to 3 characters, up to 4, ..., every image);
            one more than ``boundaries``.
        boundaries: the optimizer steps at which each stage ends, increasing.
        start_step: steps already trained (a resumed run): the order goes on from there.

    Returns:
        A dataset of the stages' batches, one per step, that repeats forever.
    """
    import tensorflow as tf

    if len(stages) != len(boundaries) + 1:
        raise ValueError(f"{len(stages)} stages need {len(stages) - 1} boundaries, got {len(boundaries)}.")
    ends = tf.constant(boundaries, tf.int64)
    selector = tf.data.Dataset.range(start_step, 2**62).map(lambda step: tf.reduce_sum(tf.cast(step >= ends, tf.int64)))
    return tf.data.Dataset.choose_from_datasets(stages, selector)
