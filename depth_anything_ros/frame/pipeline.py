"""The per-frame pipeline every front-end shares: image + intrinsics + options -> every output (no ROS).

From a decoded image, its camera_info and the options it makes depth, camera_info, cloud, colourised depth, scan
and confidence, and lists the problems of the frame.

The node, `bag process` and `estimate` only move frames in and results out; every decision about a frame is made
here, so the same frame with the same options gives the same bytes from all three:

- a temporal model (Video Depth Anything, ``temporal``) runs each camera's frames one at a time, in order, each
  attending to that camera's past frames; when its stream starts over is frame/temporal.py's rule, and the reason
  is returned with the frame (``restart``); a frame that brings its depth (``FrameInput.depth``, offline windows)
  is not run through the model;
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
- navigation outputs (frame/nav.py): the confidence from a flip of the image run in the same batch (only when a
  frame of the batch needs it), the edge filter and confidence gates on the depth the cloud and the scan see (never
  on the published depth), the LaserScan (frame/scan.py), voxel downsampling of unorganised clouds (frame/voxel.py);
- the colourised depth spans 0 m (warm) .. the model's max depth x ``depth_scale`` (cold), the largest depth the
  metric head can output (times the applied scale; relative models: up to the max reference depth); invalid depth
  is black.

A problem never raises: it is returned with the frame, typed (``image``, ``intrinsics``, ``model``, ``scale``,
``scan``, ``internal``), with the outputs it cost, and the outputs that could be made are still made.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from depth_anything_ros.frame import image_codec
from depth_anything_ros.frame.camera import Intrinsics, IntrinsicsError, image_camera
from depth_anything_ros.frame.colorize import colorize, colormap_lut
from depth_anything_ros.frame.confidence import flip_agreement
from depth_anything_ros.frame.edges import EdgeGeometry
from depth_anything_ros.frame.frame_io import INTRINSIC_OUTPUTS, FrameInput, FrameOptions, FrameResult
from depth_anything_ros.frame.geometry import PointCloudBuilder
from depth_anything_ros.frame.nav import gated_depths, needs_surface, wants_confidence
from depth_anything_ros.frame.rays import ray_grid
from depth_anything_ros.frame.scale import (
    ReferenceSizeError,
    ScaleState,
    ScaleTracker,
    fit_floor,
    fit_reference_scale,
    fit_relative,
    floor_grid,
    relative_to_depth,
)
from depth_anything_ros.frame.scan import ScanError, laser_scan
from depth_anything_ros.frame.temporal import TemporalStreams
from depth_anything_ros.frame.voxel import voxel_downsample
from depth_anything_ros.models.image import check_work, to_rgb8
from depth_anything_ros.models.variants import CHECKPOINTS, METRIC

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


@dataclass
class _CameraState:
    """Per-camera caches: the ray grid of the last intrinsics and a cloud builder with its buffers."""

    rays_key: tuple | None = None
    rays: torch.Tensor | None = None
    edges: EdgeGeometry | None = None  # ray terms of the edge filter and the confidence, of `rays`
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
        self._streams = TemporalStreams(estimator) if getattr(estimator, "temporal", False) else None
        self._cameras: dict[Hashable, _CameraState] = {}
        self._luts: dict[str, np.ndarray] = {}

    def reset_temporal(self, camera: Hashable | None = None) -> None:
        """Start the temporal stream of one camera (all with None) over; nothing for per-frame models."""
        if self._streams is not None:
            self._streams.reset(camera)

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
                alone = (index,) if self._streams is not None else ()  # temporal: one frame at a time, in order
                groups.setdefault((pixels.shape, pixels.dtype.str, encoding, *alone), []).append((index, pixels))
        for (_, _, encoding, *_), items in groups.items():
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
            # flip test-time augmentation for the confidence: the mirrored images in the same batch
            flip = any(wants_confidence(frames[index].outputs, options) for index, _ in items)
            batch, focal = (torch.cat([raw, raw.flip(2)]), focal and focal * 2) if flip else (raw, focal)
            # (B or 2B, H, W) float32 on the device
            given = frames[items[0][0]].depth if self._streams is not None else None
            if given is not None:  # estimated already (offline windows): no mirrored run, no confidence
                depth, flip = given[None].to(est.device), False
            elif self._streams is not None:  # one frame: its depth, and the mirrored image's after it
                frame = frames[items[0][0]]
                depth, results[items[0][0]].restart = self._streams.depth(
                    frame.camera, raw, encoding, frame.stamp, options.temporal_max_gap, flip)
            elif focal is None:
                depth = est.estimate_raw(batch, encoding)
            else:
                depth = est.estimate_raw(batch, encoding, focal)
            agreement = flip_agreement(depth[:len(items)], depth[len(items):].flip(-1)) if flip else None
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
                self._finish(frames[index], depth[row], raw[row:row + 1], encoding, options, result,
                             None if agreement is None else agreement[row])
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
                options: FrameOptions, result: FrameResult, agreement: torch.Tensor | None) -> None:
        """Fill `result` with the wanted outputs of one frame: depth and agreement (H, W), raw (1, H, W[, C])."""
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
        seconds["depth"] = time.perf_counter() - t0
        rgb = None
        if "rgb" in wants or ("points" in wants and intr is not None and options.cloud_color):
            rgb = to_rgb8(raw, encoding)[0].permute(1, 2, 0)  # (H, W, 3) uint8 on the device
            if "rgb" in wants:
                result.rgb = rgb.cpu().numpy()
        rays = None
        if wants & {"points", "scan", "confidence"} and intr is not None:
            rays = self._rays(frame, intr, options.undistort, depth.device, result)
        if rays is not None:
            t2 = time.perf_counter()
            geometry = self._edges(frame, rays) if needs_surface(options, frame.outputs, agreement) else None
            confidence, cloud_depth, scan_depth = gated_depths(depth, geometry, agreement, options, frame.outputs)
            if "confidence" in wants:
                result.confidence = confidence.cpu().numpy()
            t3 = time.perf_counter()
            seconds["gates"] = t3 - t2
            if "scan" in wants:
                try:
                    result.scan = laser_scan(scan_depth, rays, intr, options.undistort, options.scan)
                except ScanError as exc:
                    result.problem("scan", f"no scan: {exc}", ("scan",))
                seconds["scan"] = time.perf_counter() - t3
            if "points" in wants:
                t4 = time.perf_counter()
                low, high = options.cloud_range
                cloud = self._camera(frame.camera).builder.build(
                    cloud_depth, rays, rgb if options.cloud_color else None, stride=options.cloud_stride,
                    min_depth=low, max_depth=high, organized=options.cloud_organized)
                result.cloud = voxel_downsample(cloud, options.voxel_size) if options.voxel_size > 0 else cloud
                seconds["cloud"] = time.perf_counter() - t4
        if "colored" in wants:
            t5 = time.perf_counter()
            result.colored = colorize(depth, *self.colour_range(options, result.scale),
                                      self._lut(options.colormap)).cpu().numpy()
            seconds["colorize"] = time.perf_counter() - t5

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
            rays = self._rays(frame, intr, options.undistort, depth.device, result)
            if rays is not None:
                rows, cols = floor_grid(*depth.shape)
                points = (rays[rows, cols] * depth.float()[rows, cols, None]).cpu().numpy()  # unscaled floor grid
                fit = fit_floor(points, tracker.floor_up, options.scale)
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

    def _rays(self, frame: FrameInput, intr: Intrinsics, undistort: bool, device: torch.device,
              result: FrameResult) -> torch.Tensor | None:
        """Return the cached (H, W, 3) float32 ray grid of `intr` on `device`, or None with an intrinsics problem."""
        state = self._camera(frame.camera)
        key = (intr, undistort, str(device))
        if state.rays_key != key:
            try:
                rays = ray_grid(intr, undistort)
                if not np.isfinite(rays).all(axis=-1).any():
                    raise IntrinsicsError(f"the {intr.distortion_model} distortion D={list(intr.d)} cannot be "
                                          "inverted at any pixel")
            except ValueError as exc:
                result.problem("intrinsics", f"cannot back-project with this camera_info: {exc}",
                               [o for o in INTRINSIC_OUTPUTS[1:] if o in frame.outputs])
                return None
            state.rays_key, state.rays = key, torch.from_numpy(rays).to(device)
        return state.rays

    def _edges(self, frame: FrameInput, rays: torch.Tensor) -> EdgeGeometry:
        """Return the camera's EdgeGeometry of `rays` (the cached ray grid), built once per ray grid."""
        state = self._camera(frame.camera)
        if state.edges is None or state.edges.rays is not rays:
            state.edges = EdgeGeometry(rays)
        return state.edges

    def _camera(self, camera: Hashable) -> _CameraState:
        if camera not in self._cameras:
            self._cameras[camera] = _CameraState()
        return self._cameras[camera]

    def _lut(self, name: str) -> np.ndarray:
        if name not in self._luts:
            self._luts[name] = colormap_lut(name)
        return self._luts[name]


_ATTR = {"depth": "depth", "camera_info": "camera_info", "points": "cloud", "colored": "colored", "rgb": "rgb",
         "scan": "scan", "confidence": "confidence"}
