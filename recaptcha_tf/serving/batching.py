"""Micro-batching: concurrent requests share one model call.

A request thread hands its already decoded and resized images to
:meth:`MicroBatcher.submit` and blocks. One worker thread takes the first
waiting request, then whatever else arrives within ``max_wait_ms`` (or is
already queued while the previous batch runs), up to ``max_batch_size``
images, runs the model once on the stacked batch and gives each request its
own rows. Decoding and upload checks stay in the request threads, in parallel.

Only valid images reach the batcher (refused uploads fail in their own thread
before it). If the model call still fails on a batch, each request in it is
retried alone, so a failure reaches only the request that causes it.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from concurrent.futures import Future

import numpy as np

_STOP = object()


class MicroBatcher:
    """Group concurrent ``submit`` calls into batches for ``fn``.

    Args:
        fn: ``(B, H, W, C)`` uint8 images -> ``(B, ...)`` outputs (one row per image).
        max_batch_size: most images per call (a single larger request still runs whole).
        max_wait_ms: how long the first request of a batch waits for company, in
            milliseconds. ``0`` batches only what queued up while the model was busy.

    Attributes:
        history: the last 100,000 batches as ``(requests, images, run_ms)``.
    """

    def __init__(self, fn, max_batch_size: int = 32, max_wait_ms: float = 2.0):
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1.")
        self.fn = fn
        self.max_batch_size = int(max_batch_size)
        self.max_wait = max(0.0, float(max_wait_ms)) / 1000
        self.history: collections.deque = collections.deque(maxlen=100_000)
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="micro-batcher", daemon=True)
        self._thread.start()

    def submit(self, images: np.ndarray) -> np.ndarray:
        """Outputs for ``images`` ``(n, H, W, C)``, computed in a batch with other callers' images."""
        images = np.asarray(images)
        if images.ndim < 2 or len(images) == 0:
            raise ValueError(f"submit() needs a non-empty batch of images, got shape {images.shape}.")
        if not self._thread.is_alive():
            raise RuntimeError("The micro-batcher is closed.")
        future: Future = Future()
        self._queue.put((images, future))
        return future.result()

    def close(self) -> None:
        """Stop the worker after the requests already queued."""
        self._queue.put(_STOP)
        self._thread.join(timeout=10)

    # ------------------------------------------------------------------ worker

    def _collect(self, first) -> tuple[list, bool]:
        items, count = [first], len(first[0])
        deadline = time.perf_counter() + self.max_wait
        while count < self.max_batch_size:
            remaining = deadline - time.perf_counter()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return items, True
            items.append(item)
            count += len(item[0])
        return items, False

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            items, stop = self._collect(first)
            self._run(items)
            if stop:
                return

    def _run(self, items: list) -> None:
        start = time.perf_counter()
        try:
            outputs = np.asarray(self.fn(np.concatenate([images for images, _ in items])))
        except Exception as err:  # noqa: BLE001 - retried one by one below, or handed to the caller
            if len(items) == 1:
                items[0][1].set_exception(err)
                return
            for item in items:  # only the request that fails alone gets the error
                self._run([item])
            return
        self.history.append((len(items), len(outputs), 1000 * (time.perf_counter() - start)))
        offset = 0
        for images, future in items:
            future.set_result(outputs[offset : offset + len(images)])
            offset += len(images)
