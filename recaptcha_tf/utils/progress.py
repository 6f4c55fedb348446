"""Progress bars for long jobs (tqdm), shown only where someone watches: on a terminal, and only when asked.

Library loops (generating CAPTCHAs, predicting batches, parity checks, converting datasets) wrap their work in
:func:`progress`; the bars stay off unless the caller turned them on with :func:`progress_bars` (the command line
does, except with ``-q``), and even then appear only when stderr is a terminal (tqdm's ``disable=None``). So a
server, a test or a notebook that did not ask gets no bars, and a log file gets no carriage returns.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys

_ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("recaptcha_tf_progress", default=False)


@contextlib.contextmanager
def progress_bars(enabled: bool = True):
    """Within this block, :func:`progress` shows bars (on a terminal) when ``enabled``."""
    token = _ENABLED.set(enabled)
    try:
        yield
    finally:
        _ENABLED.reset(token)


def bars_enabled() -> bool:
    """Whether :func:`progress` would draw now: bars were asked for and stderr is a terminal."""
    return _ENABLED.get() and sys.stderr.isatty()


def progress(iterable=None, *, total: int | None = None, desc: str | None = None, unit: str = "it", minimum: int = 0):
    """A tqdm bar over ``iterable`` (or to ``update`` by hand, with ``total``); disabled unless bars were asked for
    (:func:`progress_bars`), stderr is a terminal and there are at least ``minimum`` items."""
    from tqdm import tqdm

    size = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
    off = not _ENABLED.get() or (size is not None and size < minimum)
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        leave=False,
        dynamic_ncols=True,
        disable=True if off else None,  # None: only on a terminal
    )
