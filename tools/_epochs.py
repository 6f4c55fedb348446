"""Run a training command for at most some minutes, stopping it between epochs (``tools/build_*.py``).

A run killed mid-epoch resumes from its last finished epoch and loses the epoch it was in (minutes on a small
machine). :func:`run_whole_epochs` watches the run's ``history.csv``: when an epoch has just finished and another as
long as the longest so far would end past the deadline, it stops the run there, losing nothing; at the deadline it
stops the run whatever it is doing (a kill at any instant leaves it resumable).
"""

from __future__ import annotations

import signal
import subprocess
import time


def run_whole_epochs(command: list[str], seconds: float, history: str, poll: float = 5.0) -> tuple[int, bool]:
    """Run ``command`` for at most ``seconds``; ``(exit status, stopped by us)``.

    Args:
        command: the training command (its run writes one ``history.csv`` row per finished epoch).
        seconds: the wall-time limit of this call.
        history: that ``history.csv``.
        poll: seconds between looks at it.
    """
    from recaptcha_tf.training.callbacks import epochs_logged as epochs_in  # finished epochs in history.csv

    start = time.time()
    deadline = start + max(seconds, 1.0)
    process = subprocess.Popen(command)
    rows, since, longest = epochs_in(history), start, 0.0
    while process.poll() is None:
        time.sleep(min(poll, max(deadline - time.time(), 0.01)))
        now, seen = time.time(), epochs_in(history)
        if seen != rows:  # an epoch finished since the last look
            longest, rows, since = max(longest, now - since), seen, now
            if now + longest > deadline and process.poll() is None:
                break
        if now >= deadline:
            break
    else:
        return process.returncode, False
    process.send_signal(signal.SIGTERM)
    process.wait()
    return process.returncode, True
