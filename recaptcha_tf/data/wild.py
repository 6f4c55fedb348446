"""The ``wild`` generator style: text CAPTCHAs as varied as real ones, to train a reader that reads unseen designs.

Each image draws, from one seeded ``numpy.random.Generator``:

* a **font** from hundreds of freely licensed fonts (:func:`wild_fonts`: Debian's ``fonts-*`` packages in
  :data:`WILD_FONT_PACKAGES`, or any folder of ``.ttf``/``.otf`` files), one font per image;
* a **canvas** 32-100 px high and 2-7 times as wide (unless a size is given);
* a **background**: plain, a linear gradient, noise or a smoothed texture, light or (less often) dark;
* **glyphs** 15-90% of the canvas high, each character in its own colour (pale ones included, but never within
  :data:`MIN_CONTRAST` grey levels of the background behind it), rotated, scaled in width (aspect 0.7-1.4) and
  shifted up or down; the text sits left, centred, right or spread, tight or loose;
* **clutter**: lines across the canvas, arcs and dots, some in the text's colours;
* **degradation**: a Gaussian blur and JPEG compression, each on some images.

Labels are 3-8 characters of ``0-9a-zA-Z`` by default. Letters whose two cases look alike (c/C, o/O, s/S, ...)
are drawn as they are: score readers of this style case-insensitively.
"""

from __future__ import annotations

import functools
import io
import logging
import os

import numpy as np

log = logging.getLogger("recaptcha_tf")

# Debian packages of freely licensed (OFL, GPL with font exception, Apache, LPPL, public domain ...) fonts with Latin
# glyphs. `.ci/run` installs them; `apt-get install --no-install-recommends <these>` on Debian or Ubuntu.
WILD_FONT_PACKAGES = (
    "fonts-dejavu-core fonts-dejavu-extra fonts-liberation fonts-freefont-ttf fonts-urw-base35 fonts-texgyre "
    "fonts-roboto-unhinted fonts-roboto-slab fonts-open-sans fonts-lato fonts-cantarell fonts-comic-neue "
    "fonts-ebgaramond fonts-linuxlibertine fonts-crosextra-caladea fonts-crosextra-carlito fonts-go fonts-hack "
    "fonts-inconsolata fonts-firacode fonts-jetbrains-mono fonts-league-spartan fonts-bebas-neue fonts-quicksand "
    "fonts-comfortaa fonts-dosis fonts-karla fonts-manrope fonts-play fonts-stix fonts-ocr-a fonts-humor-sans "
    "fonts-rufscript fonts-kaushanscript fonts-creep2 fonts-blankenburg fonts-femkeklaver fonts-cabinsketch "
    "fonts-dancingscript fonts-lobster fonts-lobstertwo fonts-cherrybomb fonts-3270 fonts-beteckna fonts-radisnoir "
    "fonts-isabella fonts-junicode fonts-cardo fonts-sil-andika fonts-sil-charis fonts-sil-gentium "
    "fonts-adf-accanthis fonts-adf-baskervald fonts-adf-berenis fonts-adf-gillius fonts-adf-ikarius "
    "fonts-adf-irianis fonts-adf-libris fonts-adf-mekanus fonts-adf-oldania fonts-adf-romande fonts-adf-switzera "
    "fonts-adf-tribun fonts-adf-universalis fonts-adf-verana fonts-averia-gwf fonts-averia-sans-gwf "
    "fonts-averia-serif-gwf fonts-b612 fonts-cmu fonts-courier-prime fonts-oflb-euterpe fonts-oxygen "
    "fonts-prociono fonts-quattrocento fonts-rocknroll fonts-yanone-kaffeesatz fonts-tlwg-purisa-ttf"
).split()

FONT_ROOTS = ("/usr/share/fonts", "/usr/local/share/fonts", os.path.expanduser("~/.fonts"))
WILD_CHARACTERS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
WILD_LENGTH = (3, 8)
MIN_CONTRAST = 45.0  # grey levels between a glyph's colour and the background behind it
# Fonts whose letters are not letters (symbols, dingbats, maths, icons): skipped by name.
_NOT_TEXT = ("symbol", "dingbat", "d050000l", "math", "emoji", "icon", "awesome", "ornament", "cmex", "cmsy")


class NoFontsError(FileNotFoundError):
    """No usable font for the ``wild`` style (a user error: one ``error:`` line naming the packages to install)."""


def install_hint() -> str:
    return (
        "apt-get install --no-install-recommends " + " ".join(WILD_FONT_PACKAGES[:6]) + " ... (see WILD_FONT_PACKAGES)"
    )


def _font_files(roots) -> list[str]:
    found = []
    for root in roots:
        for folder, _, files in os.walk(root):
            found += [os.path.join(folder, f) for f in files if f.lower().endswith((".ttf", ".otf"))]
    return sorted(set(found))


@functools.lru_cache(maxsize=4096)
def _font(path: str, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(path, size)


def _mask_bytes(font, char: str) -> bytes:
    mask = font.getmask(char)
    return bytes(mask.size) + bytes(mask)


def usable_font(path: str) -> bool:
    """Whether ``path`` draws every character of :data:`WILD_CHARACTERS` as a distinct visible glyph, with
    lower-case letters of its own (not a symbol, dingbat or capitals-only font)."""
    if any(word in os.path.basename(path).lower() for word in _NOT_TEXT):
        return False
    try:
        font = _font(path, 28)
        masks = {c: _mask_bytes(font, c) for c in WILD_CHARACTERS}
        missing = _mask_bytes(font, "\ue000")  # a private-use code point: the font's .notdef box, if any
    except (OSError, ValueError):
        return False
    if any(font.getbbox(c)[2] - font.getbbox(c)[0] <= 0 or masks[c] == missing for c in WILD_CHARACTERS):
        return False
    same_case = sum(masks[c] == masks[c.upper()] for c in "abdefghijklmnqrty")  # letters whose cases differ
    return same_case < 4 and len(set(masks.values())) >= len(WILD_CHARACTERS) - 4


def wild_fonts(roots=None, listing: str | None = None) -> list[str]:
    """Usable font files for the ``wild`` style, sorted.

    Args:
        roots: folders searched for ``.ttf``/``.otf`` files (default :data:`FONT_ROOTS`).
        listing: a text file of font file names (one per line, ``#`` comments), as a shipped model's card pins
            them: only fonts with those base names are used, and any of them missing is an error.

    Raises:
        NoFontsError: no usable font (or a pinned one is missing), with the packages to install.
    """
    files = [f for f in _font_files(roots or FONT_ROOTS) if usable_font(f)]
    if listing:
        with open(listing, encoding="utf-8") as f:
            wanted = [line.split("#")[0].strip() for line in f]
        wanted = [w for w in wanted if w]
        by_name = {}
        for path in files:
            by_name.setdefault(os.path.basename(path), path)
        missing = [w for w in wanted if w not in by_name]
        if missing:
            raise NoFontsError(
                f"{len(missing)} of the {len(wanted)} fonts pinned in {listing} are not installed "
                f"({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}); {install_hint()}"
            )
        files = [by_name[w] for w in wanted]
    if not files:
        raise NoFontsError(f"the wild style needs fonts and none is installed; {install_hint()}")
    return files


# ----------------------------------------------------------------------------- drawing


def _grey(colour) -> float:
    return float(np.dot(colour, (0.299, 0.587, 0.114)))


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """``(height, width, 3)`` float32 background: plain, gradient, noise or texture; light, sometimes dark."""
    dark = rng.random() < 0.15
    base = rng.uniform(0, 90, 3) if dark else rng.uniform(150, 255, 3)
    kind = rng.choice(["plain", "gradient", "noise", "texture"], p=[0.3, 0.3, 0.2, 0.2])
    canvas = np.broadcast_to(base, (height, width, 3)).astype(np.float32)
    if kind == "gradient":
        other = rng.uniform(0, 90, 3) if dark else rng.uniform(150, 255, 3)
        angle = rng.uniform(0, np.pi)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        t = xs * np.cos(angle) + ys * np.sin(angle)
        t = (t - t.min()) / max(float(np.ptp(t)), 1.0)
        canvas = canvas * (1 - t[..., None]) + other * t[..., None]
    elif kind == "noise":
        canvas = canvas + rng.normal(0, rng.uniform(5, 30), (height, width, 1 if rng.random() < 0.5 else 3))
    elif kind == "texture":
        from scipy.ndimage import gaussian_filter

        field = gaussian_filter(rng.normal(0, 1, (height, width)), sigma=rng.uniform(1.5, 6))
        field = field / max(float(np.abs(field).max()), 1e-6)
        tint = rng.uniform(-1, 1, 3) * rng.uniform(15, 45)
        canvas = canvas + field[..., None] * tint
    return np.clip(canvas, 0, 255)


def _text_colour(rng: np.random.Generator, behind: np.ndarray) -> np.ndarray:
    """A colour at least :data:`MIN_CONTRAST` grey levels from ``behind`` (a mean RGB): pale ones included."""
    level = _grey(behind)
    for _ in range(20):
        colour = rng.uniform(0, 255, 3)
        if rng.random() < 0.4:  # dark ink, the common case
            colour = rng.uniform(0, 110, 3) if level > 128 else rng.uniform(150, 255, 3)
        if abs(_grey(colour) - level) >= MIN_CONTRAST:
            return colour
    return np.zeros(3) if level > 128 else np.full(3, 255.0)


def _glyph(char: str, font_path: str, size: int, angle: float, aspect: float):
    """``L`` mask of ``char`` in ``font_path`` at ``size`` px, stretched in width by ``aspect``, rotated."""
    from PIL import Image, ImageDraw

    font = _font(font_path, size)
    left, top, right, bottom = font.getbbox(char)
    pad = 2
    mask = Image.new("L", (max(1, right - left) + 2 * pad, max(1, bottom - top) + 2 * pad), 0)
    ImageDraw.Draw(mask).text((pad - left, pad - top), char, font=font, fill=255)
    if abs(aspect - 1) > 0.02:
        mask = mask.resize((max(1, round(mask.width * aspect)), mask.height), Image.Resampling.BILINEAR)
    if abs(angle) > 0.5:
        mask = mask.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    box = mask.getbbox()
    return mask.crop(box) if box else mask


def _clutter(draw, rng: np.random.Generator, height: int, width: int, colours: list) -> None:
    """Lines across the canvas, arcs and dots; some in the text's colours (which a colour filter cannot remove)."""

    def colour():
        c = colours[int(rng.integers(len(colours)))] if colours and rng.random() < 0.5 else rng.uniform(0, 255, 3)
        return tuple(int(v) for v in c)

    for _ in range(int(rng.integers(0, 4))):  # lines that cross most of the canvas
        x0, x1 = rng.uniform(0, 0.2) * width, rng.uniform(0.8, 1.0) * width
        y0, y1 = rng.uniform(0, height, 2)
        draw.line((x0, y0, x1, y1), fill=colour(), width=int(rng.integers(1, 4)))
    for _ in range(int(rng.integers(0, 3))):  # arcs
        x, y = rng.uniform(-0.2, 1.0) * width, rng.uniform(-0.5, 1.0) * height
        w, h = rng.uniform(0.2, 1.0) * width, rng.uniform(0.5, 2.0) * height
        start = rng.uniform(0, 360)
        draw.arc(
            (x, y, x + w, y + h), start, start + rng.uniform(60, 300), fill=colour(), width=int(rng.integers(1, 3))
        )
    for _ in range(int(rng.integers(0, 2)) * int(rng.integers(10, 150))):  # dots
        x, y, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.5, 2.0)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour())


def render_wild_captcha(text: str, rng: np.random.Generator, fonts: list[str], size: tuple[int, int] | None = None):
    """One ``wild``-style CAPTCHA of ``text`` as an RGB ``PIL.Image``.

    Args:
        text: the characters to draw.
        rng: all randomness comes from it.
        fonts: font files (:func:`wild_fonts`); one is drawn for the whole image.
        size: ``(width, height)`` in pixels; ``None`` draws one per image (32-100 px high, 2-7 times as wide).
    """
    from PIL import Image, ImageDraw, ImageFilter

    if size is None:
        height = int(rng.integers(32, 101))
        width = int(height * rng.uniform(max(2.0, 0.5 * len(text)), 7.0))
    else:
        width, height = size
    canvas = _background(rng, height, width)
    font_path = fonts[int(rng.integers(len(fonts)))]
    aspect = float(rng.uniform(0.7, 1.4))
    max_angle = float(rng.choice([0.0, 8.0, 20.0, 30.0]))
    glyph_height = float(rng.uniform(0.15, 0.9)) * height
    spacing = float(rng.uniform(-0.15, 0.6))  # gap between glyphs, a share of the glyph height
    for _ in range(8):  # shrink until the text fits the canvas's width
        size_px = max(8, round(glyph_height / 0.72))
        masks = [_glyph(c, font_path, size_px, rng.uniform(-max_angle, max_angle), aspect) for c in text]
        scale = glyph_height / max(max(m.height for m in masks), 1)
        widths = [m.width * scale for m in masks]
        total = sum(widths) + spacing * glyph_height * (len(text) - 1)
        if total <= 0.96 * width and glyph_height <= 0.96 * height:
            break
        glyph_height *= min(0.9, 0.96 * width / max(total, 1.0))
    masks = [
        m.resize((max(1, round(m.width * scale)), max(1, round(m.height * scale))), Image.Resampling.BILINEAR)
        for m in masks
    ]
    total = sum(m.width for m in masks) + spacing * glyph_height * (len(text) - 1)
    room = max(0.0, width - total)
    layout = rng.choice(["left", "centre", "right", "spread"], p=[0.25, 0.35, 0.15, 0.25])
    extra = room * rng.uniform(0.3, 0.9) / max(len(text) - 1, 1) if layout == "spread" else 0.0
    x = {"left": rng.uniform(0, 0.15), "right": rng.uniform(0.85, 1.0), "centre": rng.uniform(0.35, 0.65)}.get(
        layout, rng.uniform(0, 0.1)
    ) * max(0.0, room - extra * (len(text) - 1))
    baseline = rng.uniform(0.2, 0.8) * height
    jitter = float(rng.uniform(0, 0.25))
    image = Image.fromarray(canvas.astype(np.uint8))
    colours, per_char = [], rng.random() < 0.7
    colour = None
    for mask in masks:
        top = int(np.clip(baseline - mask.height / 2 + rng.uniform(-jitter, jitter) * height, 0, height - mask.height))
        left = int(np.clip(x, 0, max(0, width - mask.width)))
        behind = canvas[top : top + mask.height, left : left + mask.width].reshape(-1, 3).mean(0)
        if colour is None or per_char:
            colour = _text_colour(rng, behind)
        colours.append(colour)
        image.paste(tuple(int(v) for v in colour), (left, top, left + mask.width, top + mask.height), mask)
        x += mask.width + spacing * glyph_height + extra
    _clutter(ImageDraw.Draw(image), rng, height, width, colours)
    if rng.random() < 0.4:
        image = image.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.3, 1.2))))
    if rng.random() < 0.4:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=int(rng.integers(25, 90)))
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return image
