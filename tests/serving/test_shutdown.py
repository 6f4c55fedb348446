"""`serve` stops on SIGTERM as on Ctrl+C, and leaves no partial upload in Gradio's cache."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import train_tiny_classifier

pytestmark = pytest.mark.slow  # starts a server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_shuts_down_cleanly_and_removes_partial_uploads(tmp_path):
    run, _ = train_tiny_classifier(tmp_path)
    cache = tmp_path / "gradio-cache"
    port = _free_port()
    env = {**os.environ, "GRADIO_TEMP_DIR": str(cache)}
    server = subprocess.Popen(
        [sys.executable, "-m", "recaptcha_tf", "serve", "--model", run, "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the server did not start")
        partial = cache / "0123abcd" / "upload.png"  # what a transfer cut off by the stop leaves behind
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.touch()
        kept = cache / "4567ef" / "done.png"  # a complete file that is not ours to judge stays
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_bytes(b"png bytes")
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0, output[-2000:]
    assert not partial.exists() and kept.exists()
    assert "Traceback" not in output
