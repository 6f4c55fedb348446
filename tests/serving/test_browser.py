"""The Gradio demo in a real browser (Chromium through Playwright): upload a tile and a text CAPTCHA and read the
answers in the page, see a refused upload's message, and click the sample thumbnails.

Chromium is Debian's (``apt-get install chromium``; ``playwright install`` needs the internet). Without it the
browser tests skip with one line, except where ``CI_REQUIRE_BROWSER=1`` (``.ci/run`` sets it): there they fail.
"""

from __future__ import annotations

import os
import shutil
import socket

import numpy as np
import pytest
from conftest import make_class_folders, train_tiny_classifier, train_tiny_crnn
from PIL import Image

MAX_BYTES = 200_000
MAX_PIXELS = 256 * 256
CHARS = "abc"
SAMPLES = 4  # thumbnails per demo
CLASSES = ("bus", "hydrant", "traffic_light")
TIMEOUT_MS = 30_000  # per page expectation; the first prediction of a fresh server can take a few seconds on CI


def chromium_path() -> str | None:
    """The Chromium to drive: ``$CHROMIUM_PATH``, else ``chromium`` / ``chromium-browser`` on the PATH."""
    if os.environ.get("CHROMIUM_PATH"):
        return os.environ["CHROMIUM_PATH"]
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    """Chromium's path; skip (fail where ``CI_REQUIRE_BROWSER=1``) when there is none."""
    path = chromium_path()
    if path is not None and os.access(path, os.X_OK):
        return path
    message = "Chromium not found: apt-get install chromium (or set CHROMIUM_PATH)"
    if os.environ.get("CI_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{message}; CI_REQUIRE_BROWSER=1 forbids skipping the browser tests", pytrace=False)
    pytest.skip(message)


def test_missing_chromium_skips_with_one_line_or_fails_under_ci(monkeypatch):
    monkeypatch.setenv("CHROMIUM_PATH", "/nonexistent/chromium")
    monkeypatch.delenv("CI_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"^Chromium not found: apt-get install chromium") as skipped:
        require_chromium()
    assert "\n" not in str(skipped.value)
    monkeypatch.setenv("CI_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="CI_REQUIRE_BROWSER=1"):
        require_chromium()


def test_sample_examples_take_the_classes_in_turn_and_are_served_as_they_are(tmp_path):
    """The demo's thumbnails (no browser, no model): which samples, in which order, with which captions."""
    from gradio.utils import is_static_file

    from recaptcha_tf.serving.app import sample_examples

    folder = tmp_path / "samples"
    make_class_folders(str(folder / "tiles"), classes=("bus", "hydrant", "zebra"), per_class=3)
    os.remove(folder / "tiles" / "hydrant" / "0001.png")
    os.remove(folder / "tiles" / "hydrant" / "0002.png")
    (folder / "tiles" / "bus" / "notes.txt").write_text("not an image")
    picked = sample_examples(str(folder), text=False, class_names=("hydrant", "bus", "car"), count=6)
    assert [c for _, c in picked] == ["bus", "hydrant", "zebra", "bus", "zebra", "bus"]
    assert [os.path.basename(p) for p, _ in picked][:3] == ["1_0000.png", "2_0000.png", "3_0000.png"]
    copies = {os.path.dirname(p) for p, _ in picked}
    assert len(copies) == 1 and not copies & {str(folder)}  # copies in a folder of their own ...
    assert all(is_static_file(p) for p, _ in picked)  # ... that Gradio serves as is (no cache, never deleted)
    assert not is_static_file(str(folder / "tiles" / "bus" / "0000.png"))  # the originals are not exposed
    for (copy, _), original in zip(picked, ["bus/0000.png", "hydrant/0000.png", "zebra/0000.png"]):
        assert open(copy, "rb").read() == (folder / "tiles" / original).read_bytes()
    picked = sample_examples(str(folder), text=False, class_names=("Zebra",), count=3)  # the model's classes first
    assert [c for _, c in picked] == ["zebra", "bus", "hydrant"]

    # Another set of class folders (samples/digits/): a model of its classes gets it, any other model tiles/.
    make_class_folders(str(folder / "digits"), classes=("0", "1"), per_class=1)
    assert [c for _, c in sample_examples(str(folder), text=False, class_names=("1", "0", "7"))] == ["0", "1"]
    assert [c for _, c in sample_examples(str(folder), text=False, class_names=("car",), count=2)] == ["bus", "hydrant"]

    os.makedirs(folder / "text")
    for name in ("abc.png", "abc-1.png", "cab_x.png"):
        Image.new("RGB", (40, 16)).save(folder / "text" / name)
    assert [c for _, c in sample_examples(str(folder), text=True, count=2)] == ["abc", "abc"]  # abc-1, abc
    assert [c for _, c in sample_examples(str(folder), text=True)] == ["abc", "abc", "cab"]

    assert sample_examples(str(tmp_path / "absent"), text=False) == []
    assert sample_examples(None, text=True) == []
    assert sample_examples(str(folder), text=False, count=0) == []
    assert sample_examples(str(folder / "tiles"), text=False) == []  # not a samples folder: no tiles/ in it


# pytest-playwright's browser fixtures launch this Chromium rather than one `playwright install` downloads.
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": require_chromium()}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 1600}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _samples_folder(root) -> str:
    """A ``samples/`` folder laid out like the committed one: ``tiles/<class>/*.png`` and ``text/<label>.png``."""
    from recaptcha_tf.data.generator import generate_captchas

    folder = os.path.join(str(root), "samples")
    make_class_folders(os.path.join(folder, "tiles"), classes=CLASSES, per_class=2, seed=7)
    generate_captchas(os.path.join(folder, "text"), count=SAMPLES, length=3, charset=CHARS, size=(96, 32), seed=5)
    return folder


def _reading_text_model(run: str) -> None:
    """One epoch on 16 images leaves the CRNN reading every image as empty text (the CTC blank plateau); lower the
    blank's bias in its output layer so it reads characters the page can show (which ones depends on the image)."""
    from recaptcha_tf.inference.loading import load_model

    path = os.path.join(run, "model.keras")
    model = load_model(path)
    bias = [w for w in model.weights if w.path.endswith("bias") and tuple(w.shape) == (len(CHARS) + 1,)][-1]
    value = np.asarray(bias.numpy())
    value[0] -= 20.0  # index 0 is the CTC blank
    bias.assign(value)
    model.save(path)


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    """A tile demo and a text demo on 127.0.0.1, both showing sample thumbnails: their URLs, servers and files."""
    from recaptcha_tf.serving.app import build_app, launch

    require_chromium()  # before the training, which a skip would waste
    root = tmp_path_factory.mktemp("browser")
    samples = _samples_folder(root)
    tile_run, tiles = train_tiny_classifier(root / "tile")
    text_run, captchas = train_tiny_crnn(root / "text", count=16, charset=CHARS)
    _reading_text_model(text_run)

    files = {
        "tile": os.path.join(tiles, "hydrant", "0001.png"),
        "captcha": os.path.join(captchas, sorted(os.listdir(captchas))[0]),
        "wide": str(root / "wide.png"),  # 300x300 = 90,000 pixels > MAX_PIXELS, few bytes
        "notes": str(root / "notes.png"),  # not an image
    }
    Image.new("RGB", (300, 300), (10, 20, 30)).save(files["wide"])
    with open(files["notes"], "w") as f:
        f.write("a text file renamed to .png\n")

    out = {"files": files, "samples": samples}
    try:
        for kind, run in (("tile", tile_run), ("text", text_run)):
            demo = build_app(
                run, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS, examples=0, samples_dir=samples, samples=SAMPLES
            )
            port = _free_port()
            launch(demo, host="127.0.0.1", port=port, max_bytes=MAX_BYTES, block=False)
            out[kind] = {"url": f"http://127.0.0.1:{port}/", "demo": demo}
        yield out
    finally:
        for kind in ("tile", "text"):
            if kind in out:
                out[kind]["demo"].close()


def _upload(page, path: str, button: str) -> None:
    """Put ``path`` in the page's upload (clearing the one there) and press ``button``."""
    clear = page.get_by_role("button", name="Clear", exact=True)
    if clear.count():
        clear.first.click()
    page.locator("input[type=file]").first.set_input_files(path)
    page.get_by_role("button", name=button, exact=True).click()


def _thumbnails(page, captions: list[str]):
    """The sample gallery's thumbnails, checked: all loaded as pictures, with these captions in this order."""
    from playwright.sync_api import expect

    expect(page.get_by_text("sample images (click one)")).to_be_visible(timeout=TIMEOUT_MS)
    images = page.locator("#sample-images img")
    expect(images).to_have_count(len(captions), timeout=TIMEOUT_MS)
    for k in range(len(captions)):
        expect(images.nth(k)).to_have_js_property("complete", True)
        assert images.nth(k).evaluate("img => img.naturalWidth") > 0  # a picture, not a broken link
    assert page.locator("#sample-images .caption-label").all_inner_texts() == captions
    return images


@pytest.mark.slow
def test_demo_in_chromium(demos, page):
    """One test, so that a machine without Chromium reports one skip line."""
    _tile_demo(demos, page)
    _text_demo(demos, page)


def _tile_demo(demos, page):
    from playwright.sync_api import expect

    files, predictor = demos["files"], demos["tile"]["demo"].predictor
    page.goto(demos["tile"]["url"])
    # The classes in turn, the model's own first (all of them here): bus, hydrant, traffic_light, then bus again.
    images = _thumbnails(page, ["bus", "hydrant", "traffic_light", "bus"])

    prediction = page.get_by_label("prediction")
    _upload(page, files["tile"], "Classify")
    scores, summary = predictor.tile(files["tile"])
    top = max(scores, key=scores.get)
    expect(prediction).to_have_value(summary, timeout=TIMEOUT_MS)
    assert summary.startswith(top)
    expect(page.get_by_test_id("label-output-value")).to_have_text(top)  # gr.Label's heading: the top class

    # Refused: over the pixel limit, then not an image. The message shows, not a traceback.
    _upload(page, files["wide"], "Classify")
    expect(page.get_by_text("300x300 = 90,000 pixels; the limit is 65,536 pixels")).to_be_visible(timeout=TIMEOUT_MS)
    _upload(page, files["notes"], "Classify")
    expect(page.get_by_text("This file is not an image (PNG, JPEG, BMP or GIF).")).to_be_visible(timeout=TIMEOUT_MS)
    assert "Traceback" not in page.content()

    # On a fresh page, a click on the second thumbnail (the first hydrant sample) puts it in the upload and
    # classifies it.
    page.reload()
    images = _thumbnails(page, ["bus", "hydrant", "traffic_light", "bus"])
    expect(prediction).to_have_value("")
    images.nth(1).click()
    _, sample_summary = predictor.tile(os.path.join(demos["samples"], "tiles", "hydrant", "0000.png"))
    expect(prediction).to_have_value(sample_summary, timeout=TIMEOUT_MS)
    expect(page.get_by_role("cell", name="2_0000.png")).to_be_visible()  # the sample's copy is now the upload


def _text_demo(demos, page):
    from playwright.sync_api import expect

    files, predictor = demos["files"], demos["text"]["demo"].predictor
    expected, rows = predictor.text(files["captcha"])
    assert expected and set(expected) <= set(CHARS)  # the model reads characters the page will show
    page.goto(demos["text"]["url"])
    labels = [os.path.splitext(n)[0] for n in sorted(os.listdir(os.path.join(demos["samples"], "text")))]
    _thumbnails(page, labels)  # captioned with their text

    text = page.get_by_label("text", exact=True)
    _upload(page, files["captcha"], "Read")
    expect(text).to_have_value(expected, timeout=TIMEOUT_MS)
    table = page.locator("table").filter(has_text="confidence").first  # the per-character confidences
    for character, confidence in rows:
        expect(table).to_contain_text(character)
        expect(table).to_contain_text(f"{confidence:g}")

    _upload(page, files["wide"], "Read")
    expect(page.get_by_text("300x300 = 90,000 pixels; the limit is 65,536 pixels")).to_be_visible(timeout=TIMEOUT_MS)
