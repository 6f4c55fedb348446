"""The Gradio demo driven over HTTP with gradio_client, and the pure grid helpers."""

import os
import socket
import struct
import time
import zlib

import numpy as np
import pytest
from conftest import tile_image, train_tiny_classifier, train_tiny_crnn
from PIL import Image

from recaptcha_tf.evaluation.challenge import cell_bounds, pick_cells, split_grid
from recaptcha_tf.inference.loading import load_model
from recaptcha_tf.inference.predictor import predict
from recaptcha_tf.serving.app import UploadError, build_app, launch, read_upload

pytestmark = pytest.mark.slow  # trains, converts, or starts servers, notebooks or processes

MAX_BYTES = 200_000
MAX_PIXELS = 512 * 512
CHARS = "abc"


# ----------------------------------------------------------------------------- pure helpers


def test_split_grid_cuts_row_major_cells():
    image = np.arange(6 * 9).reshape(6, 9)
    cells = split_grid(image, 3, 3)
    assert len(cells) == 9 and all(c.shape == (2, 3) for c in cells)
    assert cells[0].tolist() == [[0, 1, 2], [9, 10, 11]]
    assert cells[5][0, 0] == image[2, 6]  # row 1, column 2
    rgb = np.zeros((10, 7, 3))
    cells = split_grid(rgb, 4, 4)  # sides that do not divide: cells differ by at most one pixel, no gaps
    assert sum(c.shape[0] for c in cells[::4]) == 10 and sum(c.shape[1] for c in cells[:4]) == 7
    assert {c.shape[2] for c in cells} == {3}
    assert cell_bounds(10, 7, 4, 4)[-1][1:4:2] == (10, 7)
    with pytest.raises(ValueError):
        split_grid(np.zeros((2, 2)), 3, 3)


def test_pick_cells_softmax_argmax_and_sigmoid_threshold():
    probs = np.array([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.5, 0.4, 0.1], [0.1, 0.1, 0.8]])
    assert pick_cells(probs, 0, None) == [0, 2]
    assert pick_cells(probs, 1, None) == [1]
    assert pick_cells(probs, 1, 0.4) == [1, 2]  # multi-label: probability over the threshold
    assert pick_cells(probs, 2, 0.9) == []
    with pytest.raises(ValueError):
        pick_cells(probs, 3, None)


# ----------------------------------------------------------------------------- bad files


def _bomb_png(width=100_000, height=100_000) -> bytes:
    """A tiny PNG whose header declares huge dimensions (a decompression bomb's calling card)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    files = {}
    files["text"] = str(root / "notes.png")
    open(files["text"], "w").write("this is a text file renamed to .png\n" * 10)
    files["heavy"] = str(root / "heavy.png")  # 300x300 noise: ~270 kB > MAX_BYTES
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)).save(files["heavy"])
    files["wide"] = str(root / "wide.png")  # 600x600 = 360,000 pixels > MAX_PIXELS, but few bytes
    Image.new("RGB", (600, 600), (10, 20, 30)).save(files["wide"])
    files["bomb"] = str(root / "bomb.png")
    open(files["bomb"], "wb").write(_bomb_png())
    files["bomb_small"] = str(root / "bomb_small.png")  # under Pillow's own bomb limit, over ours
    open(files["bomb_small"], "wb").write(_bomb_png(5000, 5000))
    return files


EXPECTED = {
    "text": "not an image",
    "heavy": "the limit is 0.2 MB",
    "wide": "360,000 pixels; the limit is 262,144 pixels",
    "bomb": "too many pixels",
    "bomb_small": "25,000,000 pixels; the limit is 262,144",
}


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_read_upload_refuses_with_a_clear_message(bad_files, kind):
    with pytest.raises(UploadError, match=EXPECTED[kind]):
        read_upload(bad_files[kind], MAX_BYTES, MAX_PIXELS)


# ----------------------------------------------------------------------------- the served app


UPLOAD_GRACE_S = 5.0  # how long an upload outlives its last request (the server's default is 30 s); a loaded CI
# machine can hold a request for the same bytes in the queue for over a second


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    root = tmp_path_factory.mktemp("app_cls")
    out, _ = train_tiny_classifier(root)
    return out, root


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    return train_tiny_crnn(tmp_path_factory.mktemp("app_text"), count=16, charset=CHARS)


def _serve(model_path):
    from gradio_client import Client

    port = _free_port()
    demo = build_app(model_path, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS, upload_grace_s=UPLOAD_GRACE_S)
    launch(demo, port=port, max_bytes=MAX_BYTES, block=False)
    return demo, Client(f"http://127.0.0.1:{port}/", verbose=False)


@pytest.fixture(scope="module")
def tile_client(classifier):
    demo, client = _serve(classifier[0])
    yield client
    client.close() if hasattr(client, "close") else None
    demo.close()


def test_tile_prediction_over_http(classifier, tile_client):
    from gradio_client import handle_file

    run, root = classifier
    path = os.path.join(root, "tiles", "hydrant", "0001.png")
    label, summary = tile_client.predict(handle_file(path), api_name="/predict_tile")
    expected = predict(load_model(run), [path], top_k=3)[0]
    assert label["label"] == expected["label"]
    assert {c["label"] for c in label["confidences"]} == {"bus", "hydrant", "traffic_light"}
    probs = {c["label"]: c["confidence"] for c in label["confidences"]}
    assert probs[expected["label"]] == pytest.approx(expected["confidence"], abs=1e-5)
    assert summary.startswith(expected["label"])


def test_grid_selection_over_http(classifier, tile_client, tmp_path):
    from gradio_client import handle_file

    run, _ = classifier
    rng = np.random.default_rng(3)
    classes = [0, 1, 2, 1, 0, 2, 2, 1, 0]
    tiles = [np.asarray(tile_image(c, rng, 30)) for c in classes]
    grid = np.concatenate([np.concatenate(tiles[r * 3 : (r + 1) * 3], axis=1) for r in range(3)], axis=0)
    grid_path = str(tmp_path / "grid.png")
    Image.fromarray(grid).save(grid_path)
    # The same decision from the package's own predict on each cell saved as a file, with and without flip TTA.
    cell_files = []
    for k, cell in enumerate(split_grid(grid, 3, 3)):
        cell_files.append(str(tmp_path / f"cell{k}.png"))
        Image.fromarray(cell).save(cell_files[-1])
    model = load_model(run)
    from recaptcha_tf.inference.abstention import grid_rule
    from recaptcha_tf.inference.loading import model_info
    from recaptcha_tf.inference.predictor import predict_outputs

    threshold, min_confidence, _ = grid_rule(model_info(model))  # the model's own rule (its stored thresholds)
    for flip in (True, False):
        overlay, summary, cells = tile_client.predict(
            handle_file(grid_path), "hydrant", "3x3", flip, api_name="/select_cells"
        )
        probs = predict_outputs(model, cell_files, tta="flip" if flip else "none")
        assert cells == [i + 1 for i in pick_cells(probs, 1, threshold, min_confidence)]
        assert summary.startswith("hydrant:") and ("flip TTA" in summary) == flip
        shown = np.asarray(Image.open(overlay))
        assert shown.shape[:2] == grid.shape[:2]
        assert cells == [] or not np.array_equal(shown[..., :3], grid)  # picked cells are tinted


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_bad_uploads_get_a_clear_message_not_a_traceback(bad_files, tile_client, kind):
    from gradio_client import handle_file

    with pytest.raises(Exception) as err:
        tile_client.predict(handle_file(bad_files[kind]), api_name="/predict_tile")
    message = str(err.value)
    assert EXPECTED[kind] in message and "Traceback" not in message


def test_grid_with_a_bomb_is_refused(bad_files, tile_client):
    from gradio_client import handle_file

    with pytest.raises(Exception, match="too many pixels"):
        tile_client.predict(handle_file(bad_files["bomb"]), "bus", "4x4", True, api_name="/select_cells")


def test_text_prediction_over_http(text_model, bad_files):
    from gradio_client import handle_file

    run, data = text_model
    demo, client = _serve(run)
    try:
        path = os.path.join(data, sorted(os.listdir(data))[0])
        text, conf = client.predict(handle_file(path), api_name="/predict_text")
        expected = predict(load_model(run), [path])[0]
        assert text == expected["text"] and set(text) <= set(CHARS)
        rows = conf["data"] if isinstance(conf, dict) else conf
        assert [r[0] for r in rows] == list(text)
        assert [float(r[1]) for r in rows] == pytest.approx(expected["confidence"], abs=1e-4)
        with pytest.raises(Exception, match="not an image"):
            client.predict(handle_file(bad_files["text"]), api_name="/predict_text")
        with pytest.raises(Exception, match="too many pixels"):
            client.predict(handle_file(bad_files["bomb"]), api_name="/predict_text")
    finally:
        demo.close()


# ----------------------------------------------------------------------------- speed: micro-batching, plain HTTP


def test_micro_batcher_groups_requests_and_isolates_a_failing_one():
    import threading

    from recaptcha_tf.serving.batching import MicroBatcher

    calls = []

    def fn(batch):
        calls.append(len(batch))
        if (batch < 0).any():
            raise ValueError("poisoned image")
        return batch.reshape(len(batch), -1).sum(axis=1)

    batcher = MicroBatcher(fn, max_batch_size=16, max_wait_ms=200)
    results, errors = {}, {}

    def client(i):
        value = -1.0 if i == 3 else float(i)
        try:
            results[i] = batcher.submit(np.full((1, 2, 2, 1), value))
        except ValueError as err:
            errors[i] = str(err)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    assert errors == {3: "poisoned image"}
    assert {i: float(r[0]) for i, r in results.items()} == {i: 4.0 * i for i in (0, 1, 2, 4, 5)}
    assert max(calls) > 1  # requests were grouped before the failure split them up
    assert sum(n for _, n, _ in batcher.history) == 5


@pytest.fixture(scope="module")
def batching_predictor(classifier):
    from recaptcha_tf.serving.app import Predictor

    p = Predictor(classifier[0], MAX_BYTES, MAX_PIXELS, batch_wait_ms=150)
    yield p
    p.close()


def _concurrently(fn, items):
    import threading

    out = {}

    def call(i, item):
        try:
            out[i] = ("ok", fn(item))
        except Exception as err:  # noqa: BLE001 - compared below
            out[i] = ("error", err)

    threads = [threading.Thread(target=call, args=(i, item)) for i, item in enumerate(items)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [out[i] for i in range(len(items))]


def test_micro_batched_results_equal_one_by_one(classifier, batching_predictor):
    from recaptcha_tf.export import list_images

    run, root = classifier
    files = list_images(os.path.join(root, "tiles"))[:8]
    before = len(batching_predictor.batcher.history)
    got = _concurrently(batching_predictor.predict_upload, files)
    model = load_model(run)
    for (status, result), f in zip(got, files):
        expected = predict(model, [f], top_k=5)[0]
        assert status == "ok" and result["label"] == expected["label"]
        assert [n for n, _ in result["top_k"]] == [n for n, _ in expected["top_k"]]
        assert [p for _, p in result["top_k"]] == pytest.approx([p for _, p in expected["top_k"]], abs=1e-6)
    batches = list(batching_predictor.batcher.history)[before:]
    assert sum(n for n, _, _ in batches) == 8 and max(n for n, _, _ in batches) > 1
    assert {"checks", "decode", "model", "total"} <= set(batching_predictor.timings[-1])


def test_a_bad_upload_in_a_batch_fails_only_its_own_request(classifier, batching_predictor, bad_files):
    from recaptcha_tf.export import list_images

    good = list_images(os.path.join(classifier[1], "tiles"))[:4]
    items = [good[0], bad_files["text"], good[1], bad_files["bomb"], good[2], bad_files["wide"], good[3]]
    got = _concurrently(batching_predictor.predict_upload, items)
    expected = predict(load_model(classifier[0]), good)
    assert [r["label"] for s, r in got if s == "ok"] == [e["label"] for e in expected]
    errors = [r for s, r in got if s == "error"]
    assert [type(e) for e in errors] == [UploadError] * 3
    assert [m in str(e) for m, e in zip((EXPECTED["text"], EXPECTED["bomb"], EXPECTED["wide"]), errors)] == [True] * 3


def test_concurrent_clients_are_all_answered_correctly(classifier, tile_client):
    from gradio_client import Client, handle_file

    from recaptcha_tf.export import list_images

    run, root = classifier
    files = list_images(os.path.join(root, "tiles"))[::3][:8]
    clients = [Client(tile_client.src, verbose=False) for _ in range(4)]
    got = _concurrently(
        lambda k: clients[k % 4].predict(handle_file(files[k]), api_name="/predict_tile"), list(range(len(files)))
    )
    expected = predict(load_model(run), files)
    assert [s for s, _ in got] == ["ok"] * len(files)
    assert [r[0]["label"] for _, r in got] == [e["label"] for e in expected]


def test_plain_http_route(classifier, tile_client, bad_files):
    import json
    import urllib.error
    import urllib.request

    from recaptcha_tf.export import list_images

    url = tile_client.src.rstrip("/") + "/api/v1/predict"

    def post(path):
        req = urllib.request.Request(
            url, data=open(path, "rb").read(), method="POST", headers={"Content-Type": "application/octet-stream"}
        )
        try:
            with urllib.request.urlopen(req) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    files = list_images(os.path.join(classifier[1], "tiles"))[:6]
    got = _concurrently(post, files)
    expected = predict(load_model(classifier[0]), files)
    assert [r[1][0] for r in got] == [200] * 6
    assert [r[1][1]["label"] for r in got] == [e["label"] for e in expected]
    assert got[0][1][1]["confidence"] == pytest.approx(expected[0]["confidence"], abs=1e-6)
    for kind, message in EXPECTED.items():  # the same checks, the same messages as the demo
        status, body = post(bad_files[kind])
        assert status == (413 if kind == "heavy" else 400) and message in body["error"], (kind, body)


def test_demo_page_shows_held_out_examples(classifier, tile_client):
    import urllib.request

    from recaptcha_tf.export import run_images
    from recaptcha_tf.serving.app import held_out_examples

    run, _ = classifier
    examples = held_out_examples(run, 4)
    held_out = {os.path.basename(f) for f in run_images(run)}
    assert 1 <= len(examples) <= 4 and all(os.path.exists(f) for f in examples)
    assert all(any(os.path.basename(f).endswith("_" + h) for h in held_out) for f in examples)
    config = urllib.request.urlopen(tile_client.src.rstrip("/") + "/config").read().decode()
    assert '"dataset"' in config and "held-out examples" in config
    assert urllib.request.urlopen(tile_client.src).status == 200


def _cache_bytes():
    from gradio.utils import get_upload_folder

    total = 0
    for folder, _, files in os.walk(get_upload_folder()):
        total += sum(os.path.getsize(os.path.join(folder, f)) for f in files if os.path.isfile(os.path.join(folder, f)))
    return total


def test_refused_and_accepted_uploads_leave_nothing_on_disk(classifier, tile_client, tmp_path):
    """Issue #12: 20 refused 1 MB uploads used to stay in Gradio's cache (+19.7 MB) after shutdown."""
    from gradio_client import handle_file

    run, root = classifier
    junk = tmp_path / "junk.png"
    junk.write_bytes(os.urandom(MAX_BYTES - 1000))  # under the size limit, not an image: refused after upload
    good = os.path.join(root, "tiles", "bus", "0001.png")
    before = _cache_bytes()
    for _ in range(5):
        with pytest.raises(Exception, match="not an image"):
            tile_client.predict(handle_file(str(junk)), api_name="/predict_tile")
    tile_client.predict(handle_file(good), api_name="/predict_tile")
    deadline = time.monotonic() + UPLOAD_GRACE_S + 5
    while _cache_bytes() - before >= 20_000 and time.monotonic() < deadline:  # deleted once the grace has passed
        time.sleep(0.2)
    assert _cache_bytes() - before < 20_000  # 5 x ~200 KB refused + one tile accepted: all deleted


def test_many_clients_sending_the_same_image_at_once_all_get_answers(classifier, tile_client):
    """Gradio caches identical uploads under one path: one request's cleanup used to delete the file under the
    others (25 of 40 failed with 'The upload could not be read')."""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client, handle_file

    run, root = classifier
    good = os.path.join(root, "tiles", "bus", "0001.png")
    url = tile_client.src

    def client_loop(_):
        client = Client(url, verbose=False)
        answers = []
        for _ in range(5):
            try:
                answers.append(client.predict(handle_file(good), api_name="/predict_tile")[0]["label"])
            except Exception as err:  # noqa: BLE001  (counted, then asserted on)
                answers.append(f"failed: {err}")
        return answers

    with ThreadPoolExecutor(8) as pool:
        answers = [a for batch in pool.map(client_loop, range(8)) for a in batch]
    assert len(answers) == 40 and [a for a in answers if a.startswith("failed")] == []
    assert len(set(answers)) == 1  # the same image, the same answer


def test_demo_shows_sample_thumbnails(classifier, tmp_path):
    """``samples_dir`` (serve --examples): a gallery of the samples, captioned, its click hidden from the API; none
    with ``samples=0``. The browser test (tests/serving/test_browser.py) clicks them."""
    from conftest import make_class_folders

    from recaptcha_tf.serving.app import Predictor

    run, _ = classifier
    samples = tmp_path / "samples"
    make_class_folders(str(samples / "tiles"), classes=("hydrant", "zebra"), per_class=2)
    predictor = Predictor(run, MAX_BYTES, MAX_PIXELS)
    try:
        config = build_app(run, predictor=predictor, examples=0, samples_dir=str(samples), samples=3).config
        galleries = [c for c in config["components"] if c["props"].get("elem_id") == "sample-images"]
        assert len(galleries) == 1
        shown = galleries[0]["props"]["value"]
        assert [item["caption"] for item in shown] == ["hydrant", "zebra", "hydrant"]
        assert [os.path.basename(item["image"]["path"]) for item in shown] == ["1_0000.png", "2_0000.png", "3_0001.png"]
        picks = [d for d in config["dependencies"] if galleries[0]["id"] in [t[0] for t in d["targets"]]]
        assert picks and all(d["api_visibility"] == "private" for d in picks)
        assert "predict_tile" in {d["api_name"] for d in config["dependencies"]}

        config = build_app(run, predictor=predictor, examples=0, samples_dir=str(samples), samples=0).config
        assert not [c for c in config["components"] if c["props"].get("elem_id") == "sample-images"]
        config = build_app(run, predictor=predictor, examples=0, samples_dir=str(tmp_path / "absent")).config
        assert not [c for c in config["components"] if c["props"].get("elem_id") == "sample-images"]
    finally:
        predictor.close()


def test_the_demo_and_http_route_apply_the_stored_min_confidence_as_predict_does(classifier):
    """The tile tab and ``POST /api/v1/predict`` (both ``Predictor.predict_upload``) abstain below the model's stored
    ``--min-confidence`` exactly as ``recaptcha_tf.load(...).predict`` does, at any ``top_k``."""
    import dataclasses

    from recaptcha_tf.api import Model
    from recaptcha_tf.serving.app import Predictor

    run, root = classifier
    paths = [os.path.join(root, "tiles", name, "0001.png") for name in ("bus", "hydrant", "traffic_light")]
    predictor = Predictor(run)
    try:
        plain = [predictor.predict_upload(open(p, "rb").read())["confidence"] for p in paths]
        # some tiles clear it, some do not: the middle of the widest gap between two confidences, never one of them
        # (a threshold equal to a tile's confidence splits on float noise between batched and single reads)
        ordered = np.sort(plain)
        widest = int(np.argmax(np.diff(ordered)))
        threshold = float((ordered[widest] + ordered[widest + 1]) / 2)
        assert ordered[widest + 1] - ordered[widest] > 1e-4
        predictor.info = dataclasses.replace(predictor.info, min_confidence=threshold)
        model = Model(predictor.inference)
        model.info = predictor.info  # Model.predict reads the stored threshold from its info
        for top_k in (1, 3):
            served = [predictor.predict_upload(open(p, "rb").read(), top_k) for p in paths]
            expected = model.predict(paths, top_k=top_k)
            assert [r["abstained"] for r in served] == [r["abstained"] for r in expected]
            assert [r["label"] for r in served] == [r["label"] for r in expected]
            assert [r["abstained"] for r in served] == [c < threshold for c in plain]  # no background class here
            assert all(len(r["top_k"]) == top_k for r in served)
    finally:
        predictor.close()


def test_the_grid_tab_never_mirrors_cells_of_a_character_model(classifier, tmp_path):
    """Flip TTA is for tiles (``check_tta``): a ``chars`` model's grid is read from the cells as they are."""
    import dataclasses

    from recaptcha_tf.serving.app import Predictor

    run, _ = classifier
    rng = np.random.default_rng(5)
    tiles = [np.asarray(tile_image(c, rng, 30)) for c in [0, 1, 2, 1, 0, 2, 2, 1, 0]]
    grid = np.concatenate([np.concatenate(tiles[r * 3 : (r + 1) * 3], axis=1) for r in range(3)], axis=0)
    path = str(tmp_path / "grid.png")
    Image.fromarray(grid).save(path)
    predictor = Predictor(run)
    try:
        assert "flip TTA" in predictor.grid(path, "hydrant", "3x3", True)[1]
        predictor.info = dataclasses.replace(predictor.info, task="chars")
        _, summary, cells = predictor.grid(path, "hydrant", "3x3", True)
        assert "flip TTA" not in summary and cells == predictor.grid(path, "hydrant", "3x3", False)[2]
    finally:
        predictor.close()
