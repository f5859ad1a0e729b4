"""One model behind a bounded queue: request parameters -> FrameInput -> FramePipeline -> outputs and a summary."""

from __future__ import annotations

import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from depth_anything_ros.cli_options import DEFAULT_FOV_DEG
from depth_anything_ros.frame.camera import IntrinsicsError, user_camera
from depth_anything_ros.frame.colorize import COLORMAPS, colormap_lut
from depth_anything_ros.frame.files import FILE_KEYS, result_files
from depth_anything_ros.frame.pipeline import FrameInput, FrameOptions, FramePipeline, FrameResult
from depth_anything_ros.frame.provenance import model_label
from depth_anything_ros.server.uploads import RequestError, decode_upload

NUMBERS = ("fx", "fy", "cx", "cy", "fov", "cloud_min_depth", "cloud_max_depth")
PARAMETERS = (*NUMBERS, "colormap")  # what a request may set; the rest is the server's command line
OUTPUTS = ("depth", "camera_info", "points", "rgb", "colored")  # estimate's, with the slider's colourised depth


@dataclass
class Outcome:
    """The result of one request: the pipeline's FrameResult, what it was made with, and a JSON-ready summary."""

    result: FrameResult
    options: FrameOptions
    colour_range: tuple[float, float]
    summary: dict
    model: dict  # frame/provenance's description of the model, for the preview's footer

    def files(self, keys: tuple[str, ...] = FILE_KEYS, depth_format: str = "tiff") -> dict[str, bytes]:
        """Return outputs estimate writes, as bytes by key: depth (tiff/npy), depth_mm, preview, ply."""
        return result_files(self.result, colormap_lut(self.options.colormap), self.colour_range, depth_format, keys,
                            model=model_label(self.model), synthetic=bool(self.model["synthetic"]))


def _number(name: str, value) -> float | None:
    """Return a request's numeric parameter as a finite float (None when absent); RequestError 400 otherwise."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RequestError(400, f"{name}: expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise RequestError(400, f"{name}: expected a finite number, got {value!r}")
    return number


class DepthService:
    """Runs requests through one FramePipeline, one at a time; at most `queue_size` admitted, the others busy."""

    def __init__(self, pipeline: FramePipeline, options: FrameOptions, model: dict, max_pixels: int,
                 queue_size: int):
        self.pipeline, self.options, self.model = pipeline, options, model
        self.max_pixels, self.queue_size = max_pixels, queue_size
        self._model_lock = threading.Lock()  # one forward pass at a time: one model, one pipeline
        self._count_lock = threading.Lock()
        self.admitted = 0
        self.served = 0

    def frame_options(self, params: dict) -> tuple[FrameOptions, object, str]:
        """Return (FrameOptions, (width, height) -> CameraInfo, where the intrinsics came from) of request parameters.

        RequestError 400 for an unknown parameter, a value that is not a number, or values the pipeline refuses.
        """
        unknown = sorted(set(params) - set(PARAMETERS))
        if unknown:
            raise RequestError(400, f"unknown parameter {', '.join(unknown)}; known: {', '.join(PARAMETERS)}")
        values = {name: _number(name, params.get(name)) for name in NUMBERS}
        colormap = str(params.get("colormap") or self.options.colormap).lower()
        if colormap not in COLORMAPS:
            raise RequestError(400, f"unknown colormap {colormap!r}; one of {', '.join(COLORMAPS)}")
        try:
            camera_for, source = user_camera(values["fx"], values["fy"], values["cx"], values["cy"], values["fov"],
                                             DEFAULT_FOV_DEG, prefix="")
            changes = {name: values[name] for name in NUMBERS[5:] if values[name] is not None}  # cloud limits
            options = replace(self.options, colormap=colormap, **changes)
        except (IntrinsicsError, ValueError) as exc:
            raise RequestError(400, str(exc)) from None
        return options, camera_for, source

    @contextmanager
    def _admitted(self):
        """Hold one of the queue's places for a request; RequestError 503 (busy) when none is free."""
        with self._count_lock:
            if self.admitted >= self.queue_size:
                raise RequestError(503, f"busy: {self.admitted} requests are running or waiting, the server's queue "
                                        f"holds {self.queue_size} (serve --queue-size); retry shortly")
            self.admitted += 1
        try:
            yield
        finally:
            with self._count_lock:
                self.admitted -= 1

    def run(self, data: bytes, params: dict) -> Outcome:
        """Estimate depth of uploaded image bytes with request parameters; RequestError for what cannot be served."""
        start = time.perf_counter()
        options, camera_for, source = self.frame_options(params)
        with self._admitted():
            decode_start = time.perf_counter()
            pixels, encoding = decode_upload(data, self.max_pixels)
            height, width = pixels.shape[:2]
            frame = FrameInput(camera="upload", pixels=pixels, encoding=encoding,
                               camera_info=camera_for(width, height), outputs=OUTPUTS)
            decoded = time.perf_counter()
            with self._model_lock:
                waited = time.perf_counter()
                self.pipeline.reset_temporal()  # uploads are unrelated pictures: each is a temporal model's first frame
                result = self.pipeline.run([frame], options)[0]
                colour_range = self.pipeline.colour_range(options)
                self.served += 1
        if result.problems:
            status = 422 if all(p.kind in ("image", "intrinsics") for p in result.problems) else 500
            raise RequestError(status, "; ".join(p.text() for p in result.problems))
        seconds = {"decode_upload": decoded - decode_start, "queue_wait": waited - decoded,
                   **{k: v for k, v in result.seconds.items() if k != "batch_size"},
                   "total": time.perf_counter() - start}
        summary = self._summary(result, width, height, encoding, source, seconds)
        return Outcome(result, options, colour_range, summary, self.model)

    def _summary(self, result: FrameResult, width: int, height: int, encoding: str, source: str,
                 seconds: dict) -> dict:
        """Return the JSON summary of one result: model, image, intrinsics used and their source, depth, timings."""
        depth = result.depth
        valid = depth[np.isfinite(depth) & (depth > 0)]
        k = result.camera_info.k
        stats = ({"min": float(valid.min()), "median": float(np.median(valid)), "max": float(valid.max())}
                 if valid.size else {"min": None, "median": None, "max": None})
        return {"model": self.model, "image": {"width": width, "height": height, "encoding": encoding},
                "intrinsics": {"fx": k[0], "fy": k[4], "cx": k[2], "cy": k[5], "source": source},
                "depth_m": {**stats, "valid_fraction": valid.size / depth.size},
                "cloud_points": result.cloud.width * result.cloud.height,
                "timings_ms": {name: round(value * 1000.0, 2) for name, value in seconds.items()}}
