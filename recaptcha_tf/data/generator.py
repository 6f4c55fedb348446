"""Seeded synthetic text CAPTCHAs, written as PNG files or one Parquet file.

Three styles:

* ``"project"``: each character in a font that ships with installed packages
  (matplotlib's DejaVu family, the ``captcha`` package's DroidSansMono), with
  its own colour, rotation (about +-25 degrees) and position jitter, on a light
  background with spots and a few lines, then a mild elastic warp. Hard
  enough to look like a typical text CAPTCHA, easy enough for a small CRNN to
  learn in minutes.
* ``"captcha-lib"``: ``captcha.image.ImageCaptcha``. That library draws its
  randomness from the ``secrets`` module (``random`` in older releases); it is
  swapped for a seeded generator during each call and restored afterwards, so
  this style is reproducible too.
* ``"wild"``: a different font per image from hundreds of installed fonts, glyphs 15-90% of the canvas high,
  per-character colours, varied backgrounds, clutter, blur and JPEG, canvases of varying size
  (:mod:`recaptcha_tf.data.wild`; it needs fonts: ``WILD_FONT_PACKAGES``).

Everything is drawn from ``numpy.random.default_rng(seed)``, item by item
(label, then image), so the same arguments give byte-identical files and the
first ``n`` images do not depend on ``count``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import logging
import os
import random

import numpy as np

from recaptcha_tf.data.text.dataset import TextDataset
from recaptcha_tf.data.text.parquet import write_text_parquet
from recaptcha_tf.data.text.vocabulary import expand_charset
from recaptcha_tf.utils.progress import progress

STYLES = ("project", "captcha-lib", "wild")
# What a style draws when the caller does not say: label lengths, characters and (width, height) (None: varies).
STYLE_DEFAULTS = {
    "project": dict(length=(4, 6), charset="a-z0-9", size=(200, 50)),
    "captcha-lib": dict(length=(4, 6), charset="a-z0-9", size=(200, 50)),
    "wild": dict(length=(3, 8), charset="0-9a-zA-Z", size=None),
}
FORMATS = ("png", "parquet")

# Font files looked up inside installed packages: (package, path inside it).
DEFAULT_FONT_FILES = (
    ("matplotlib", "mpl-data/fonts/ttf/DejaVuSans.ttf"),
    ("matplotlib", "mpl-data/fonts/ttf/DejaVuSans-Bold.ttf"),
    ("matplotlib", "mpl-data/fonts/ttf/DejaVuSansMono.ttf"),
    ("matplotlib", "mpl-data/fonts/ttf/DejaVuSansMono-Bold.ttf"),
    ("matplotlib", "mpl-data/fonts/ttf/DejaVuSerif.ttf"),
    ("matplotlib", "mpl-data/fonts/ttf/DejaVuSerif-Bold.ttf"),
    ("captcha", "data/DroidSansMono.ttf"),
)

# ImageCaptcha's own font sizes, designed for its default 60 px height.
CAPTCHA_LIB_FONT_SIZES = (42, 50, 56)
CAPTCHA_LIB_HEIGHT = 60

log = logging.getLogger("recaptcha_tf")


# ----------------------------------------------------------------------------- arguments


def parse_size(text: str) -> tuple[int, int]:
    """``"200x50"`` -> ``(200, 50)``: (width, height) in pixels."""
    parts = str(text).lower().replace(" ", "").split("x")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"Image size must look like WIDTHxHEIGHT, e.g. '200x50'; got {text!r}.") from None
    if width < 8 or height < 8:
        raise ValueError(f"Image size {text!r} is too small; both sides must be at least 8 pixels.")
    return width, height


def parse_length(text: str) -> tuple[int, int]:
    """``"4-6"`` -> ``(4, 6)``; ``"5"`` -> ``(5, 5)``: the label length range, inclusive."""
    parts = str(text).replace(" ", "").split("-")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"Label length must look like '5' or '4-6'; got {text!r}.") from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2:
        raise ValueError(f"Label length must look like '5' or '4-6'; got {text!r}.")
    return _check_length(tuple(values), text)


def _check_length(length, text) -> tuple[int, int]:
    low, high = int(length[0]), int(length[1])
    if low < 1 or low > high:
        raise ValueError(f"Label length {text!r} must satisfy 1 <= min <= max.")
    return low, high


def _as_length(length) -> tuple[int, int]:
    if isinstance(length, str):
        return parse_length(length)
    if isinstance(length, (int, np.integer)):
        return _check_length((length, length), length)
    if len(length) != 2:
        raise ValueError(f"length must be an int or a (min, max) pair; got {length!r}.")
    return _check_length(length, length)


def _as_size(size) -> tuple[int, int]:
    if isinstance(size, str):
        return parse_size(size)
    width, height = (int(v) for v in size)
    if width < 8 or height < 8:
        raise ValueError(f"Image size {size!r} is too small; both sides must be at least 8 pixels.")
    return width, height


# ----------------------------------------------------------------------------- fonts


def _package_dir(package: str) -> str | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def default_fonts() -> list[str]:
    """TrueType files of :data:`DEFAULT_FONT_FILES` that exist in this environment.

    Raises:
        FileNotFoundError: none of them is installed (pass ``fonts=[...]``).
    """
    found = []
    for package, relative in DEFAULT_FONT_FILES:
        root = _package_dir(package)
        if root is not None and os.path.isfile(os.path.join(root, relative)):
            found.append(os.path.join(root, relative))
    if not found:
        raise FileNotFoundError(
            "No bundled fonts found (matplotlib's DejaVu fonts or captcha's DroidSansMono); "
            "pass fonts=[paths to .ttf files]."
        )
    return found


@functools.lru_cache(maxsize=512)
def _load_font(path: str, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(path, size)


# ----------------------------------------------------------------------------- project style


def random_label(rng: np.random.Generator, length: tuple[int, int], characters: str) -> str:
    """A label of ``length[0]..length[1]`` characters drawn uniformly from ``characters``."""
    n = int(rng.integers(length[0], length[1] + 1))
    return "".join(characters[i] for i in rng.integers(0, len(characters), size=n))


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Light ``(height, width, 3)`` uint8 background with a soft horizontal gradient."""
    start = rng.uniform(205, 255, size=3)
    stop = rng.uniform(205, 255, size=3)
    ramp = np.linspace(0.0, 1.0, width, dtype=np.float32)[:, None]
    row = start[None, :] * (1.0 - ramp) + stop[None, :] * ramp
    return np.broadcast_to(row[None], (height, width, 3)).astype(np.uint8)


def _spots(
    draw,
    rng: np.random.Generator,
    width: int,
    height: int,
    count: int,
    shade: tuple[int, int] = (140, 230),
    radius: float = 3.5,
):
    """``count`` small ellipses with colours in ``shade`` and radii up to ``radius`` pixels."""
    centres = rng.uniform(0, 1, size=(count, 2)) * (width, height)
    radii = rng.uniform(0.6, radius, size=(count, 2))
    colours = rng.integers(shade[0], shade[1], size=(count, 3))
    for (x, y), (rx, ry), colour in zip(centres.tolist(), radii.tolist(), colours.tolist()):
        draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=tuple(colour))


@functools.lru_cache(maxsize=8192)
def _upright_glyph(char: str, font_path: str, size: int):
    """Anti-aliased ``L`` mask of one character, unrotated, with a 2-pixel margin (cached)."""
    from PIL import Image, ImageDraw

    font = _load_font(font_path, size)
    left, top, right, bottom = font.getbbox(char)
    pad = 2
    mask = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(mask).text((pad - left, pad - top), char, font=font, fill=255)
    return mask


def _glyph_mask(char: str, font_path: str, size: int, angle: float):
    """Anti-aliased ``L`` mask of one character rotated by ``angle`` degrees, cropped to its ink."""
    from PIL import Image

    mask = _upright_glyph(char, font_path, size).rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    box = mask.getbbox()
    return mask.crop(box) if box else mask


def _draw_text(image, text: str, rng: np.random.Generator, fonts: list[str], max_angle: float = 25.0):
    """Paste the characters of ``text`` evenly across ``image`` (in place).

    Each character gets its own font, size (+-6 %), colour, rotation (up to
    ``max_angle`` degrees) and position jitter.
    """
    from PIL import Image

    width, height = image.size
    margin = 0.04 * width
    slot = (width - 2 * margin) / len(text)
    # Font size follows the height, but long labels in narrow images get smaller
    # glyphs so that neighbours overlap a little, not a lot.
    base_size = min(height * rng.uniform(0.64, 0.78), 1.5 * slot * rng.uniform(0.9, 1.0))
    for i, char in enumerate(text):
        font_path = fonts[int(rng.integers(len(fonts)))]
        font_size = max(6, int(round(base_size * rng.uniform(0.94, 1.06))))
        mask = _glyph_mask(char, font_path, font_size, rng.uniform(-max_angle, max_angle))
        # Keep wide glyphs (m, w) from swallowing their neighbours and tall ones inside the image.
        scale = min(1.0, 1.3 * slot / max(mask.width, 1), (height - 2) / max(mask.height, 1))
        if scale < 1.0:
            new_size = (max(1, int(mask.width * scale)), max(1, int(mask.height * scale)))
            mask = mask.resize(new_size, Image.Resampling.BILINEAR)
        centre_x = margin + slot * (i + 0.5) + rng.uniform(-0.12, 0.12) * slot
        room = min(max(0.0, (height - mask.height) / 2 - 1), 0.15 * height)
        centre_y = height / 2 + rng.uniform(-0.8, 0.8) * room
        left = min(max(0, round(centre_x - mask.width / 2)), max(0, width - mask.width))
        top = min(max(0, round(centre_y - mask.height / 2)), max(0, height - mask.height))
        colour = tuple(int(c) for c in rng.integers(0, 130, size=3))
        image.paste(colour, (left, top, left + mask.width, top + mask.height), mask)


def _lines(draw, rng: np.random.Generator, width: int, height: int, count: int):
    """``count`` thin lines that run across most of the image."""
    for _ in range(count):
        x0, x1 = rng.uniform(0, 0.3 * width), rng.uniform(0.7 * width, width)
        y0, y1 = rng.uniform(0.15 * height, 0.85 * height, size=2)
        colour = tuple(int(c) for c in rng.integers(40, 170, size=3))
        draw.line((x0, y0, x1, y1), fill=colour, width=int(rng.integers(1, 3)))


def smooth_displacement(
    rng: np.random.Generator, height: int, width: int, alpha: float = 2.0, sigma: float = 6.0
) -> np.ndarray:
    """Two ``(height, width)`` float32 displacement fields (rows, columns), Gaussian-smoothed.

    White noise is smoothed at a quarter of the resolution (16x cheaper) and
    upsampled bilinearly; for ``sigma`` of a few pixels this is the same kind
    of smooth field as smoothing at full resolution. Each field is scaled so
    that its largest displacement is ``alpha`` pixels.

    Returns:
        float32 array of shape ``(2, height, width)``.
    """
    from PIL import Image
    from scipy import ndimage

    factor = 4
    noise = rng.standard_normal((2, height // factor + 2, width // factor + 2)).astype(np.float32)
    noise = ndimage.gaussian_filter(noise, (0, sigma / factor, sigma / factor), mode="reflect")
    fields = []
    for small in noise:
        field = np.asarray(Image.fromarray(small, "F").resize((width, height), Image.Resampling.BILINEAR))
        fields.append(field * (alpha / max(float(np.abs(field).max()), 1e-6)))
    return np.stack(fields)


def elastic_transform(
    array: np.ndarray, rng: np.random.Generator, alpha: float = 2.0, sigma: float = 6.0
) -> np.ndarray:
    """Mild elastic warp of an ``(H, W, C)`` uint8 image.

    Args:
        array: the image.
        rng: random generator for the displacement fields.
        alpha: largest displacement, in pixels.
        sigma: smoothness of the displacement fields (Gaussian sigma, pixels).

    Returns:
        The warped ``(H, W, C)`` uint8 image (bilinear, edges repeated).
    """
    from scipy import ndimage

    height, width = array.shape[:2]
    coords = np.mgrid[0:height, 0:width] + smooth_displacement(rng, height, width, alpha, sigma)
    channels = [ndimage.map_coordinates(array[..., c], coords, order=1, mode="nearest") for c in range(array.shape[-1])]
    return np.stack(channels, axis=-1)


def render_project_captcha(
    text: str, rng: np.random.Generator, size: tuple[int, int] = (200, 50), fonts: list[str] | None = None
):
    """One ``"project"``-style CAPTCHA as an RGB ``PIL.Image`` of ``size`` = (width, height)."""
    from PIL import Image, ImageDraw

    width, height = size
    fonts = list(fonts) if fonts else default_fonts()
    image = Image.fromarray(_background(rng, width, height), "RGB")
    draw = ImageDraw.Draw(image)
    _spots(draw, rng, width, height, int(rng.integers(8, 20)), shade=(140, 230), radius=3.5)
    _draw_text(image, text, rng, fonts)
    _lines(draw, rng, width, height, int(rng.integers(1, 4)))
    _spots(draw, rng, width, height, int(rng.integers(10, 25)), shade=(30, 200), radius=1.6)
    alpha, sigma = rng.uniform(1.0, 2.5), rng.uniform(5.0, 8.0)
    warped = elastic_transform(np.asarray(image), rng, alpha=alpha, sigma=sigma)
    return Image.fromarray(warped, "RGB")


# ----------------------------------------------------------------------------- captcha-lib style


class _SeededSecrets:
    """The part of the ``secrets`` module that ``captcha.image`` uses, from a seeded ``random.Random``."""

    def __init__(self, seed: int):
        self._random = random.Random(seed)

    def randbelow(self, n: int) -> int:
        return self._random.randrange(n)

    def randbits(self, k: int) -> int:
        return self._random.getrandbits(k)

    def choice(self, seq):
        return self._random.choice(seq)


@contextlib.contextmanager
def seeded_captcha_library(seed: int):
    """Make ``captcha.image`` deterministic inside the block; restore its randomness after.

    ``captcha`` 0.7 draws from ``secrets`` (swapped for a seeded stand-in),
    older releases from the global ``random`` module (seeded, then restored).
    Both are process-wide, so do not render ``"captcha-lib"`` images from
    several threads at once.
    """
    import captcha.image as captcha_image

    random_state = random.getstate()
    original = captcha_image.__dict__.get("secrets")
    random.seed(seed)
    if original is not None:
        captcha_image.secrets = _SeededSecrets(seed)
    try:
        yield
    finally:
        random.setstate(random_state)
        if original is not None:
            captcha_image.secrets = original


@functools.lru_cache(maxsize=16)
def _image_captcha(width: int, height: int, fonts: tuple[str, ...] | None):
    from captcha.image import ImageCaptcha

    sizes = tuple(max(8, round(s * height / CAPTCHA_LIB_HEIGHT)) for s in CAPTCHA_LIB_FONT_SIZES)
    return ImageCaptcha(width=width, height=height, fonts=list(fonts) if fonts else None, font_sizes=sizes)


def render_captcha_lib(text: str, rng: np.random.Generator, size: tuple[int, int] = (200, 50), fonts=None):
    """One ``captcha.image.ImageCaptcha`` image, seeded from ``rng``.

    Font sizes are the library's (42, 50, 56) scaled by ``height / 60`` so
    that glyphs fit images lower than its default 60 pixels.
    """
    width, height = size
    generator = _image_captcha(width, height, tuple(fonts) if fonts else None)
    with seeded_captcha_library(int(rng.integers(2**63))):
        image = generator.generate_image(text)
    return image.convert("RGB")


def render_captcha(
    text: str,
    rng: np.random.Generator,
    size: tuple[int, int] = (200, 50),
    fonts: list[str] | None = None,
    style: str = "project",
    warp: float = 0.0,
):
    """Render one CAPTCHA of ``text``.

    Args:
        text: the characters to draw.
        rng: NumPy generator; all randomness comes from it.
        size: (width, height) in pixels (``"wild"``: ``None`` draws a size per image).
        fonts: TrueType font paths; ``None`` for :func:`default_fonts`
            (``"project"``), the library's own font (``"captcha-lib"``) or
            :func:`recaptcha_tf.data.wild.wild_fonts` (``"wild"``).
        style: ``"project"``, ``"captcha-lib"`` or ``"wild"``.
        warp: the probability that the image is bent along a wave (:func:`recaptcha_tf.data.distort.wave_warp`);
            ``0`` (the default) draws nothing more from ``rng``, so images stay those of earlier versions.

    Returns:
        An RGB ``PIL.Image.Image`` of ``size``.
    """
    if not text:
        raise ValueError("Cannot render an empty CAPTCHA text.")
    image = _render(text, rng, None if size is None and style == "wild" else _as_size(size), fonts, style)
    if warp and rng.random() < warp:
        from recaptcha_tf.data.distort import wave_warp

        image = wave_warp(image, rng)
    return image


def _render(text: str, rng: np.random.Generator, size, fonts, style: str):
    if style == "project":
        return render_project_captcha(text, rng, size, fonts)
    if style == "captcha-lib":
        return render_captcha_lib(text, rng, size, fonts)
    if style == "wild":
        from recaptcha_tf.data.wild import render_wild_captcha, wild_fonts

        return render_wild_captcha(text, rng, list(fonts) if fonts else wild_fonts(), size)
    raise ValueError(f"style must be one of {STYLES}, got {style!r}.")


# ----------------------------------------------------------------------------- files


def encode_png(image) -> bytes:
    """PNG bytes of a ``PIL.Image`` (deterministic: no timestamps or metadata)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def unique_file_names(labels: list[str], extension: str = ".png") -> list[str]:
    """``<label>.png``, then ``<label>-1.png``, ``<label>-2.png`` ... for repeats.

    Repeats are counted case-insensitively, so ``Ab`` and ``aB`` cannot collide
    on a case-insensitive file system.
    """
    seen: dict[str, int] = {}
    names = []
    for label in labels:
        key = label.lower()
        k = seen.get(key, 0)
        seen[key] = k + 1
        names.append(f"{label}{extension}" if k == 0 else f"{label}-{k}{extension}")
    return names


def write_preview(images, labels: list[str], path: str, columns: int = 4, rows: int = 4) -> None:
    """Contact sheet of the first ``columns * rows`` images with their labels above them, as PNG."""
    from PIL import Image, ImageDraw, ImageFont

    images = list(images)[: columns * rows]
    if not images:
        raise ValueError("No images to preview.")
    width, height = images[0].size
    images = [image if image.size == (width, height) else image.resize((width, height)) for image in images]
    title = 18
    rows = (len(images) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * (width + 8) + 8, rows * (height + title + 8) + 8), "white")
    draw = ImageDraw.Draw(sheet)
    try:
        font = _load_font(default_fonts()[0], 14)
    except (FileNotFoundError, OSError):
        font = ImageFont.load_default()
    for i, (image, label) in enumerate(zip(images, labels)):
        x = 8 + (i % columns) * (width + 8)
        y = 8 + (i // columns) * (height + title + 8)
        draw.text((x, y), label, fill="black", font=font)
        sheet.paste(image.convert("RGB"), (x, y + title))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    sheet.save(path, format="PNG")


def _parquet_output(out: str) -> str:
    return out if out.lower().endswith(".parquet") else os.path.join(out, "captchas.parquet")


def generate_captchas(
    out: str,
    count: int = 5000,
    length: tuple[int, int] | int | None = None,
    charset: str | None = None,
    size: tuple[int, int] | None = None,
    seed: int = 0,
    format: str = "png",
    style: str = "project",
    preview: str | None = None,
    fonts: list[str] | None = None,
    warp: float = 0.0,
) -> list[str]:
    """Generate ``count`` labelled text CAPTCHAs.

    Args:
        out: for ``format="png"`` a folder that receives ``<label>.png`` (and
            ``<label>-<k>.png`` for repeated labels), readable with
            ``load_text_folder``; for ``"parquet"`` a ``.parquet`` file, or a
            folder that receives ``captchas.parquet`` (columns ``image``, ``text``).
        count: number of images.
        length: label length, an int or an inclusive ``(min, max)`` range (or ``"4-6"``); default the
            style's (:data:`STYLE_DEFAULTS`: 4-6, ``"wild"`` 3-8).
        charset: characters or ranges, see ``expand_charset``; default the style's (``"a-z0-9"``, ``"wild"``
            ``"0-9a-zA-Z"``).
        size: (width, height) in pixels (or ``"200x50"``); default the style's (200x50; ``"wild"``: a size
            per image).
        seed: the same arguments and seed give byte-identical images.
        format: ``"png"`` or ``"parquet"``.
        style: ``"project"``, ``"captcha-lib"`` or ``"wild"`` (see :func:`render_captcha`).
        preview: optional path of a PNG contact sheet of the first 16 images.
        fonts: TrueType font paths instead of the style's own.
        warp: the share of images bent along a wave (:func:`render_captcha`), from 0 to 1.

    Returns:
        The labels, in generation order.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}.")
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}.")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}.")
    if not 0 <= warp <= 1:
        raise ValueError(f"warp must be a share from 0 to 1, got {warp}.")
    defaults = STYLE_DEFAULTS[style]
    low_high = _as_length(defaults["length"] if length is None else length)
    size = defaults["size"] if size is None else size
    size = None if size is None else _as_size(size)
    characters = expand_charset(defaults["charset"] if charset is None else charset)
    if format == "png":
        unsafe = "".join(c for c in characters if not c.isalnum())
        if unsafe:
            raise ValueError(
                f"Characters {unsafe!r} cannot be part of label file names; use format='parquet' for this charset."
            )
    if fonts is None and style == "project":
        fonts = default_fonts()
    if fonts is None and style == "wild":
        from recaptcha_tf.data.wild import wild_fonts

        fonts = wild_fonts()
        log.info("wild style: %d fonts", len(fonts))

    rng = np.random.default_rng(seed)
    labels, encoded, first_images = [], [], []
    for _ in progress(range(count), desc="generate", unit="img"):
        label = random_label(rng, low_high, characters)
        image = render_captcha(label, rng, size=size, fonts=fonts, style=style, warp=warp)
        labels.append(label)
        encoded.append(encode_png(image))
        if len(first_images) < 16:
            first_images.append(image)

    names = unique_file_names(labels)
    if format == "png":
        os.makedirs(out, exist_ok=True)
        existing = [f for f in os.listdir(out) if f.lower().endswith((".png", ".jpg", ".jpeg"))]
        if existing:
            log.warning(
                "%s already holds %d image file(s); new CAPTCHAs are added to (or replace) them.",
                out,
                len(existing),
            )
        for name, data in zip(names, encoded):
            with open(os.path.join(out, name), "wb") as f:
                f.write(data)
    else:
        dataset = TextDataset(sources=encoded, labels=list(labels), names=names)
        write_text_parquet(dataset, _parquet_output(out))
    if preview and first_images:
        write_preview(first_images, labels, preview)
    return labels
