"""Image decoding by content, shared by the tf.data pipeline, validation and ``predict``.

TensorFlow's ``decode_image`` sniffs the format from the bytes (PNG, JPEG, BMP,
GIF), so a JPEG saved with a ``.png`` extension decodes correctly. PNG modes L,
P (palette), RGBA and 16-bit are converted to the requested channel count and
to ``uint8`` by libpng itself.

Pixel limit: a 400 KB PNG can declare 20000x20000 pixels (1.2 GB decoded). Every
decode here first reads the width and height from the header (PNG IHDR, JPEG SOF,
GIF and BMP headers, inside the TensorFlow graph too) and refuses images over
:func:`max_pixels` (default :data:`DEFAULT_MAX_PIXELS`, 4096 x 4096; the CLI's
``--max-pixels`` changes it, ``0`` turns it off), like Pillow's ``MAX_IMAGE_PIXELS``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")

log = logging.getLogger("recaptcha_tf")


DEFAULT_MAX_PIXELS = 4096 * 4096
_limit = {"max_pixels": DEFAULT_MAX_PIXELS}


class CorruptImageError(ValueError):
    """A file or upload could not be decoded as an image (or is over the pixel limit)."""


def max_pixels() -> int:
    """The process-wide pixel limit (width x height) of every decode; 0 means none."""
    return _limit["max_pixels"]


def set_max_pixels(limit: int | None) -> int:
    """Set the pixel limit (``None`` restores the default, ``0`` disables it); returns the previous one."""
    if limit is not None and (isinstance(limit, bool) or int(limit) < 0):
        raise ValueError(f"The pixel limit must be 0 (none) or a positive number of pixels, got {limit!r}.")
    previous = _limit["max_pixels"]
    _limit["max_pixels"] = DEFAULT_MAX_PIXELS if limit is None else int(limit)
    return previous


def is_image_file(path: str) -> bool:
    """True for names with an image extension (case-insensitive); hidden files are never images."""
    name = os.path.basename(path)
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _header_pixels(contents):
    """Width x height declared by a PNG, JPEG, GIF or BMP header, as a scalar ``int64`` tensor (0 if unknown).

    Reads a few header bytes only; nothing is decompressed.
    """
    import tensorflow as tf

    def number(offset, size, little_endian):
        raw = tf.cast(tf.io.decode_raw(tf.strings.substr(contents, offset, size), tf.uint8), tf.int64)
        raw = raw if little_endian else tf.reverse(raw, [0])
        return tf.reduce_sum(raw * tf.constant([256**i for i in range(size)], tf.int64))

    def bmp():
        height = number(22, 4, True)
        return number(18, 4, True) * tf.where(height >= 2**31, 2**32 - height, height)  # top-down BMPs

    def jpeg():
        return tf.reduce_prod(tf.cast(tf.image.extract_jpeg_shape(contents)[:2], tf.int64))

    length = tf.strings.length(contents)
    head = tf.strings.substr(contents, 0, 8)
    return tf.case(
        [
            (
                tf.logical_and(tf.equal(head, b"\x89PNG\r\n\x1a\n"), length >= 24),
                lambda: number(16, 4, False) * number(20, 4, False),
            ),
            (tf.logical_and(tf.equal(tf.strings.substr(head, 0, 3), b"\xff\xd8\xff"), length >= 4), jpeg),
            (
                tf.logical_and(tf.equal(tf.strings.substr(head, 0, 3), b"GIF"), length >= 10),
                lambda: number(6, 2, True) * number(8, 2, True),
            ),
            (tf.logical_and(tf.equal(tf.strings.substr(head, 0, 2), b"BM"), length >= 26), bmp),
        ],
        default=lambda: tf.constant(0, tf.int64),
    )


def decode_image(contents, channels: int = 3, limit: int | None = None):
    """Decode encoded image bytes to a ``uint8`` tensor of shape ``(H, W, channels)``.

    Transparent images (RGBA, grey+alpha, palette with transparency) are
    composited onto a plain background before the alpha is dropped: white, or
    black when the visible pixels are mostly light (light text on a transparent
    background), so glyphs never vanish into the black that transparent pixels
    often store. Opaque images are unchanged.

    Args:
        contents: scalar ``tf.string`` tensor (or Python bytes) with PNG/JPEG/BMP/GIF data.
        channels: 1 (grayscale) or 3 (RGB). The first GIF frame is used.
        limit: pixel limit checked on the header before decoding (an ``InvalidArgumentError``);
            default :func:`max_pixels`, ``0`` for none.
    """
    import tensorflow as tf

    limit = max_pixels() if limit is None else limit
    checks = []
    if limit:
        checks.append(
            tf.debugging.assert_less_equal(
                _header_pixels(contents),
                tf.constant(limit, tf.int64),
                message=f"The image is over the pixel limit of {limit} (width x height; --max-pixels raises it).",
            )
        )
    with tf.control_dependencies(checks):
        image = tf.io.decode_image(contents, channels=0, dtype=tf.uint8, expand_animations=False)
    image = _composite_alpha(image)
    depth = tf.shape(image)[-1]
    if channels == 1:
        image = tf.cond(
            depth == 1,
            lambda: image,
            lambda: tf.cast(tf.round(tf.image.rgb_to_grayscale(tf.cast(image[..., :3], tf.float32))), tf.uint8),
        )
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


def header_not_in_graph(data: bytes) -> bool:
    """Whether the graph's header check (:func:`_header_pixels`) cannot vouch for ``data``'s size: a GIF (its first
    frame, which TensorFlow decodes, may be larger than the canvas its header declares) or a format it does not
    parse (a WebP file under a ``.png`` name). Such data is checked with Pillow's header parse first
    (:func:`check_image_size`)."""
    head = bytes(data[:8])
    return not (head.startswith(b"\x89PNG") or head.startswith(b"\xff\xd8\xff") or head.startswith(b"BM"))


def find_undecodable(sources: Sequence, channels: int = 3, warn: bool = True) -> list[int]:
    """Indices of ``sources`` (paths or bytes) that TensorFlow cannot decode.

    Uses the same decoder as training, in parallel, so that anything it accepts
    will not crash an epoch later. Cost: one decode per image (thousands per second).
    Images over the pixel limit are refused from their header (never decoded);
    with ``warn`` one warning names them.
    """
    import tensorflow as tf

    if not sources:
        return []
    is_path = isinstance(sources[0], str)
    ds = tf.data.Dataset.from_tensor_slices((list(range(len(sources))), [s if is_path else bytes(s) for s in sources]))

    def check(i, s):
        data = tf.io.read_file(s) if is_path else s
        image = decode_image(data, channels)
        return i, tf.reduce_min(tf.shape(image)[:2])

    ds = ds.map(check, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    ds = ds.ignore_errors().batch(1024)
    ok = set()
    for idx, smallest in ds.as_numpy_iterator():
        ok.update(int(i) for i, m in zip(idx, smallest) if m > 0)
    limit = max_pixels()
    for i in sorted(ok) if limit else ():  # GIF frames, formats the graph's header check does not parse: Pillow
        data = sources[i]
        if is_path:
            with open(data, "rb") as f:
                head = f.read(8)
        else:
            data = head = bytes(data)
        if header_not_in_graph(head):
            try:
                check_image_size(data, limit)
            except CorruptImageError:
                ok.discard(i)
    bad = [i for i in range(len(sources)) if i not in ok]
    if warn:
        _warn_oversized([sources[i] for i in bad])
    return bad


def _warn_oversized(sources: Sequence) -> None:
    """One warning naming the images among ``sources`` that are over the pixel limit (not corrupt)."""
    limit = max_pixels()
    if not limit or not sources:
        return
    over = []
    for s in sources:
        try:
            check_image_size(s if isinstance(s, str) else bytes(s), limit)
        except CorruptImageError as err:
            if "over the limit" in str(err):
                over.append(s if isinstance(s, str) else "<bytes>")
    if over:
        warn_skipped(over, what=f"image file(s) over the pixel limit of {limit} (--max-pixels raises it)")


def warn_skipped(
    names: Sequence[str], what: str = "unreadable image file(s) (corrupt or over the pixel limit)"
) -> None:
    """One warning naming every skipped file and how many there are."""
    if names:
        shown = ", ".join(str(n) for n in names[:50])
        more = f" (and {len(names) - 50} more)" if len(names) > 50 else ""
        log.warning("Skipped %d %s: %s%s", len(names), what, shown, more)


def load_image_array(source, channels: int = 3, max_pixels: int | None = None) -> np.ndarray:
    """Decode one image file or bytes to a ``uint8`` NumPy array ``(H, W, channels)``.

    Raises :class:`CorruptImageError` with the file name instead of a TensorFlow
    error, and refuses images over ``max_pixels`` (default: the process-wide
    limit, :func:`max_pixels`) from their header, before decoding them.
    """
    import tensorflow as tf

    limit = _limit["max_pixels"] if max_pixels is None else max_pixels
    name = source if isinstance(source, str) else "<bytes>"
    try:
        data = _read_bytes(source) if isinstance(source, str) else bytes(source)
    except OSError as err:
        raise CorruptImageError(f"Cannot read {name}: {err.strerror or err}") from err
    if limit:
        check_image_size(data, limit, name)
    try:
        return decode_image(data, channels, limit=limit).numpy()
    except (tf.errors.InvalidArgumentError, ValueError) as err:
        raise CorruptImageError(f"{name} is not a readable PNG/JPEG/BMP/GIF image.") from err


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def check_image_size(data, max_pixels: int, name: str | None = None) -> tuple[int, int]:
    """Read only the header of ``data`` (bytes or a file path) and refuse images over ``max_pixels``.

    Raises:
        CorruptImageError: not an image Pillow can read the header of, or over the limit.
    """
    import io
    import warnings

    from PIL import Image

    name = name or (data if isinstance(data, str) else "<bytes>")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(data if isinstance(data, str) else io.BytesIO(data)) as im:
                width, height = im.size
        except Image.DecompressionBombError as err:  # Pillow's own limit, far above ours
            raise CorruptImageError(f"{name} is over the limit of {max_pixels} pixels ({err})") from err
        except Exception as err:  # PIL raises many types for junk input
            raise CorruptImageError(f"{name} is not a readable image.") from err
    if max_pixels and width * height > max_pixels:
        raise CorruptImageError(
            f"{name} is {width}x{height} = {width * height} pixels, over the limit of {max_pixels} "
            "(--max-pixels raises it)."
        )
    return width, height
