"""Image decoding by content, shared by the tf.data pipeline, validation and ``predict``.

TensorFlow's ``decode_image`` sniffs the format from the bytes (PNG, JPEG, BMP,
GIF), so a JPEG saved with a ``.png`` extension decodes correctly. PNG modes L,
P (palette), RGBA and 16-bit are converted to the requested channel count and
to ``uint8`` by libpng itself.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")

log = logging.getLogger("recaptcha_tf")


class CorruptImageError(ValueError):
    """A file or upload could not be decoded as an image."""


def is_image_file(path: str) -> bool:
    """True for names with an image extension (case-insensitive); hidden files are never images."""
    name = os.path.basename(path)
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def decode_image(contents, channels: int = 3):
    """Decode encoded image bytes to a ``uint8`` tensor of shape ``(H, W, channels)``.

    Transparent images (RGBA, grey+alpha, palette with transparency) are
    composited onto a plain background before the alpha is dropped: white, or
    black when the visible pixels are mostly light (light text on a transparent
    background), so glyphs never vanish into the black that transparent pixels
    often store. Opaque images are unchanged.

    Args:
        contents: scalar ``tf.string`` tensor (or Python bytes) with PNG/JPEG/BMP/GIF data.
        channels: 1 (grayscale) or 3 (RGB). The first GIF frame is used.
    """
    import tensorflow as tf

    image = tf.io.decode_image(contents, channels=0, dtype=tf.uint8, expand_animations=False)
    image = _composite_alpha(image)
    depth = tf.shape(image)[-1]
    if channels == 1:
        image = tf.cond(depth == 1, lambda: image, lambda: tf.cast(
            tf.round(tf.image.rgb_to_grayscale(tf.cast(image[..., :3], tf.float32))), tf.uint8))
    else:
        image = tf.cond(depth == 1, lambda: tf.tile(image, [1, 1, 3]), lambda: image[..., :3])
    image.set_shape([None, None, channels])
    return image


def _composite_alpha(image):
    """``(H, W, 2 or 4)`` grey/colour + alpha -> ``(H, W, 1 or 3)`` on a plain background; others unchanged.

    The background is white unless the alpha-weighted mean brightness of the
    colour channels is above 127 (light glyphs), then black.
    """
    import tensorflow as tf

    depth = tf.shape(image)[-1]

    def composite():
        pixels = tf.cast(image, tf.float32)
        colour, alpha = pixels[..., :-1], pixels[..., -1:] / 255.0
        weight = tf.reduce_sum(alpha)
        brightness = tf.reduce_sum(tf.reduce_mean(colour, -1, keepdims=True) * alpha) / tf.maximum(weight, 1.0)
        background = tf.where(brightness > 127.0, 0.0, 255.0)
        return tf.cast(tf.round(colour * alpha + background * (1.0 - alpha)), tf.uint8)

    has_alpha = tf.logical_or(tf.equal(depth, 2), tf.equal(depth, 4))
    # tf.cond needs one static rank; the channel count differs between branches, which is allowed.
    return tf.cond(has_alpha, composite, lambda: image)


def find_undecodable(sources: Sequence, channels: int = 3) -> list[int]:
    """Indices of ``sources`` (paths or bytes) that TensorFlow cannot decode.

    Uses the same decoder as training, in parallel, so that anything it accepts
    will not crash an epoch later. Cost: one decode per image (thousands per second).
    """
    import tensorflow as tf

    if not sources:
        return []
    is_path = isinstance(sources[0], str)
    ds = tf.data.Dataset.from_tensor_slices(
        (list(range(len(sources))), [s if is_path else bytes(s) for s in sources])
    )

    def check(i, s):
        data = tf.io.read_file(s) if is_path else s
        image = decode_image(data, channels)
        return i, tf.reduce_min(tf.shape(image)[:2])

    ds = ds.map(check, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    ds = ds.ignore_errors().batch(1024)
    ok = set()
    for idx, smallest in ds.as_numpy_iterator():
        ok.update(int(i) for i, m in zip(idx, smallest) if m > 0)
    return [i for i in range(len(sources)) if i not in ok]


def warn_skipped(names: Sequence[str], what: str = "corrupt image") -> None:
    """One warning naming every skipped file and how many there are."""
    if names:
        shown = ", ".join(str(n) for n in names[:50])
        more = f" (and {len(names) - 50} more)" if len(names) > 50 else ""
        log.warning("Skipped %d %s file(s): %s%s", len(names), what, shown, more)


def load_image_array(source, channels: int = 3, max_pixels: int | None = None) -> np.ndarray:
    """Decode one image file or bytes to a ``uint8`` NumPy array ``(H, W, channels)``.

    Raises :class:`CorruptImageError` with the file name instead of a TensorFlow
    error, and refuses images over ``max_pixels`` before decoding them fully.
    """
    import tensorflow as tf

    name = source if isinstance(source, str) else "<bytes>"
    try:
        data = open(source, "rb").read() if isinstance(source, str) else bytes(source)
    except OSError as err:
        raise CorruptImageError(f"Cannot read {name}: {err}") from err
    if max_pixels is not None:
        check_image_size(data, max_pixels, name)
    try:
        return decode_image(data, channels).numpy()
    except (tf.errors.InvalidArgumentError, ValueError) as err:
        raise CorruptImageError(f"{name} is not a readable PNG/JPEG/BMP/GIF image.") from err


def check_image_size(data: bytes, max_pixels: int, name: str = "<bytes>") -> tuple[int, int]:
    """Read only the header and refuse images larger than ``max_pixels`` (decompression bombs)."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
    except Exception as err:  # PIL raises many types for junk input
        raise CorruptImageError(f"{name} is not a readable image.") from err
    if width * height > max_pixels:
        raise CorruptImageError(
            f"{name} is {width}x{height} = {width * height} pixels, over the limit of {max_pixels}."
        )
    return width, height
