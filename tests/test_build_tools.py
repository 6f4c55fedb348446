"""``tools/_epochs.py``: the build tools stop a training between epochs, within their time limit."""

import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCHS = """
import sys, time
path, seconds, count = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
with open(path, "w") as f:
    f.write("epoch,loss\\n")
for epoch in range(count):
    time.sleep(seconds)
    with open(path, "a") as f:
        f.write(f"{epoch},1.0\\n")
"""


def test_a_run_is_stopped_right_after_the_last_epoch_that_fits(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(os.path.join(ROOT, "tools"))
    from _epochs import run_whole_epochs

    from recaptcha_tf.training.callbacks import epochs_logged as epochs_in

    history = str(tmp_path / "history.csv")
    start = time.time()
    code, stopped = run_whole_epochs([sys.executable, "-c", EPOCHS, history, "0.5", "20"], 2.2, history, poll=0.05)
    elapsed = time.time() - start
    assert stopped and code != 0
    assert elapsed < 2.2 + 2.0  # at the limit at the latest (a loaded machine may start the process late)
    rows = epochs_in(history)
    assert 1 <= rows < 20
    time.sleep(0.6)
    assert epochs_in(history) == rows  # the process is gone: nothing more was written
    quick = str(tmp_path / "quick.csv")
    assert run_whole_epochs([sys.executable, "-c", EPOCHS, quick, "0.05", "3"], 30, quick, poll=0.05) == (0, False)
    assert epochs_in(quick) == 3 and epochs_in(str(tmp_path / "none.csv")) == 0
