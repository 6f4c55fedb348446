"""Content hashes: how a sidecar names the model it came from, and how identical images are found."""

from __future__ import annotations

import hashlib
import os


def sha256_of(source) -> str:
    """The SHA-256 of a file's bytes (a path) or of the bytes themselves, as hex; files are read in 1 MB blocks."""
    if isinstance(source, (bytes, bytearray)):
        return hashlib.sha256(source).hexdigest()
    digest = hashlib.sha256()
    with open(os.fspath(source), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
