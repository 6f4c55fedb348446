"""The plain HTTP route beside the Gradio demo: ``POST /api/v1/predict`` with the raw image bytes -> JSON."""

from __future__ import annotations

import hmac
import logging

from recaptcha_tf.serving.budget import ServerBusy
from recaptcha_tf.serving.uploads import UploadError, _mb

log = logging.getLogger("recaptcha_tf")


API_ROUTE = "/api/v1/predict"


def add_http_route(app, predictor, path: str = API_ROUTE, api_key: str | None = None) -> None:
    """``POST path`` with the raw image bytes as body -> JSON, on a FastAPI app (Gradio's own).

    The same upload checks as the demo (:func:`recaptcha_tf.serving.app.read_upload`), the same
    micro-batches. ``200``: the dict of :func:`recaptcha_tf.inference.predict`;
    ``400`` / ``413``: ``{"error": message}`` for a refused upload; ``500``:
    ``{"error": "The model could not process this image."}``; ``503`` when the decode budget stays full
    (:class:`~.budget.ServerBusy`). With ``api_key``, a request without ``Authorization: Bearer KEY`` (or
    ``X-API-Key: KEY``) gets ``401``.
    """
    from fastapi import Request
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    limit = predictor.max_bytes

    def too_big(size: int | None) -> JSONResponse:
        said = f"The file is {_mb(size)}" if size else "The file is larger than the limit"
        return JSONResponse({"error": f"{said}; the limit is {_mb(limit)}."}, status_code=413)

    async def predict_route(request: Request):
        if api_key is not None:
            given = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(given.encode(), api_key.encode()):
                return JSONResponse({"error": "A valid API key is required (Authorization: Bearer KEY)."}, 401)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return too_big(int(declared))
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return too_big(None)
        try:
            result = await run_in_threadpool(predictor.predict_upload, bytes(body))
        except UploadError as err:
            return JSONResponse({"error": str(err)}, status_code=400)
        except ServerBusy as err:
            return JSONResponse({"error": str(err)}, status_code=503, headers={"Retry-After": "1"})
        except Exception:
            log.exception("serve: %s failed on an upload", path)
            return JSONResponse({"error": "The model could not process this image."}, status_code=500)
        return JSONResponse(result)

    predict_route.__annotations__["request"] = Request  # a real class: this module's annotations are strings
    app.add_api_route(path, predict_route, methods=["POST"], name="predict_image_bytes")
