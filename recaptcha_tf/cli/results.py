"""Printing per-image results (``predict``, ``read``): one line or one JSON object an image, errors on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence


def print_results(
    images: Sequence[str], results: Sequence[dict], as_json: bool, line: Callable[[str, dict], str]
) -> int:
    """Print each image's result: ``line(path, result)`` (or its JSON object with ``as_json``) to stdout, and each
    unreadable image's ``error:`` line to stderr (its JSON object still goes to stdout with ``as_json``).

    Returns:
        The exit status: 2 when an image could not be read (after the others were answered), else 0.
    """
    failed = 0
    for path, r in zip(images, results):
        if "error" in r:
            failed += 1
            print(f"error: {r['error']}", file=sys.stderr)
        if as_json:
            print(json.dumps({"image": path, **r}))
        elif "error" not in r:
            print(line(path, r))
    if failed:
        print(f"error: {failed} of {len(results)} image(s) could not be read", file=sys.stderr)
        return 2
    return 0
