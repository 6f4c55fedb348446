"""The server's decode budget, its HTTP route's answers (401, 503) and the warning for a reachable host."""

from __future__ import annotations

import os
import threading
import time

import pytest

from recaptcha_tf.serving import app as serving_app
from recaptcha_tf.serving.budget import PixelBudget, ServerBusy, release_free_memory
from recaptcha_tf.serving.http import API_ROUTE, add_http_route


def test_requests_past_the_budget_wait_and_the_peak_stays_within_it():
    budget = PixelBudget(100, wait_seconds=5)
    order, peaks = [], []

    def request(name, pixels, hold):
        with budget.reserve(pixels):
            order.append(name)
            peaks.append(budget.in_use)
            time.sleep(hold)

    first = threading.Thread(target=request, args=("first", 80, 0.3))
    first.start()
    time.sleep(0.05)
    second = threading.Thread(target=request, args=("second", 80, 0))
    second.start()
    time.sleep(0.1)
    assert order == ["first"]  # 80 + 80 > 100: the second waits
    first.join()
    second.join()
    assert order == ["first", "second"] and max(peaks) <= 100 and budget.peak <= 100 and budget.in_use == 0


def test_a_request_that_waits_too_long_is_refused_and_a_huge_image_runs_alone():
    budget = PixelBudget(100, wait_seconds=0.2)
    with budget.reserve(60):
        start = time.monotonic()
        with pytest.raises(ServerBusy, match="try again"):
            with budget.reserve(60):
                pass
        assert 0.15 < time.monotonic() - start < 2
    with budget.reserve(10_000):  # larger than the whole budget: it waits for an empty server, then runs alone
        assert budget.in_use == 100
    assert budget.in_use == 0
    assert isinstance(release_free_memory(), bool)


class _FakePredictor:
    """Only what the HTTP route reads: the byte limit, and a predict_upload that answers or is busy."""

    max_bytes = 1000

    def __init__(self, busy=False):
        self.busy = busy

    def predict_upload(self, data):
        if self.busy:
            raise ServerBusy("The server is busy decoding other images; try again in a moment.")
        return {"label": "bus", "bytes": len(data)}


def _client(predictor, api_key=None):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    app = FastAPI()
    add_http_route(app, predictor, api_key=api_key)
    return TestClient(app)


def test_the_http_route_asks_for_the_key_and_says_busy_with_503():
    client = _client(_FakePredictor(), api_key="s3cret")
    assert client.post(API_ROUTE, content=b"x").status_code == 401
    assert client.post(API_ROUTE, content=b"x", headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = client.post(API_ROUTE, content=b"xyz", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and ok.json() == {"label": "bus", "bytes": 3}
    assert client.post(API_ROUTE, content=b"x", headers={"X-API-Key": "s3cret"}).status_code == 200
    assert _client(_FakePredictor()).post(API_ROUTE, content=b"x").status_code == 200  # no key: open, as before
    busy = _client(_FakePredictor(busy=True)).post(API_ROUTE, content=b"x")
    assert busy.status_code == 503 and "try again" in busy.json()["error"] and busy.headers["retry-after"] == "1"


@pytest.mark.parametrize(
    "host, loopback",
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.168.1.5", False),
        ("myhost", False),
    ],
)
def test_loopback_hosts(host, loopback):
    assert serving_app.is_loopback(host) is loopback


@pytest.mark.parametrize("api_key, expected", [(None, "no authentication"), ("k", "API key required")])
def test_a_reachable_host_is_said_in_one_line(monkeypatch, capsys, api_key, expected):
    class Ready:
        runtime = "keras"

        def __init__(self, *args, **kwargs):
            pass

    launched = {}
    monkeypatch.setattr(serving_app, "Predictor", Ready)
    monkeypatch.setattr(serving_app, "build_app", lambda *a, **k: "demo")
    monkeypatch.setattr(serving_app, "launch", lambda demo, *a, **k: launched.update(k))
    serving_app.serve("run", host="0.0.0.0", api_key=api_key)
    lines = [line for line in capsys.readouterr().out.splitlines() if expected in line]
    assert len(lines) == 1 and launched["api_key"] == api_key
    serving_app.serve("run", host="127.0.0.1")
    assert "authentication" not in capsys.readouterr().out


def test_serve_sets_its_memory_settings_before_tensorflow_unless_the_user_did(monkeypatch):
    from recaptcha_tf.cli.commands import serve

    monkeypatch.delenv("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", raising=False)
    serve.before_tensorflow(None)
    assert os.environ["TF_ONEDNN_USE_SYSTEM_ALLOCATOR"] == "1"
    monkeypatch.setenv("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "0")
    serve.before_tensorflow(None)
    assert os.environ["TF_ONEDNN_USE_SYSTEM_ALLOCATOR"] == "0"
