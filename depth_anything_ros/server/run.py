"""`serve`: load the model once, put the page and the plain routes on one FastAPI app, run it until interrupted."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from depth_anything_ros.cli_options import PROG, CommandError, banner, frame_options, make_estimator
from depth_anything_ros.models.variants import CHECKPOINTS


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """Return (user, password) of --auth USER:PASS, None without it; CommandError when malformed."""
    if text is None:
        return None
    user, colon, password = text.partition(":")
    if not (colon and user and password):
        raise CommandError("--auth must be USER:PASS with a non-empty user and password")
    return user, password


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def licence(checkpoint: str, synthetic: bool) -> str:
    """Return the licence of the weights as the page states it."""
    if synthetic:
        return "none (synthetic random weights)"
    spec = CHECKPOINTS.get(checkpoint)
    return spec.licence if spec is not None else "that of your checkpoint file (not a known variant)"


def serve(args: argparse.Namespace) -> int:
    """Serve until interrupted; the temporary folder of uploads and outputs is removed at exit."""
    auth = parse_auth(args.auth)
    options = replace(frame_options(args), cloud_organized=False)  # as estimate: the PLY holds valid points only
    estimator = make_estimator(args)
    with tempfile.TemporaryDirectory(prefix="depth-anything-serve-") as folder:
        os.environ["GRADIO_TEMP_DIR"] = str(Path(folder) / "gradio")  # read when gradio is imported, below
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        tempfile.tempdir = folder  # multipart uploads of /v1/depth spool here too
        try:
            return _serve(args, auth, options, estimator, Path(folder))
        finally:
            tempfile.tempdir = None


def _serve(args: argparse.Namespace, auth: tuple[str, str] | None, options, estimator, folder: Path) -> int:
    """Build the app around the loaded model and run it."""
    import gradio as gr
    import uvicorn
    from fastapi import FastAPI

    from depth_anything_ros.frame.pipeline import FramePipeline
    from depth_anything_ros.frame.provenance import model_provenance
    from depth_anything_ros.server import http, page
    from depth_anything_ros.server.service import DepthService

    model = model_provenance(estimator, args.checkpoint)
    model["file"] = model.pop("path")  # gradio_client would take a JSON object with a "path" for a file to fetch
    model["licence"] = licence(args.checkpoint, model["synthetic"])
    service = DepthService(FramePipeline(estimator), options, model, args.max_pixels, args.queue_size)
    max_upload = int(args.max_upload_mb * 1024 * 1024)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    http.add_routes(app, service, auth, max_upload)
    outputs = Path(os.environ["GRADIO_TEMP_DIR"]) / "outputs"
    blocks = page.build(service, outputs).queue(default_concurrency_limit=1, max_size=args.queue_size)
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace",
                                                                                             "monospace"])
    gr.mount_gradio_app(app, blocks, path="/", auth=auth, max_file_size=max_upload, allowed_paths=[str(outputs)],
                        theme=theme, ssr_mode=False, show_error=True)
    url = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{args.port}/"
    if not is_loopback(args.host):
        print(banner(f"serving on {args.host}, beyond this machine: whoever reaches port {args.port} can upload "
                     "images and run the model" + ("" if auth else "; add --auth USER:PASS to require a login")
                     + " (the default --host 127.0.0.1 keeps it on this machine)"), file=sys.stderr)
    print(f"{PROG} serve: {model['checkpoint']} on {url} (page; gradio_client APIs /on_submit and /estimate; "
          f"POST {url}v1/depth; GET {url}v1/health); uploads and outputs in {folder}, removed at exit; Ctrl-C stops",
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
