"""The `serve` subcommand's parser; gradio, torch and the model load in its handler only."""

from __future__ import annotations

import argparse

from depth_anything_ros import cli_options
from depth_anything_ros.cli_options import number

DEFAULT_PORT = 7860  # the official demo's (Gradio's default)
DEFAULT_MAX_PIXELS = 40_000_000  # an image larger than this is refused from its header, before it is decoded
DEFAULT_MAX_UPLOAD_MB = 50
DEFAULT_QUEUE = 8  # requests admitted at once (one runs, the others wait); more are answered "busy"


def register(subparsers) -> None:
    """Add the `serve` subcommand."""
    p = subparsers.add_parser(
        "serve", help="metric depth as a web page and an HTTP API (Gradio; a drop-in for the official demo's client)",
        description="Serve one model in one process: a web page (upload an image, see the image beside its metric "
                    "depth, download TIFF / 16-bit mm PNG / PLY / preview), the Gradio APIs /on_submit (the "
                    "official Depth-Anything-V2 demo's signature; its 16-bit PNG holds millimetres here) and "
                    "/estimate for gradio_client, POST /v1/depth (multipart field 'image'; ?format=tiff|npy|png16|"
                    "ply|json) and GET /v1/health. Frames go through the same pipeline as estimate: the same image "
                    "and options give the same depth. Needs the serve extra (pip install .[serve]).")
    cli_options.add_model_options(p, batch=False)
    cli_options.add_frame_options(p, cloud_layout=False)
    net = p.add_argument_group("server")
    net.add_argument("--host", default="127.0.0.1",
                     help="address to bind (default 127.0.0.1, this machine only); another address, e.g. 0.0.0.0, "
                          "lets other machines use the model and is announced at start")
    net.add_argument("--port", type=number(int, 1, 65535), default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    net.add_argument("--auth", metavar="USER:PASS",
                     help="require this user and password on the page, the Gradio APIs and /v1 (HTTP basic)")
    net.add_argument("--queue-size", type=number(int, 1, 1024), default=DEFAULT_QUEUE, metavar="N",
                     help=f"requests admitted at once, running or waiting (default {DEFAULT_QUEUE}); beyond that a "
                          "request is answered busy (HTTP 503) at once")
    net.add_argument("--max-pixels", type=number(int, 4), default=DEFAULT_MAX_PIXELS, metavar="N",
                     help=f"largest image in pixels, checked from the file header before decoding (default "
                          f"{DEFAULT_MAX_PIXELS:,})")
    net.add_argument("--max-upload-mb", type=number(float, 0.001, 4096.0), default=DEFAULT_MAX_UPLOAD_MB,
                     metavar="MB", help=f"largest upload in MB (default {DEFAULT_MAX_UPLOAD_MB})")
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Run `serve` (gradio, torch and the model load here, not for every subcommand)."""
    from depth_anything_ros.server import run

    return run.serve(args)
