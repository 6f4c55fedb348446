"""Text defaults on many different sets: does `recaptcha-tf train --task text --data DIR` work on unseen data?

Every row runs the same command, with the defaults only, on one set:

* ``captcha-v2``: the shared real set (834 images, 200x50, 5 characters);
* ``generator-project``, ``generator-captcha-lib``: ``recaptcha-tf generate`` in both styles;
* variants built from captcha-v2: ``inverted`` colours, ``rgba-transparent`` (glyphs as alpha on a
  transparent background, some light, some dark; transparent pixels store black), ``small-on-canvas``
  (the 200x50 CAPTCHA in a 480x320 canvas), ``jpeg-q10`` (heavy JPEG compression, JPEG bytes in
  ``.png`` files), ``strike-through`` (an extra long diagonal line across the text);
* ``multicolour``: 4-8 characters, each in its own bright colour on white, RGBA PNG, 80 px high and as
  wide as the text (about 250-560 px);
* ``digits-4``: 4 digits, 70x30 JPEG (1,500 images; ``digits-4-7500``: 7,500, the size of the real 4-digit login set);
  ``long-7-8``: 7-8 characters of 36, 280x70 (1,500 images; ``long-7-8-7500``: 7,500, about the size of the
  real 4-8 character set); ``six-200x80``: 6 characters of 36, 200x80 JPEG bytes in ``.png`` files (1,500
  images; the shape of the real 6-character set);
* ``wild-8000``: 8,000 ``generate --style wild`` CAPTCHAs (a font per image, glyphs 15-90% of the canvas, 3-8
  mixed-case characters), scored case-insensitively (``evaluate --case lower``);
* ``chars-digits``: the chars task on ``../shared/data/digits`` (real 15x30 glyphs).

Each row: exact match and CER on the held-out 15%, training minutes, the input size the run chose and
whether it ended on the blank plateau. Finished rows are kept in the JSON, so re-running the same command
continues with the rows still missing (``--rerun NAME`` repeats one).

    python benchmarks/text_robustness.py --data ../shared/data/captcha-v2 [--only captcha-v2 multicolour]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import sys

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import DEFAULT_TEXT, RESULTS, machine, run_cli, shipped_version, table

DEFAULT_DIGITS = os.path.join(os.path.dirname(DEFAULT_TEXT), "digits")
ROWS = (
    "captcha-v2",
    "multicolour",
    "rgba-transparent",
    "small-on-canvas",
    "strike-through",
    "inverted",
    "jpeg-q10",
    "digits-4",
    "digits-4-7500",
    "long-7-8",
    "long-7-8-7500",
    "six-200x80",
    "generator-project",
    "generator-captcha-lib",
    "wild-8000",
    "chars-digits",
)
GENERATED = 1500  # images in each generated set
GENERATOR_OPTIONS = {  # the sets made by recaptcha-tf generate: its options for each
    "generator-project": dict(style="project"),
    "generator-captcha-lib": dict(style="captcha-lib"),
    "digits-4": dict(style="project", length=4, charset="0-9", size=(70, 30)),
    "digits-4-7500": dict(style="project", length=4, charset="0-9", size=(70, 30)),
    "long-7-8": dict(style="captcha-lib", length=(7, 8), size=(280, 70)),
    "long-7-8-7500": dict(style="captcha-lib", length=(7, 8), size=(280, 70)),
    "six-200x80": dict(style="project", length=6, size=(200, 80)),
    "wild-8000": dict(style="wild"),  # a font per image, sizes, colours, clutter (data.wild); needs the fonts
}
COUNTS = {"wild-8000": 8000}  # images of the generated sets other than GENERATED (and the *-7500 rows)
CASE_INSENSITIVE = ("wild-8000",)  # mixed-case labels whose c/C, o/O/0, s/S, l/I/1 can be impossible to tell apart


def _captcha_v2_images(src: str):
    for name in sorted(os.listdir(src)):
        if name.lower().endswith(".png"):
            yield name, Image.open(os.path.join(src, name)).convert("RGB")


def _save(image: Image.Image, path: str, format: str = "PNG", **kwargs) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **kwargs)
    with open(path, "wb") as f:
        f.write(buffer.getvalue())


def build_variant(name: str, src: str, out: str, seed: int = 0) -> str:
    """Write variant ``name`` of captcha-v2 (or a generated set) into ``out``; returns ``out``."""
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    if name in GENERATOR_OPTIONS:
        from recaptcha_tf.data.generator import generate_captchas

        options = GENERATOR_OPTIONS[name]
        count = COUNTS.get(name, 7500 if name.endswith("-7500") else GENERATED)  # *-7500: the real sets' sizes
        generate_captchas(out, count=count, seed=seed, **options)
        if name.startswith("digits-4"):  # login-page CAPTCHAs are JPEGs
            for file in os.listdir(out):
                path = os.path.join(out, file)
                image = Image.open(path).convert("RGB")
                os.remove(path)
                _save(image, os.path.splitext(path)[0] + ".jpg", "JPEG", quality=75)
        if name == "six-200x80":  # JPEG bytes saved as .png, as the real set has them
            for file in os.listdir(out):
                path = os.path.join(out, file)
                _save(Image.open(path).convert("RGB"), path, "JPEG", quality=85)
        return out
    if name == "multicolour":
        return _multicolour(out, rng)
    for file, image in _captcha_v2_images(src):
        pixels = np.asarray(image)
        target = os.path.join(out, file)
        if name == "inverted":
            _save(Image.fromarray(255 - pixels), target)
        elif name == "jpeg-q10":
            _save(image, target, "JPEG", quality=10)
        elif name == "rgba-transparent":
            gray = pixels.mean(-1)
            background = np.median(np.concatenate([gray[:2].ravel(), gray[-2:].ravel()]))
            alpha = np.clip((background - gray) * 3, 0, 255).astype(np.uint8)
            colour = [(20, 20, 120), (240, 240, 240), (200, 30, 30), (250, 220, 0)][int(rng.integers(4))]
            rgba = np.zeros((*gray.shape, 4), np.uint8)
            rgba[..., :3] = np.where(alpha[..., None] > 0, colour, 0)
            rgba[..., 3] = alpha
            _save(Image.fromarray(rgba, "RGBA"), target)
        elif name == "small-on-canvas":
            background = tuple(int(v) for v in np.median(pixels[:2].reshape(-1, 3), axis=0))
            canvas = Image.new("RGB", (480, 320), background)
            x, y = 140 + int(rng.integers(-20, 21)), 135 + int(rng.integers(-20, 21))
            canvas.paste(image, (x, y))
            _save(canvas, target)
        elif name == "strike-through":
            draw = ImageDraw.Draw(image)
            y0, y1 = int(rng.integers(5, 45)), int(rng.integers(5, 45))
            shade = int(rng.integers(40, 110))
            draw.line((0, y0, image.width, y1), fill=(shade, shade, shade), width=int(rng.integers(2, 4)))
            _save(image, target)
        else:
            raise ValueError(f"unknown variant {name!r}")
    return out


def _multicolour(out: str, rng: np.random.Generator) -> str:
    """4-8 characters, each a different bright colour, on white; RGBA PNG 80 px high, width follows the text."""
    from PIL import ImageFont

    from recaptcha_tf.data.generator import default_fonts, unique_file_names

    fonts = default_fonts()
    chars = "abcdefghijkmnpqrstuvwxyz23456789"
    labels = ["".join(rng.choice(list(chars), size=int(rng.integers(4, 9)))) for _ in range(GENERATED)]
    for label, file in zip(labels, unique_file_names(labels)):
        font = ImageFont.truetype(fonts[int(rng.integers(len(fonts)))], int(rng.integers(40, 52)))
        width = 30 + 62 * len(label)
        image = Image.new("RGBA", (width, 80), (255, 255, 255, 255))
        draw = ImageDraw.Draw(image)
        x = 15 + int(rng.integers(0, 10))
        for char in label:
            hue = rng.random()
            colour = tuple(int(255 * c) for c in _bright(hue)) + (255,)
            draw.text((x, 12 + int(rng.integers(-6, 7))), char, font=font, fill=colour)
            x += 50 + int(rng.integers(0, 14))
        for _ in range(2):
            draw.line(
                [(int(rng.integers(0, width)), int(rng.integers(0, 80))) for _ in range(2)],
                fill=tuple(int(255 * c) for c in _bright(rng.random())) + (255,),
                width=1,
            )
        _save(image, os.path.join(out, file))
    return out


def _bright(hue: float) -> tuple[float, float, float]:
    import colorsys

    return colorsys.hsv_to_rgb(hue, 0.9, 0.95)


def _start(args) -> str:
    """The row's starting weights: ``scratch`` (the text default) or ``--weights`` (e.g. ``universal``)."""
    return args.weights or "scratch"


def _run_folder(name: str, args) -> str:
    """The row's run folder: ``OUT/<set>``, ``-seedN`` for another training seed, ``-<weights>`` from a reader,
    ``-<options>`` with ``--train-args``."""
    suffix = (f"-seed{args.seed}" if args.seed else "") + (f"-{args.weights}" if args.weights else "")
    if args.train_args:
        suffix += "-" + "".join(c if c.isalnum() or c == "." else "-" for c in args.train_args.strip("- "))
    return os.path.join(args.out, name + suffix)


def run_row(name: str, args) -> dict:
    data = (
        args.data
        if name == "captcha-v2"
        else args.digits
        if name == "chars-digits"
        else os.path.join(args.out, "data", name)
    )
    if data not in (args.data, args.digits) and not os.path.isdir(data):
        build_variant(name, args.data, data, seed=args.data_seed)
    out = _run_folder(name, args)
    task = "chars" if name == "chars-digits" else "text"
    command = ["train", "--task", task, "--data", data, "--out", out, "--logdir", ""]
    if args.seed:
        command += ["--seed", str(args.seed)]
    if args.weights:
        command += ["--weights", args.weights]
    command += shlex.split(args.train_args)
    wall = run_cli(command)
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    with open(os.path.join(out, "config.json")) as f:
        config = json.load(f)
    test = summary.get("test", {})
    if name in CASE_INSENSITIVE:  # scored as `evaluate --case lower`: readings and labels folded
        from recaptcha_tf.evaluation.workflow import evaluate

        test = evaluate(out, data, subset="test", case="lower", report=os.path.join(out, "test_report_lower.json"))
        command_case = f" && recaptcha-tf evaluate --model {out} --data {data} --subset test --case lower"
    else:
        command_case = ""
        report = os.path.join(out, "test_report.json")
        test = {**test, **(json.load(open(report)) if os.path.isfile(report) else {})}
    size = config.get("image_size")
    return {
        "set": name,
        "seed": args.seed,
        "start": _start(args),
        **({"start_version": version} if (version := shipped_version(args.weights)) else {}),
        **({"options": args.train_args} if args.train_args else {}),
        "images": _count(data),
        "test_n": test.get("n"),
        "exact_match": test.get("exact_match", test.get("top1")),
        "cer": test.get("cer", ""),
        "kept_at_99": (test.get("abstention") or {}).get("coverage_at_target", ""),  # --min-confidence at 99% right
        "train_minutes": round(summary["train_seconds"] / 60, 2),
        "steps": summary.get("steps"),
        "step_seconds": config.get("step_seconds"),
        "command_minutes": round(wall / 60, 2),
        "input": f"{size[0]}x{size[1]}" if size else "",
        "crop": "yes" if config.get("crop") else "no",
        "plateau": summary.get("plateau", ""),
        "command": "recaptcha-tf " + " ".join(command) + command_case,
    }


def _count(folder: str) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_TEXT, help="captcha-v2 folder (the variants are built from it)")
    parser.add_argument("--digits", default=DEFAULT_DIGITS, help="real digit glyphs in class folders")
    parser.add_argument("--out", default="models/bench-text-robustness")
    parser.add_argument("--only", nargs="+", choices=ROWS, default=list(ROWS))
    parser.add_argument("--rerun", nargs="+", choices=ROWS, default=[], help="run these rows again")
    parser.add_argument("--seed", type=int, default=0, help="training seed (split and initialisation) of every row")
    parser.add_argument("--weights", default=None, help="start every row from this reader (e.g. universal)")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the variants' data (built once per folder)")
    parser.add_argument(
        "--train-args", default="", help="train options added to every row, e.g. '--plateau-extension 0.5'"
    )
    args = parser.parse_args()
    path = os.path.join(RESULTS, "text_robustness.json")
    results = json.load(open(path)) if os.path.exists(path) else {"rows": []}
    rows = {(r["set"], r.get("seed", 0), r.get("start", "scratch"), r.get("options", "")): r for r in results["rows"]}

    def ordered():
        return [rows[key] for key in sorted(rows, key=lambda key: (list(ROWS).index(key[0]), *key[1:]))]

    for name in args.only:
        key = (name, args.seed, _start(args), args.train_args)
        if key in rows and name not in args.rerun:
            continue
        import shutil

        shutil.rmtree(_run_folder(name, args), ignore_errors=True)
        rows[key] = {**run_row(name, args), "machine": machine()}
        os.makedirs(RESULTS, exist_ok=True)
        with open(path + ".tmp", "w") as f:
            json.dump({"rows": ordered()}, f, indent=2)
        os.replace(path + ".tmp", path)
        print(table([rows[key]], COLUMNS), flush=True)
    print()
    print(table(ordered(), COLUMNS))
    print("wrote", path)


COLUMNS = [
    "set",
    "seed",
    "start",
    "options",
    "images",
    "test_n",
    "exact_match",
    "cer",
    "kept_at_99",
    "train_minutes",
    "steps",
    "input",
    "crop",
    "plateau",
]

if __name__ == "__main__":
    main()
