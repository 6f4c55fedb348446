"""Gradio demo for a trained model: ``recaptcha-tf serve --model M [--port 7860] [--host 127.0.0.1]``.

The model's kind picks the interface:

* classifiers (``softmax`` / ``sigmoid``): **Tile** (top-k classes; multi-label
  models also list every label over the threshold) and **Grid challenge** (one
  image holding 3x3 or 4x4 tiles plus a target class: which cells the model
  picks, as an overlay and a list);
* text models (``ctc`` / ``multihead``): **Text CAPTCHA** (text and per-character
  confidence).

Every upload is checked before TensorFlow sees it (:func:`read_upload`): its
size in bytes, then its header with Pillow (format, and width x height against
the pixel limit, which stops decompression bombs before any decoding), then a
full Pillow decode. Problems are shown as a one-line message (``gr.Error``),
never a traceback. Every upload is deleted from Gradio's cache once its request
is answered, accepted or refused, once no other request reads the same cached file
(:class:`~recaptcha_tf.serving.uploads.UploadOwners`); ``delete_cache`` removes anything older than ten minutes and
the whole cache at shutdown.

API endpoints (for ``gradio_client``): ``/predict_tile``, ``/select_cells``
(classifiers) and ``/predict_text`` (text models). Plain HTTP on the same
server: ``POST /api/v1/predict`` with the raw image bytes as body -> JSON.

Speed: one compiled predictor (:class:`recaptcha_tf.inference.Inference`),
uploads checked and decoded in parallel, concurrent requests grouped into one
model call (:class:`recaptcha_tf.serving.batching.MicroBatcher`). ``--runtime onnx`` or
``tflite`` serves the exported artifact instead of the Keras model.
"""

from __future__ import annotations

import collections
import contextlib
import hmac
import io
import logging
import os
import signal
import time
import warnings

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from recaptcha_tf.evaluation.challenge import pick_cells, split_grid
from recaptcha_tf.inference.abstention import background_index, grid_rule
from recaptcha_tf.serving.budget import PixelBudget, ServerBusy
from recaptcha_tf.serving.examples import (
    _on_sample,
    _sample_gallery,
    default_samples_folder,
    held_out_examples,
    sample_examples,
)
from recaptcha_tf.serving.http import API_ROUTE, add_http_route
from recaptcha_tf.serving.overlay import draw_overlay
from recaptcha_tf.serving.uploads import UploadError, UploadOwners, _mb
from recaptcha_tf.serving.uploads import discard_uploads as discard_uploads  # its home before 0.2.0

log = logging.getLogger("recaptcha_tf")

DEFAULT_MAX_BYTES = 5_000_000
DEFAULT_MAX_PIXELS = 4096 * 4096
# Decoded pixels in flight across all requests (serving/budget.py): two of the largest uploads at once.
DEFAULT_DECODE_BUDGET = 2 * DEFAULT_MAX_PIXELS
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF")
GRID_SHAPES = {"3x3": (3, 3), "4x4": (4, 4)}
CACHE_FREQUENCY, CACHE_AGE = 60, 600  # seconds (gr.Blocks(delete_cache=...))


class ServeError(ValueError):
    """The server cannot start (the port is taken, the host cannot be bound)."""


def check_upload(upload, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS):
    """The bytes of an upload (path or bytes) and its pixels, checked from the header without decoding.

    Returns:
        ``(data, format, width * height)``.

    Raises:
        UploadError: no file, too many bytes, not a PNG/JPEG/BMP/GIF image, or too many pixels.
    """
    from PIL import Image

    if upload is None:
        raise UploadError("Upload an image first.")
    if isinstance(upload, (bytes, bytearray)):
        data = bytes(upload)
    else:
        path = str(upload)
        try:
            size = os.path.getsize(path)
        except OSError as err:
            raise UploadError("The upload could not be read.") from err
        if size > max_bytes:
            raise UploadError(f"The file is {_mb(size)}; the limit is {_mb(max_bytes)}.")
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UploadError(f"The file is {_mb(len(data))}; the limit is {_mb(max_bytes)}.")
    if not data:
        raise UploadError("The file is empty.")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as im:
                fmt, (width, height) = im.format, im.size
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise UploadError(f"Refused: the image declares too many pixels ({err}).") from err
        except Exception as err:  # PIL raises many types for junk input
            raise UploadError("This file is not an image (PNG, JPEG, BMP or GIF).") from err
    if fmt not in IMAGE_FORMATS:
        raise UploadError(f"{fmt} images are not supported; upload a PNG, JPEG, BMP or GIF.")
    if width * height > max_pixels:
        raise UploadError(
            f"The image is {width}x{height} = {width * height:,} pixels; the limit is {max_pixels:,} pixels."
        )
    return data, fmt, width * height


def verify_decodes(data: bytes, fmt: str) -> None:
    """A full Pillow decode: :class:`UploadError` for a damaged or truncated file."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except Exception as err:
        raise UploadError(f"This {fmt} file is damaged or truncated and cannot be decoded.") from err


def read_upload(upload, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """Validate an uploaded file (path or bytes) and return its bytes: :func:`check_upload`, then a full decode.

    Raises:
        UploadError: no file, too many bytes, not a PNG/JPEG/BMP/GIF image,
            too many pixels (checked from the header, before decoding), or a
            file that does not decode completely.
    """
    data, fmt, _ = check_upload(upload, max_bytes, max_pixels)
    verify_decodes(data, fmt)
    return data


def _decode(data: bytes, channels: int) -> np.ndarray:
    from recaptcha_tf.data.images import CorruptImageError, load_image_array

    try:  # read_upload has checked the pixels against the serve limit already
        return load_image_array(data, channels, max_pixels=0)
    except CorruptImageError as err:
        raise UploadError("The image could not be decoded.") from err


class Predictor:
    """The loaded model and the functions behind the demo (usable without Gradio).

    One :class:`recaptcha_tf.inference.Inference` (compiled once) and one
    :class:`recaptcha_tf.serving.batching.MicroBatcher` serve every request: uploads are
    checked and decoded in the request's own thread, in parallel, and the model
    runs on micro-batches of concurrent requests. There is no global lock.

    Args:
        model_path: run folder or ``.keras`` file; with ``runtime`` ``onnx`` or
            ``tflite`` also the exported artifact itself (default ``RUN/export/model.*``).
        runtime: ``keras`` (the compiled Keras model), ``onnx`` or ``tflite``
            (the exported artifact through its runner; no Keras model is loaded).
        max_batch_size: most images per model call.
        batch_wait_ms: how long a request waits for others to join its batch.

    Attributes:
        timings: server-side milliseconds of the last requests, as dicts with
            ``checks`` (upload checks), ``decode`` (decode and resize),
            ``model`` (waiting for and running the batch) and ``total``.
    """

    def __init__(
        self,
        model_path: str,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        runtime: str = "keras",
        max_batch_size: int = 32,
        batch_wait_ms: float = 2.0,
        inference=None,
        decode_budget: int = DEFAULT_DECODE_BUDGET,
        budget_wait_s: float = 30.0,
    ):
        from recaptcha_tf.inference.predictor import load_inference
        from recaptcha_tf.serving.batching import MicroBatcher

        self.inference = inference or load_inference(model_path, runtime)
        self.info = self.inference.info
        self.runtime = self.inference.runtime
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.batcher = MicroBatcher(self.inference.run, max_batch_size, batch_wait_ms)
        self.budget = PixelBudget(decode_budget, budget_wait_s)
        self.timings: collections.deque = collections.deque(maxlen=100_000)
        self._warm_up()

    def _warm_up(self) -> None:
        """Trace the decoder and run the model once now, so the first visitor does not wait for it."""
        from PIL import Image

        buffer = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buffer, format="PNG")
        self.batcher.submit(self.inference.preprocess(buffer.getvalue())[None])
        self.batcher.history.clear()

    @property
    def is_text(self) -> bool:
        from recaptcha_tf.models.registry import is_sequence_head

        return is_sequence_head(self.info.kind)

    @contextlib.contextmanager
    def _decoding(self, upload):
        """The checked bytes of ``upload``, with its pixels reserved in the server's decode budget for the block
        (the full decode and the resize happen inside it); :class:`ServerBusy` when no room frees up in time."""
        data, fmt, pixels = check_upload(upload, self.max_bytes, self.max_pixels)
        with self.budget.reserve(pixels):
            verify_decodes(data, fmt)
            yield data

    def _preprocess(self, data: bytes) -> np.ndarray:
        from recaptcha_tf.data.images import CorruptImageError

        try:
            return self.inference.preprocess(data)
        except CorruptImageError as err:
            raise UploadError("The image could not be decoded.") from err

    def predict_upload(self, upload, top_k: int = 5) -> dict:
        """Checks, decoding and a micro-batched prediction for one upload.

        Returns the dict of :func:`~recaptcha_tf.inference.predict` with the model's stored ``--min-confidence``
        applied, as ``recaptcha-tf predict`` answers (:func:`~recaptcha_tf.inference.abstention.apply_min_confidence`:
        ``abstained`` for classifiers, ``text_confidence`` and ``accepted`` for text).
        """
        from recaptcha_tf.inference.abstention import abstention_top_k, apply_min_confidence
        from recaptcha_tf.inference.predictor import format_predictions

        start = time.perf_counter()
        with self._decoding(upload) as data:
            checked = time.perf_counter()
            image = self._preprocess(data)
            decoded = time.perf_counter()
        outputs = self.batcher.submit(image[None])
        done = time.perf_counter()
        self.timings.append(
            {
                "checks": 1000 * (checked - start),
                "decode": 1000 * (decoded - checked),
                "model": 1000 * (done - decoded),
                "total": 1000 * (done - start),
            }
        )
        threshold = self.info.min_confidence
        results = format_predictions(outputs, self.info, abstention_top_k(top_k, threshold))
        return apply_min_confidence(results, threshold, self.info.names, top_k)[0]

    def tile(self, upload, top_k: int = 5) -> tuple[dict, str]:
        """``({class: probability} for the top k, a one-line summary)``."""
        if self.is_text:
            raise UploadError("This is a text CAPTCHA model; use the text tab.")
        result = self.predict_upload(upload, top_k)
        label = {name: float(p) for name, p in result["top_k"]}
        if self.info.kind == "sigmoid":
            labels = result["labels"]
            summary = (
                (f"labels over {self.info.threshold:g}: " + ", ".join(labels))
                if labels
                else f"no label over the threshold {self.info.threshold:g}"
            )
        elif result.get("abstained"):
            summary = f"{result['label']} (no object class reached the model's --min-confidence)"
        else:
            summary = f"{result['label']} ({result['confidence']:.3f})"
        return label, summary

    def text(self, upload) -> tuple[str, list[list]]:
        """``(text, [[character, confidence], ...])``."""
        if not self.is_text:
            raise UploadError("This is an image-tile classifier; use the tile or grid tab.")
        result = self.predict_upload(upload)
        return result["text"], [[c, round(float(p), 4)] for c, p in zip(result["text"], result["confidence"])]

    def cell_probabilities(self, cells: list[np.ndarray], flip: bool = False) -> np.ndarray:
        """Model probabilities ``(cells, classes)`` for image arrays, resized exactly as the tf.data pipeline does;
        ``flip`` averages each cell's with its mirror image's (``tta="flip"``), in one batch of ``2 * cells``."""
        batch = np.stack([self.inference.preprocess_array(cell) for cell in cells])
        if not flip:
            return np.asarray(self.batcher.submit(batch))
        both = np.asarray(self.batcher.submit(np.concatenate([batch, np.ascontiguousarray(batch[:, :, ::-1])])))
        return (both[: len(batch)] + both[len(batch) :]) / 2

    def grid(self, upload, target: str, shape: str = "3x3", flip: bool = True) -> tuple[np.ndarray, str, list[int]]:
        """``(overlay image, summary, picked cells numbered from 1, row-major)``. ``flip`` (the default) averages
        each cell's probabilities with its mirror image's: the shipped tile model solves 0.69 of 3x3 test
        challenges so, against 0.67 from one pass (docs/shipped-models.md)."""
        if self.is_text:
            raise UploadError("This is a text CAPTCHA model; grid challenges need a tile classifier.")
        if target not in self.info.names:
            raise UploadError(f"Pick a target class from: {', '.join(self.info.names)}.")
        if shape not in GRID_SHAPES:
            raise UploadError(f"Pick a grid shape: {', '.join(GRID_SHAPES)}.")
        rows, cols = GRID_SHAPES[shape]
        with self._decoding(upload) as data:
            rgb = _decode(data, 3)
            if rgb.shape[0] < 4 * rows or rgb.shape[1] < 4 * cols:
                raise UploadError(f"The image is {rgb.shape[1]}x{rgb.shape[0]} pixels: too small for a {shape} grid.")
            pixels = rgb if self.info.channels == 3 else _decode(data, self.info.channels)
            flip = bool(flip) and self.info.task == "tiles"  # a mirrored glyph is another label
            probs = self.cell_probabilities(split_grid(pixels, rows, cols), flip=flip)
            threshold, min_confidence, rule = grid_rule(self.info)
            picked = pick_cells(
                probs, self.info.names.index(target), threshold, min_confidence, background_index(self.info.names)
            )
            overlay = draw_overlay(rgb, rows, cols, picked)  # the full-size image is drawn on within the budget
        numbers = [i + 1 for i in picked]
        summary = (
            f"{target}: cells {', '.join(map(str, numbers))}" if numbers else f"{target}: no cell"
        ) + f" of {rows * cols} (row-major from 1, top-left; picked by {rule}{', flip TTA' if flip else ''})"
        return overlay, summary, numbers

    def close(self) -> None:
        self.batcher.close()


def _user_errors(fn, owners: UploadOwners):
    """Turn refused uploads into ``gr.Error`` messages and unexpected failures into a generic one; the request
    holds its uploads while it runs and releases them either way (:class:`~.uploads.UploadOwners` deletes each
    file once no request reads it)."""
    import functools

    import gradio as gr

    @functools.wraps(fn)
    def wrapper(*args):
        held = owners.hold(args)
        try:
            return fn(*args)
        except (UploadError, ServerBusy) as err:
            raise gr.Error(str(err), print_exception=False) from None
        except Exception:
            log.exception("serve: failed on an upload")
            raise gr.Error("The model could not process this image.", print_exception=False) from None
        finally:
            owners.release(held)

    return wrapper


def build_app(
    model_path: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    predictor: Predictor | None = None,
    runtime: str = "keras",
    concurrency: int = 32,
    examples: int = 6,
    upload_grace_s: float = 30.0,
    samples_dir: str | None = None,
    samples: int = 8,
):
    """The ``gr.Blocks`` demo for the model at ``model_path`` (run folder or ``.keras`` file).

    ``concurrency`` requests run at once (each checks and decodes its upload,
    then joins a micro-batch); ``examples`` held-out images are shown under the
    upload (``0`` for none), and ``samples`` committed sample images as thumbnails
    (:func:`sample_examples`; from ``samples_dir``, by default the checkout's
    ``samples/`` where there is one; ``0`` for none).
    """
    import gradio as gr

    p = predictor or Predictor(model_path, max_bytes, max_pixels, runtime=runtime)
    info = p.info
    owners = UploadOwners(upload_grace_s)
    shown = held_out_examples(model_path, examples) if examples else []
    thumbnails = sample_examples(samples_dir or default_samples_folder(), p.is_text, info.names, samples)
    limits = f"PNG, JPEG, BMP or GIF; at most {_mb(max_bytes)} and {max_pixels:,} pixels."
    # Backstop for uploads no request ever used (and for outputs): Gradio deletes cached files older than
    # CACHE_AGE seconds every CACHE_FREQUENCY seconds, and the whole cache when the server stops.
    with gr.Blocks(title="recaptcha_tf demo", delete_cache=(CACHE_FREQUENCY, CACHE_AGE)) as demo:
        gr.Markdown(
            f"## recaptcha_tf: `{os.path.basename(os.path.abspath(model_path))}`\n"
            f"{info.task} model, {info.kind} output, {len(info.names)} "
            f"{'characters' if p.is_text else 'classes'}, input {info.image_size[0]}x{info.image_size[1]}"
            f"x{info.channels} ({info.resize}), runtime {p.runtime}. Uploads: {limits}"
        )
        if p.is_text:
            with gr.Tab("Text CAPTCHA"):
                upload = gr.File(label="text CAPTCHA image", file_types=["image"], type="filepath")
                gallery = _sample_gallery(thumbnails)
                if shown:
                    gr.Examples([[f] for f in shown], inputs=[upload], label="held-out examples (click one)")
                button = gr.Button("Read", variant="primary")
                text = gr.Textbox(label="text")
                conf = gr.Dataframe(headers=["character", "confidence"], label="per-character confidence")
                read = _user_errors(lambda f: p.text(f), owners)
                button.click(read, [upload], [text, conf], api_name="predict_text")
                _on_sample(gallery, thumbnails, upload, [text, conf], read)
        else:
            with gr.Tab("Tile"):
                upload = gr.File(label="tile image", file_types=["image"], type="filepath")
                gallery = _sample_gallery(thumbnails)
                if shown:
                    gr.Examples([[f] for f in shown], inputs=[upload], label="held-out examples (click one)")
                button = gr.Button("Classify", variant="primary")
                label = gr.Label(label="top classes", num_top_classes=5)
                summary = gr.Textbox(label="prediction")
                classify = _user_errors(lambda f: p.tile(f), owners)
                button.click(classify, [upload], [label, summary], api_name="predict_tile")
                _on_sample(gallery, thumbnails, upload, [label, summary], classify)
            with gr.Tab("Grid challenge"):
                grid_upload = gr.File(label="grid image (rows x cols tiles)", file_types=["image"], type="filepath")
                with gr.Row():
                    target = gr.Dropdown(choices=list(info.names), value=info.names[0], label="select every")
                    shape = gr.Radio(choices=list(GRID_SHAPES), value="3x3", label="grid")
                    tiles = info.task == "tiles"  # a mirrored glyph is another label
                    flip = gr.Checkbox(value=tiles, visible=tiles, label="average with mirror images (flip TTA)")
                grid_button = gr.Button("Solve", variant="primary")
                overlay = gr.Image(label="picked cells", type="numpy", format="png")
                grid_summary = gr.Textbox(label="cells")
                cells = gr.JSON(label="picked cells (numbered from 1, row-major)")
                grid_button.click(
                    _user_errors(lambda f, t, s, m: p.grid(f, t, s, m), owners),
                    [grid_upload, target, shape, flip],
                    [overlay, grid_summary, cells],
                    api_name="select_cells",
                )
    demo.queue(default_concurrency_limit=concurrency)
    demo.predictor = p
    demo.upload_owners = owners
    return demo


def launch(
    demo,
    host: str = "127.0.0.1",
    port: int = 7860,
    max_bytes: int = DEFAULT_MAX_BYTES,
    block: bool = True,
    http_route: bool = True,
    api_key: str | None = None,
):
    """Start the server; with ``block=False`` it runs in a background thread (tests, benchmarks).

    With ``http_route`` the plain ``POST /api/v1/predict`` route (:func:`add_http_route`)
    is mounted on Gradio's FastAPI app, next to the demo. With ``api_key`` the demo asks for it at a login page
    (any user name) and the HTTP route in a header.
    """
    # Gradio's own limit is a backstop above ours, so the user sees our clearer message first.
    result = demo.launch(
        server_name=host,
        server_port=port,
        prevent_thread_lock=True,
        quiet=not block,
        share=False,
        max_file_size=max(2 * max_bytes, max_bytes + 1_000_000),
        show_error=True,
        ssr_mode=False,
        auth=None if api_key is None else (lambda _user, password: hmac.compare_digest(password, api_key)),
        # Gradio's own start-up check gives up after one 3 s request, which a loaded machine can miss, and then
        # refuses to serve ("localhost is not accessible"); the server is up when launch returns, and
        # wait_until_answering checks it patiently instead.
        _frontend=False,
    )
    wait_until_answering(demo.local_url)
    if http_route and getattr(demo, "predictor", None) is not None:
        add_http_route(demo.app, demo.predictor, api_key=api_key)
    if block:
        demo.block_thread()
    return result


def wait_until_answering(url: str | None, seconds: float = 60.0) -> bool:
    """Poll ``url`` until it answers (any HTTP status) or ``seconds`` pass; a warning when it never does."""
    import urllib.error
    import urllib.request

    if not url:
        return False
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=10).close()
            return True
        except urllib.error.HTTPError:
            return True  # it answers (a login page, a redirect): it is up
        except (OSError, ValueError):
            time.sleep(0.5)
    log.warning("serve: %s did not answer within %.0f s", url, seconds)
    return False


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine (``127.0.0.1``, ``::1``, ``localhost``)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    model_path: str,
    host: str = "127.0.0.1",
    port: int = 7860,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    runtime: str = "keras",
    max_batch_size: int = 32,
    batch_wait_ms: float = 2.0,
    decode_budget: int = DEFAULT_DECODE_BUDGET,
    api_key: str | None = None,
    samples_dir: str | None = None,
    samples: int = 8,
) -> None:
    """The ``serve`` command: build the demo and serve it until interrupted."""
    start = time.perf_counter()
    predictor = Predictor(
        model_path,
        max_bytes,
        max_pixels,
        runtime=runtime,
        max_batch_size=max_batch_size,
        batch_wait_ms=batch_wait_ms,
        decode_budget=decode_budget,
    )
    demo = build_app(
        model_path,
        max_bytes=max_bytes,
        max_pixels=max_pixels,
        predictor=predictor,
        samples_dir=samples_dir,
        samples=samples,
    )
    if not is_loopback(host):
        if api_key is None:
            print(
                f"warning: {host} is reachable from other machines and the demo and {API_ROUTE} have no "
                "authentication; pass --api-key to require one"
            )
        else:
            print(f"API key required: the demo asks for it at login, {API_ROUTE} in 'Authorization: Bearer KEY'")
    print(
        f"serving {model_path} ({predictor.runtime}, model ready in {time.perf_counter() - start:.1f} s) on "
        f"http://{host}:{port}  (plain HTTP: POST raw image bytes to {API_ROUTE}; Ctrl+C to stop)"
    )
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop: shut down as on Ctrl+C
    try:
        launch(demo, host, port, max_bytes, block=True, api_key=api_key)
    except KeyboardInterrupt:  # Ctrl+C or SIGTERM before Gradio's own loop catches it (still starting): a stop
        pass
    except OSError as err:  # Gradio: "Cannot find empty port in range ..."
        raise ServeError(f"Cannot listen on {host}:{port}: {' '.join(str(err).split())}") from err
    finally:
        signal.signal(signal.SIGTERM, previous)
        shut_down(demo)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def shut_down(demo) -> None:
    """Close the server and leave no upload behind: waiting deletions run now, and the empty files of uploads cut
    off mid-transfer are removed from Gradio's cache."""
    from recaptcha_tf.serving.uploads import remove_partial_uploads

    owners = getattr(demo, "upload_owners", None)
    if owners is not None:
        owners.close()
    if hasattr(demo, "close"):
        demo.close()
    removed = remove_partial_uploads()
    if removed:
        log.info("serve: removed %d partial upload(s) from Gradio's cache", removed)
