"""Rebuild the committed ``samples/`` folder from the shared data beside the project.

``samples/`` holds a few real images and a few generated CAPTCHAs, small enough to commit (5 MB at most), so that
the notebooks and the demo run from a fresh clone. This script is the only thing that reads ``../shared``; tests
and notebooks read ``samples/``.

    python tools/make_samples.py                  # from the project root; ../shared/data must exist
    python tools/make_samples.py --shared /path/to/shared/data

What it writes (see samples/README.md for sources and licences):

- ``samples/tiles/<class>/``: the first ``--tiles`` files (sorted by name) of each class of
  ``recaptcha-tiles``, copied byte for byte, and ``samples/tiles/LICENSE``;
- ``samples/digits/<class>/``: the first ``--digits`` files (sorted by name) of each class of ``digits``,
  copied byte for byte, and ``samples/digits/LICENSE``;
- ``samples/text/``: ``--text`` CAPTCHAs drawn by the package's own generator (``recaptcha-tf generate``,
  fixed seed), PNG files named by their label. Nothing is taken from ``captcha-v2`` (no licence).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
MAX_BYTES = 5_000_000

MIT = """MIT License

Copyright (c) 2020 {holder}

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""

# The exact command recorded in samples/README.md; --out is appended.
TEXT_COMMAND = ["generate", "--count", "{count}", "--seed", "34"]  # the generator's defaults otherwise


def copy_first(source: str, dest: str, per_class: int) -> int:
    """Copy the first ``per_class`` images (sorted by name) of each class folder; returns the number copied."""
    copied = 0
    for name in sorted(os.listdir(source)):
        folder = os.path.join(source, name)
        if not os.path.isdir(folder):
            continue
        files = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))[:per_class]
        os.makedirs(os.path.join(dest, name), exist_ok=True)
        for f in files:
            shutil.copyfile(os.path.join(folder, f), os.path.join(dest, name, f))
        copied += len(files)
    return copied


def generate_text(dest: str, count: int) -> None:
    args = [a.format(count=count) for a in TEXT_COMMAND] + ["--out", dest]
    subprocess.run([sys.executable, "-P", "-m", "recaptcha_tf", *args], check=True, cwd=ROOT)


def folder_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", default=os.path.join(ROOT, os.pardir, "shared", "data"))
    parser.add_argument("--out", default=os.path.join(ROOT, "samples"))
    parser.add_argument("--tiles", type=int, default=20, help="tiles per class (default: 20)")
    parser.add_argument("--digits", type=int, default=30, help="digit glyphs per class (default: 30)")
    parser.add_argument("--text", type=int, default=60, help="generated text CAPTCHAs (default: 60)")
    args = parser.parse_args(argv)

    tiles_src = os.path.join(args.shared, "recaptcha-tiles")
    digits_src = os.path.join(args.shared, "digits")
    for path in (tiles_src, digits_src):
        if not os.path.isdir(path):
            parser.error(f"{path} not found: pass --shared with the folder that holds recaptcha-tiles/ and digits/")

    for sub in ("tiles", "digits", "text"):  # rebuild from scratch; README.md at the top stays
        shutil.rmtree(os.path.join(args.out, sub), ignore_errors=True)
    tiles = copy_first(tiles_src, os.path.join(args.out, "tiles"), args.tiles)
    with open(os.path.join(args.out, "tiles", "LICENSE"), "w") as f:
        f.write(MIT.format(holder="Brian"))
    digits = copy_first(digits_src, os.path.join(args.out, "digits"), args.digits)
    with open(os.path.join(args.out, "digits", "LICENSE"), "w") as f:
        f.write(MIT.format(holder="GT-Zhang"))
    generate_text(os.path.join(args.out, "text"), args.text)

    total = folder_bytes(args.out)
    print(f"samples: {tiles} tiles, {digits} digits, {args.text} text CAPTCHAs, {total / 1e6:.2f} MB in {args.out}")
    if total > MAX_BYTES:
        print(f"samples/ is over {MAX_BYTES / 1e6:.0f} MB: lower --tiles or --digits", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
