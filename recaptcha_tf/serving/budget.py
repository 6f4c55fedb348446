"""A server-wide budget of decoded pixels, so a burst of small files that decode large cannot exhaust memory.

A 4096x4096 PNG of one colour is 49 KB on the wire and 50 MB decoded; 64 of them at once took a server from
880 MB to 2.5 GB. Each request reserves its image's pixels (read from the header, before any decoding) for as long
as its decoded copies live; requests beyond the budget wait, and one that waits longer than ``wait_seconds`` is
refused with :class:`ServerBusy` (HTTP 503, "try again"). When the last reservation ends, freed heap is handed back
to the operating system (``malloc_trim``), so memory settles after a burst.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import threading
import time

log = logging.getLogger("recaptcha_tf")


class ServerBusy(RuntimeError):
    """Every decoded pixel the server allows is in use, and stayed so for the whole wait (HTTP 503)."""


def release_free_memory() -> bool:
    """Return freed heap pages to the operating system (glibc's ``malloc_trim``); ``False`` where unavailable."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        return bool(ctypes.CDLL(name).malloc_trim(0))
    except (OSError, AttributeError):
        return False


def limit_heap_arenas(count: int = 2) -> bool:
    """Cap glibc's malloc arenas (``mallopt(M_ARENA_MAX)``) for threads started from now on; call it before the
    server starts its threads. Many request threads each get an arena of their own otherwise, and freed memory then
    stays spread over them: after a burst of 64 large uploads a server kept +39% of its memory with the default
    arenas and +0.2% with two (benchmarks/serve_memory.py). ``False`` where unavailable."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        return bool(ctypes.CDLL(name).mallopt(-8, int(count)))  # -8: M_ARENA_MAX
    except (OSError, AttributeError):
        return False


class PixelBudget:
    """At most ``capacity`` decoded pixels in flight across all requests.

    Args:
        capacity: pixels (width x height) that may be decoded at once; an image larger than the capacity still
            runs, alone.
        wait_seconds: how long a request waits for room before :class:`ServerBusy`.
    """

    # Trim the heap when the server goes idle after at least this many decoded pixels (not after every tile).
    TRIM_AFTER_PIXELS = 16_000_000

    def __init__(self, capacity: int, wait_seconds: float = 10.0):
        if capacity < 1:
            raise ValueError(f"capacity must be positive, got {capacity}.")
        self.capacity = int(capacity)
        self.wait_seconds = float(wait_seconds)
        self.in_use = 0
        self.peak = 0
        self._since_trim = 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def reserve(self, pixels: int):
        """Hold ``pixels`` of the budget for the ``with`` block (waiting for room, at most ``wait_seconds``)."""
        pixels = max(1, min(int(pixels), self.capacity))
        deadline = time.monotonic() + self.wait_seconds
        with self._cond:
            while self.in_use + pixels > self.capacity:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ServerBusy("The server is busy decoding other images; try again in a moment.")
                self._cond.wait(left)
            self.in_use += pixels
            self.peak = max(self.peak, self.in_use)
        try:
            yield
        finally:
            with self._cond:
                self.in_use -= pixels
                self._since_trim += pixels
                trim = self.in_use == 0 and self._since_trim >= self.TRIM_AFTER_PIXELS
                if trim:
                    self._since_trim = 0
                self._cond.notify_all()
            if trim:
                release_free_memory()
