"""The plain HTTP routes beside the page: POST /v1/depth (multipart upload) and GET /v1/health, optional basic auth."""

from __future__ import annotations

import base64
import binascii
import json
import secrets

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from depth_anything_ros.server.service import DepthService
from depth_anything_ros.server.uploads import RequestError

FORMATS = {"tiff": ("depth", "image/tiff", "_depth.tiff"), "npy": ("depth", "application/octet-stream", "_depth.npy"),
           "png16": ("depth_mm", "image/png", "_depth_mm.png"), "ply": ("ply", "application/octet-stream", ".ply"),
           "json": (None, "application/json", ".json")}


def _error(status: int, message: str, **headers) -> JSONResponse:
    """Return {"error": message} with an HTTP status."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _authorised(request: Request, auth: tuple[str, str] | None) -> bool:
    """Whether the request carries the server's basic-auth user and password (always, without --auth)."""
    if auth is None:
        return True
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return scheme.lower() == "basic" and secrets.compare_digest(f"{user}:{password}", ":".join(auth))


def add_routes(app: FastAPI, service: DepthService, auth: tuple[str, str] | None, max_upload: int) -> None:
    """Add /v1/depth and /v1/health to the app (before the page is mounted at /, so they match first)."""

    @app.middleware("http")
    async def basic_auth(request: Request, call_next):
        if request.url.path.startswith("/v1/") and not _authorised(request, auth):
            return _error(401, "authentication required (serve --auth): send HTTP basic credentials",
                          **{"WWW-Authenticate": 'Basic realm="depth-anything-ros"'})
        return await call_next(request)

    @app.get("/v1/health")
    async def health() -> dict:
        return {"status": "ok", "model": service.model, "queue": {"admitted": service.admitted,
                                                                  "capacity": service.queue_size},
                "served": service.served, "max_pixels": service.max_pixels, "max_upload_bytes": max_upload}

    @app.post("/v1/depth")
    async def depth(request: Request) -> Response:
        length = request.headers.get("content-length")
        if length is None or not length.isdigit():
            return _error(411, "send the upload with a Content-Length (curl -F image=@frame.png URL does)")
        if int(length) > max_upload:
            return _error(413, f"upload of {int(length):,} bytes is over the server's limit of {max_upload:,} "
                               "bytes (serve --max-upload-mb)")
        params = dict(request.query_params)
        depth_format = params.pop("format", "tiff")
        if depth_format not in FORMATS:
            return _error(400, f"unknown format {depth_format!r}; one of {', '.join(FORMATS)}")
        try:
            form = await request.form(max_files=1, max_fields=len(FORMATS) + 16)
        except Exception as exc:  # noqa: BLE001 - any malformed multipart body is the client's error
            return _error(400, f"the body is not a multipart form with the field 'image': {exc}")
        try:
            upload = form.get("image")
            if upload is None or isinstance(upload, str):
                return _error(400, "no image: send the image file as the multipart field 'image' "
                                   "(curl -F image=@frame.png URL)")
            params.update({key: value for key, value in form.items() if key != "image"})
            data = await upload.read()
            stem = upload.filename or "image"
        finally:
            await form.close()
        try:
            outcome = await run_in_threadpool(service.run, data, params)
        except RequestError as exc:
            headers = {"Retry-After": "1"} if exc.status == 503 else {}
            return _error(exc.status, str(exc), **headers)
        if depth_format == "json":
            return JSONResponse(outcome.summary)
        key, media, suffix = FORMATS[depth_format]
        files = await run_in_threadpool(outcome.files, (key,), "npy" if depth_format == "npy" else "tiff")
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem.rsplit(".", 1)[0])[:64] or "image"
        summary = outcome.summary["depth_m"]
        return Response(files[key], media_type=media, headers={
            "Content-Disposition": f'attachment; filename="{name}{suffix}"',
            "X-Depth-Range-M": json.dumps([summary["min"], summary["max"]])})
