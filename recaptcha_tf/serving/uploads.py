"""Uploaded files in Gradio's cache: owned by the requests that read them, deleted once none does.

Gradio keeps identical uploads under one cached path, so two requests with the same image (many users clicking the
same example) read the same file. A request's cleanup must not delete it under the other one:
:class:`UploadOwners` counts the requests holding each file, and deletes a file only ``grace_seconds`` after its
last holder finished, when no request holds it again and no newer upload has replaced it (Gradio moves each
upload into place, so a new upload of the same bytes is a new inode). The grace covers the moment between a
client's upload and its request reaching the model.
"""

from __future__ import annotations

import collections
import logging
import os
import threading

log = logging.getLogger("recaptcha_tf")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


class UploadError(ValueError):
    """An upload that is refused; the message is shown to the user as is."""


def _cache_folder() -> str:
    from gradio.utils import get_upload_folder

    return os.path.realpath(get_upload_folder())


def discard_uploads(args) -> int:
    """Delete the uploaded files among ``args`` from Gradio's upload cache (and their emptied folders) now.

    Only files inside Gradio's cache are touched. Returns the bytes freed.
    """
    cache = _cache_folder()
    freed = 0
    for arg in args:
        if not isinstance(arg, str) or not os.path.isfile(arg):
            continue
        path = os.path.realpath(arg)
        if not path.startswith(cache + os.sep):
            continue  # never a file outside Gradio's cache
        freed += os.path.getsize(path)
        os.remove(path)
        folder = os.path.dirname(path)
        while folder != cache and folder.startswith(cache + os.sep):
            try:
                os.rmdir(folder)  # only when empty
            except OSError:
                break
            folder = os.path.dirname(folder)
    return freed


def remove_partial_uploads() -> int:
    """Delete the empty files in Gradio's upload cache (uploads cut off mid-transfer); returns how many."""
    cache = _cache_folder()
    removed = 0
    for folder, _, files in os.walk(cache):
        for name in files:
            path = os.path.join(folder, name)
            try:
                if os.path.isfile(path) and not os.path.islink(path) and os.path.getsize(path) == 0:
                    discard_uploads([path])
                    removed += not os.path.exists(path)
            except OSError:
                continue
    return removed


class UploadOwners:
    """Reference counts of the cached upload files that running requests read.

    Args:
        grace_seconds: how long after its last request a file stays, in case another request for the same bytes
            is on its way (0: delete at once).
    """

    def __init__(self, grace_seconds: float = 30.0):
        self.grace_seconds = float(grace_seconds)
        self._holders: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._timers: set[threading.Timer] = set()

    def hold(self, args) -> list[tuple[str, int]]:
        """Mark the uploaded files among a request's ``args`` as in use; returns what to :meth:`release`."""
        cache = _cache_folder()
        held = []
        with self._lock:
            for arg in args:
                if not isinstance(arg, str):
                    continue
                path = os.path.realpath(arg)
                if not path.startswith(cache + os.sep):
                    continue
                try:
                    inode = os.stat(path).st_ino
                except OSError:
                    continue
                self._holders[path] += 1
                held.append((path, inode))
        return held

    def release(self, held: list[tuple[str, int]]) -> None:
        """The request is done with its files; each file whose last holder this was is deleted after the grace."""
        with self._lock:
            free = []
            for path, inode in held:
                self._holders[path] -= 1
                if self._holders[path] <= 0:
                    del self._holders[path]
                    free.append((path, inode))
        for path, inode in free:
            if self.grace_seconds <= 0:
                self._expire(path, inode)
                continue
            timer = threading.Timer(self.grace_seconds, self._expire, (path, inode))
            timer.daemon = True
            with self._lock:
                self._timers.add(timer)
            timer.start()

    def _expire(self, path: str, inode: int) -> None:
        with self._lock:
            self._timers = {t for t in self._timers if t.is_alive() and t is not threading.current_thread()}
            if self._holders[path]:
                return  # another request reads it now; its release schedules the deletion
            try:
                if os.stat(path).st_ino != inode:
                    return  # a newer upload of the same bytes: its own request deletes it
            except OSError:
                return
            try:
                discard_uploads([path])
            except OSError as err:
                log.debug("serve: could not delete an upload: %s", err)

    def close(self) -> None:
        """Delete now every file waiting for its grace to end (at shutdown)."""
        with self._lock:
            timers, self._timers = list(self._timers), set()
        for timer in timers:
            timer.cancel()
            timer.function(*timer.args)
