"""Shrink an executed notebook's figures before committing it.

Photo-like figures (sample grids, augmented tiles, misclassified examples) are
large as PNG; every ``image/png`` output over ``--min-kb`` is downscaled to at
most ``--max-width`` pixels and re-encoded as JPEG (``image/jpeg``, which
Jupyter, Colab and code hosts render like PNG). Line plots under the threshold
stay PNG. The notebook is rewritten in place.

    python tools/compact_notebook.py notebooks/*.ipynb
"""

from __future__ import annotations

import argparse
import base64
import io

import nbformat
from PIL import Image


def compact(path: str, min_kb: int = 120, max_width: int = 1100, quality: int = 82) -> tuple[int, int]:
    """Rewrite ``path`` in place; returns the file size in bytes before and after."""
    with open(path, "rb") as f:
        before = len(f.read())
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            png = data.get("image/png")
            if not png or len(png) * 3 // 4 < min_kb * 1024:
                continue
            image = Image.open(io.BytesIO(base64.b64decode(png))).convert("RGB")
            if image.width > max_width:
                image = image.resize((max_width, round(image.height * max_width / image.width)), Image.LANCZOS)
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=quality, optimize=True)
            del data["image/png"]
            data["image/jpeg"] = base64.b64encode(buffer.getvalue()).decode("ascii")
            output.setdefault("metadata", {}).pop("image/png", None)
    nbformat.write(nb, path)
    with open(path, "rb") as f:
        return before, len(f.read())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+")
    parser.add_argument("--min-kb", type=int, default=120, help="re-encode PNG figures larger than this")
    parser.add_argument("--max-width", type=int, default=1100, help="downscale wider figures to this many pixels")
    parser.add_argument("--quality", type=int, default=82, help="JPEG quality")
    args = parser.parse_args()
    for path in args.notebooks:
        before, after = compact(path, args.min_kb, args.max_width, args.quality)
        print(f"{path}: {before / 1e6:.2f} MB -> {after / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
