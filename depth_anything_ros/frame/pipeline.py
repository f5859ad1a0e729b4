"""The per-frame pipeline every front-end shares: image + intrinsics + options -> every output (no ROS).

From a decoded image, its camera_info and the options it makes depth, camera_info, cloud and colourised depth,
and lists the problems of the frame.

The node, `bag process` and `estimate` only move frames in and results out; every decision about a frame is made
here, so the same frame with the same options gives the same bytes from all three:

- images are decoded by image_codec; sizes outside preprocess's bounds are refused before any work is done;
- depth is the model's metric output times ``depth_scale`` (relative checkpoints are refused at construction);
  a model whose metres depend on the focal length (DA3 metric, ``needs_focal``) gets each frame's (fx, fy) from its
  camera_info (raw K for distorted images with undistort on, else P's), and a frame without usable intrinsics gets
  no output at all; its sky pixels come back NaN (invalid: no point) unless the estimator fills them;
  with scale mode reference or ground_plane, times the per-camera smoothed scale (scale.py) fitted to the frame's
  reference depth or floor instead; a relative checkpoint, allowed with reference mode only, is aligned by scale
  and shift in inverse depth;
- intrinsics and the depth image's camera_info follow camera.py (P, else K; roi and binning; uniform resize;
  NaN, inf or non-positive values rejected with the field named);
- ray grids are built once per camera and intrinsics and kept on the model's device;
- the colourised depth spans 0 m (warm) .. the model's max depth x ``depth_scale`` (cold), the largest depth the
  metric head can output (times the applied scale; relative models: up to the max reference depth); invalid depth
  is black.

A problem never raises: it is returned with the frame, typed (``image``, ``intrinsics``, ``model``, ``scale``,
``internal``), with the outputs it cost, and the outputs that could be made are still made.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from depth_anything_ros.frame import image_codec
from depth_anything_ros.frame.camera import CameraInfo, Intrinsics, IntrinsicsError, image_camera
from depth_anything_ros.frame.colorize import COLORMAPS, DEFAULT_COLORMAP, colorize, colormap_lut
from depth_anything_ros.frame.geometry import CloudBuffer, PointCloudBuilder
from depth_anything_ros.frame.rays import ray_grid
from depth_anything_ros.frame.scale import (
    ReferenceSizeError,
    ScaleOptions,
    ScaleState,
    ScaleTracker,
    fit_ground_plane,
    fit_reference_scale,
    fit_relative,
    relative_to_depth,
)
from depth_anything_ros.models.image import check_work, to_rgb8
from depth_anything_ros.models.variants import CHECKPOINTS, METRIC

OUTPUTS = ("depth", "camera_info", "points", "colored", "rgb")  # rgb: the (H, W, 3) uint8 RGB the cloud is coloured by
INTRINSIC_OUTPUTS = ("camera_info", "points")
METRIC_VARIANTS = tuple(name for name, c in CHECKPOINTS.items() if c.kind == METRIC)


def decode(message) -> tuple[np.ndarray, str]:
    """(H, W[, C]) pixels and encoding of an Image-like or CompressedImage-like message (image_codec)."""
    if hasattr(message, "format"):
        return image_codec.decode_compressed(message)
    return image_codec.decode_image(message)


def rgb8_of_message(message) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image message: the colours the pipeline gives clouds (mono16: high byte)."""
    pixels, encoding = decode(message)
    return to_rgb8(torch.from_numpy(np.array(pixels))[None], encoding)[0].permute(1, 2, 0).numpy()


class RelativeModelError(ValueError):
    """A relative (affine-invariant inverse depth) checkpoint where metric depth in metres is required."""


def require_metric(estimator) -> None:
    """Raise RelativeModelError unless the estimator outputs metric depth in metres."""
    if not estimator.is_metric:
        raise RelativeModelError(
            f"checkpoint {estimator.checkpoint_path} is a relative model (affine-invariant inverse depth, not "
            f"metres) and cannot give metric depth or point clouds; use a metric one: {', '.join(METRIC_VARIANTS)}, "
            "or align it to a reference depth (scale.mode reference)")


@dataclass(frozen=True)
class FrameOptions:
    """Per-frame options, shared by every front-end (the node's run-time parameters of the same meaning)."""

    depth_scale: float = 1.0  # multiplies the model's depth (and so the cloud and the colour range)
    cloud_stride: int = 1  # every n-th row and column
    cloud_min_depth: float = 0.0  # closer points are invalid
    cloud_max_depth: float = 0.0  # farther points are invalid; 0 = no limit
    cloud_color: bool = True  # packed rgb field
    cloud_organized: bool = True  # H x W with NaN, or valid points only
    colormap: str = DEFAULT_COLORMAP  # any OpenCV colormap name, case-insensitive
    undistort: bool = True  # raw images with non-zero D: back-project through K and D
    scale: ScaleOptions = ScaleOptions()  # mode fixed: depth_scale; reference / ground_plane: fitted per frame

    def __post_init__(self):
        object.__setattr__(self, "colormap", str(self.colormap).lower())
        problems = []
        if not 0.001 <= self.depth_scale <= 1000.0:
            problems.append(f"depth scale must be in [0.001, 1000], got {self.depth_scale}")
        if isinstance(self.cloud_stride, bool) or not isinstance(self.cloud_stride, int) or not \
                1 <= self.cloud_stride <= 64:
            problems.append(f"cloud stride must be an integer in [1, 64], got {self.cloud_stride!r}")
        if not (0.0 <= self.cloud_min_depth and 0.0 <= self.cloud_max_depth):
            problems.append(f"cloud depth limits must be >= 0, got {self.cloud_min_depth}, {self.cloud_max_depth}")
        elif self.cloud_max_depth > 0 and self.cloud_min_depth >= self.cloud_max_depth:
            problems.append(f"cloud min depth ({self.cloud_min_depth}) must be below the max depth "
                            f"({self.cloud_max_depth}; 0 = no limit)")
        if self.colormap not in COLORMAPS:
            problems.append(f"unknown colormap '{self.colormap}'; one of {', '.join(COLORMAPS)}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def cloud_range(self) -> tuple[float, float]:
        """(min, max) valid cloud depth in metres, max inf when unlimited."""
        return self.cloud_min_depth, self.cloud_max_depth if self.cloud_max_depth > 0 else float("inf")


@dataclass(frozen=True)
class FrameProblem:
    """Why outputs of one frame were not produced: kind image | intrinsics | model | scale | internal."""

    kind: str
    message: str
    skipped: tuple[str, ...]

    def text(self) -> str:
        """One line: the problem and what it cost."""
        return f"{self.message} ({', '.join(self.skipped)} not produced)" if self.skipped else self.message


@dataclass
class FrameInput:
    """One frame for the pipeline: an Image/CompressedImage-like message or decoded pixels, and its camera_info."""

    camera: Hashable = 0  # ray grids and cloud buffers are kept per camera
    message: object = None  # Image-like (height, width, encoding, step, data) or CompressedImage-like (format, data)
    pixels: np.ndarray | None = None  # or an already decoded (H, W[, C]) array in `encoding`
    encoding: str = ""
    camera_info: object = None  # CameraInfo-like or camera.CameraInfo; None: no intrinsics for this frame
    outputs: tuple[str, ...] = OUTPUTS[:4]  # what the caller wants
    stamp: float = 0.0  # header stamp, seconds: the scale smoothing's clock
    reference: np.ndarray | None = None  # (h, w) float metres, NaN/0 invalid: the image size or a uniform resize


@dataclass
class FrameResult:
    """Everything produced for one frame; None for outputs not wanted or not produced (see problems)."""

    depth: np.ndarray | None = None  # (H, W) float32 metres, NaN/0 never invented
    camera_info: CameraInfo | None = None  # of the depth image
    cloud: CloudBuffer | None = None
    colored: np.ndarray | None = None  # (H, W, 3) uint8 RGB
    rgb: np.ndarray | None = None  # (H, W, 3) uint8 RGB of the input
    scale: ScaleState | None = None  # the scale applied and this frame's fit (scale modes other than fixed)
    problems: list[FrameProblem] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # stage durations (batch stages shared)

    def problem(self, kind: str, message: str, skipped: Sequence[str]) -> None:
        """Record a problem that cost the outputs `skipped`."""
        self.problems.append(FrameProblem(kind, message, tuple(skipped)))


@dataclass
class _CameraState:
    """Per-camera caches: the ray grid of the last intrinsics and a cloud builder with its buffers."""

    rays_key: tuple | None = None
    rays: torch.Tensor | None = None
    builder: PointCloudBuilder = field(default_factory=PointCloudBuilder)
    tracker: ScaleTracker | None = None


class FramePipeline:
    """Runs frames through one DepthEstimator and builds every output; one instance per worker thread.

    A relative estimator is accepted with allow_relative only (reference scale mode); its frames get no depth before
    the first reference fit.
    """

    def __init__(self, estimator, allow_relative: bool = False):
        if not allow_relative:
            require_metric(estimator)
        self.estimator = estimator
        self._cameras: dict[Hashable, _CameraState] = {}
        self._luts: dict[str, np.ndarray] = {}

    def colour_range(self, options: FrameOptions, state: ScaleState | None = None) -> tuple[float, float]:
        """(near, far) metres of the colourised depth: 0 .. the model's max depth x the applied scale."""
        if not self.estimator.is_metric:
            return 0.0, options.scale.max_reference_depth
        return 0.0, float(self.estimator.max_depth) * (options.depth_scale if state is None else state.scale)

    def run(self, frames: Sequence[FrameInput], options: FrameOptions) -> list[FrameResult]:
        """Process frames (same-size frames in one forward pass); one FrameResult per frame, in order."""
        results = [FrameResult() for _ in frames]
        groups: dict[tuple, list[tuple[int, np.ndarray]]] = {}
        for index, frame in enumerate(frames):
            start = time.perf_counter()
            decoded = self._decode(frame, results[index])
            results[index].seconds["decode"] = time.perf_counter() - start
            if decoded is not None:
                pixels, encoding = decoded
                groups.setdefault((pixels.shape, pixels.dtype.str, encoding), []).append((index, pixels))
        for (_, _, encoding), items in groups.items():
            self._run_group(frames, results, items, encoding, options)
        return results

    def _decode(self, frame: FrameInput, result: FrameResult) -> tuple[np.ndarray, str] | None:
        """Return the decoded (pixels, encoding) of a frame of a size the model takes, or None (image problem)."""
        try:
            if frame.pixels is not None:
                pixels, encoding = frame.pixels, frame.encoding
            else:
                pixels, encoding = decode(frame.message)
            check_work(pixels.shape[0], pixels.shape[1], self.estimator.input_size)
        except ValueError as exc:  # ImageDecodeError, ImageSizeError
            result.problem("image", f"image rejected: {exc}", frame.outputs)
            return None
        return pixels, encoding

    def _run_group(self, frames, results, items, encoding: str, options: FrameOptions) -> None:
        """One forward pass for same-size frames, then each frame's outputs."""
        est = self.estimator
        focal = None
        if est.needs_focal:
            items, focal = self._with_focal(frames, results, items, options)
            if not items:
                return
        start = time.perf_counter()
        try:
            raw = est.upload([pixels for _, pixels in items], encoding)  # (B, H, W[, C]) as it came
            uploaded = time.perf_counter()
            # (B, H, W) float32 on the device
            depth = est.estimate_raw(raw, encoding) if focal is None else est.estimate_raw(raw, encoding, focal)
            if est.device.type == "cuda":
                torch.cuda.synchronize(est.device)
        except Exception as exc:  # noqa: BLE001 - e.g. CUDA out of memory: reported per frame, never raised
            for index, _ in items:
                results[index].problem("model", f"inference failed: {type(exc).__name__}: {exc}",
                                       frames[index].outputs)
            return
        if options.depth_scale != 1.0 and options.scale.mode == "fixed" and est.is_metric:
            depth = depth * options.depth_scale
        done = time.perf_counter()
        for row, (index, _) in enumerate(items):
            result = results[index]
            result.seconds.update(upload=(uploaded - start) / len(items), inference=done - uploaded,
                                  batch_size=len(items))
            try:
                self._finish(frames[index], depth[row], raw[row:row + 1], encoding, options, result)
            except Exception as exc:  # noqa: BLE001 - one frame's failure never costs the others their outputs
                lost = [o for o in frames[index].outputs if getattr(result, _ATTR[o]) is None]
                result.problem("internal", f"processing failed: {type(exc).__name__}: {exc}", lost)

    def _with_focal(self, frames, results, items, options: FrameOptions) -> tuple[list, list[tuple[float, float]]]:
        """Return the items whose image focal length (fx, fy) is known, and those; the others get a problem."""
        kept, focal = [], []
        for index, pixels in items:
            frame, (height, width) = frames[index], pixels.shape[:2]
            why = "no camera_info for this image"
            if frame.camera_info is not None:
                try:
                    intr = image_camera(frame.camera_info, width, height)[0]
                except IntrinsicsError as exc:
                    why = f"camera_info unusable for the {width}x{height} image: {exc}"
                else:
                    raw = options.undistort and intr.has_distortion  # the network sees the distorted raw image
                    focal.append((intr.k[0], intr.k[4]) if raw else (intr.fx, intr.fy))
                    kept.append((index, pixels))
                    continue
            results[index].problem("intrinsics", f"{why}: the model's metric depth needs the focal length",
                                   frame.outputs)
        return kept, focal

    def _finish(self, frame: FrameInput, depth: torch.Tensor, raw: torch.Tensor, encoding: str,
                options: FrameOptions, result: FrameResult) -> None:
        """Fill `result` with the wanted outputs of one frame: depth (H, W) on the device, raw (1, H, W[, C])."""
        wants, seconds = set(frame.outputs), result.seconds
        t0 = time.perf_counter()
        height, width = depth.shape
        intr = None
        if wants & set(INTRINSIC_OUTPUTS) or options.scale.mode == "ground_plane":
            intr = self._intrinsics(frame, width, height, result)
        if options.scale.mode != "fixed" or not self.estimator.is_metric:
            depth = self._scaled(frame, depth, intr, options, result)
            seconds["scale"] = time.perf_counter() - t0
            if depth is None:
                return
        if "depth" in wants:
            result.depth = depth.float().cpu().numpy()
        t1 = time.perf_counter()
        seconds["depth"] = t1 - t0
        rgb = None
        if "rgb" in wants or ("points" in wants and intr is not None and options.cloud_color):
            rgb = to_rgb8(raw, encoding)[0].permute(1, 2, 0)  # (H, W, 3) uint8 on the device
            if "rgb" in wants:
                result.rgb = rgb.cpu().numpy()
        if "points" in wants and intr is not None:
            rays = self._rays(frame.camera, intr, options.undistort, depth.device, result)
            if rays is not None:
                low, high = options.cloud_range
                result.cloud = self._camera(frame.camera).builder.build(
                    depth, rays, rgb if options.cloud_color else None, stride=options.cloud_stride,
                    min_depth=low, max_depth=high, organized=options.cloud_organized)
                seconds["cloud"] = time.perf_counter() - t1
        if "colored" in wants:
            t2 = time.perf_counter()
            result.colored = colorize(depth, *self.colour_range(options, result.scale),
                                      self._lut(options.colormap)).cpu().numpy()
            seconds["colorize"] = time.perf_counter() - t2

    def _scaled(self, frame: FrameInput, depth: torch.Tensor, intr: Intrinsics | None, options: FrameOptions,
                result: FrameResult) -> torch.Tensor | None:
        """Return the (H, W) depth times the camera's smoothed scale (fitted to this frame when it can be), or None."""
        relative, mode = not self.estimator.is_metric, options.scale.mode
        if relative and mode != "reference":
            result.problem("model", "a relative model gives metric depth only aligned to a reference depth "
                                    "(scale mode reference)", frame.outputs)
            return None
        state = self._camera(frame.camera)
        if state.tracker is None or state.tracker.options.mode != mode:
            state.tracker = ScaleTracker(options.scale, options.depth_scale, relative)
        tracker = state.tracker
        tracker.options = options.scale
        fit = None
        if mode == "reference" and frame.reference is not None:
            estimate = fit_relative if relative else fit_reference_scale
            try:
                fit = estimate(depth.float().cpu().numpy(), np.asarray(frame.reference), options.scale)
            except ReferenceSizeError as exc:
                result.problem("scale", f"reference depth unusable: {exc}", ())
        elif mode == "ground_plane" and intr is not None:
            rays = self._rays(frame.camera, intr, options.undistort, depth.device, result)
            if rays is not None:
                points = (rays * depth.float()[..., None]).cpu().numpy()  # (H, W, 3) unscaled cloud
                fit = fit_ground_plane(points, tracker.floor_up, options.scale)
        result.scale = tracker.update(frame.stamp, fit)
        if relative:
            if not result.scale.estimated:
                result.problem("scale", "no reference depth fit yet: a relative model gives no metric depth before "
                                        "the first one", frame.outputs)
                return None
            return relative_to_depth(depth.float(), result.scale.scale, result.scale.shift)
        return depth * result.scale.scale

    def _intrinsics(self, frame: FrameInput, width: int, height: int, result: FrameResult) -> Intrinsics | None:
        """Intrinsics of the frame (and its depth camera_info into result), or None with an intrinsics problem."""
        wanted = [o for o in INTRINSIC_OUTPUTS if o in frame.outputs]
        if frame.camera_info is None:
            result.problem("intrinsics", "no camera_info for this image", wanted)
            return None
        try:
            intr, info = image_camera(frame.camera_info, width, height)
        except IntrinsicsError as exc:
            result.problem("intrinsics", f"camera_info unusable for the {width}x{height} image: {exc}", wanted)
            return None
        if "camera_info" in frame.outputs:
            result.camera_info = info
        return intr

    def _rays(self, camera: Hashable, intr: Intrinsics, undistort: bool, device: torch.device,
              result: FrameResult) -> torch.Tensor | None:
        """Return the cached (H, W, 3) float32 ray grid of `intr` on `device`, or None with an intrinsics problem."""
        state = self._camera(camera)
        key = (intr, undistort, str(device))
        if state.rays_key != key:
            try:
                rays = ray_grid(intr, undistort)
                if not np.isfinite(rays).all(axis=-1).any():
                    raise IntrinsicsError(f"the {intr.distortion_model} distortion D={list(intr.d)} cannot be "
                                          "inverted at any pixel")
            except ValueError as exc:
                result.problem("intrinsics", f"cannot back-project with this camera_info: {exc}", ("points",))
                return None
            state.rays_key, state.rays = key, torch.from_numpy(rays).to(device)
        return state.rays

    def _camera(self, camera: Hashable) -> _CameraState:
        if camera not in self._cameras:
            self._cameras[camera] = _CameraState()
        return self._cameras[camera]

    def _lut(self, name: str) -> np.ndarray:
        if name not in self._luts:
            self._luts[name] = colormap_lut(name)
        return self._luts[name]


_ATTR = {"depth": "depth", "camera_info": "camera_info", "points": "cloud", "colored": "colored", "rgb": "rgb"}
