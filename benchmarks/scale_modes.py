"""Per-frame cost of each scale mode: the fits alone, and the pipeline's `scale` stage of a whole frame.

Fits on a synthetic 640x480 scene: dense and 300-pixel sparse reference (metric model), dense reference (relative
model: scale and shift), ground-plane RANSAC on the sample room's floor. The fits subsample (frame/scale.py): a
reference is fitted on at most MAX_FIT_PIXELS valid pixels, the floor on its grid of at most about MAX_FLOOR_POINTS
points; the printed title says both. The pipeline rows run FramePipeline frames
(synthetic vits weights, a small network input: the model is not what is measured) in each mode and report the
`scale` stage it times (depth to the host, pairing, fit, smoothing, the multiply) and the whole frame.

    python benchmarks/scale_modes.py [--device cpu|cuda] [--iters 20] [--json out.json]
"""

from __future__ import annotations

import _common
import numpy as np
import torch

from depth_anything_ros.bag.sample import SampleConfig, camera_pose, render
from depth_anything_ros.frame.camera import CameraInfo
from depth_anything_ros.frame.pipeline import FrameInput, FrameOptions, FramePipeline
from depth_anything_ros.frame.rays import ray_grid
from depth_anything_ros.frame.scale import (
    MAX_FIT_PIXELS,
    MAX_FLOOR_POINTS,
    ScaleOptions,
    ScaleTracker,
    fit_ground_plane,
    fit_reference_scale,
    fit_relative,
)
from depth_anything_ros.models.v2.estimator import DepthEstimator

REFERENCE = ScaleOptions(mode="reference", min_reference_depth=0.05, max_reference_depth=100.0)


def fit_stages(width: int, height: int) -> dict:
    """Named zero-argument callables, one per fit, on synthetic `width` x `height` data."""
    rng = np.random.default_rng(0)
    cfg = SampleConfig(width=width, height=height)
    rays = ray_grid(cfg.intrinsics(), undistort=True)
    _, depth = render(rays, *camera_pose(0, cfg.frames), rng.random((64, 64)))
    depth = np.nan_to_num(depth, nan=5.0).astype(np.float32)
    reference = depth * 0.8 * rng.lognormal(0.0, 0.03, depth.shape).astype(np.float32)
    sparse = np.full_like(reference, np.nan)
    picked = rng.choice(reference.size, 300, replace=False)
    sparse.flat[picked] = reference.flat[picked]
    disparity = (2.0 / depth + 0.1).astype(np.float32)
    points = rays * (depth / 0.8)[..., None]
    ground = ScaleOptions(mode="ground_plane", camera_height=1.2, floor_pitch_deg=10.0)
    tracker = ScaleTracker(REFERENCE)
    fit = fit_reference_scale(depth, reference, REFERENCE)
    stamp = iter(range(10**9))
    return {
        "fit reference dense (metric)": lambda: fit_reference_scale(depth, reference, REFERENCE),
        "fit reference 300 sparse pixels (metric)": lambda: fit_reference_scale(depth, sparse, REFERENCE),
        "fit reference dense (relative: scale + shift)": lambda: fit_relative(disparity, reference, REFERENCE),
        "fit ground plane (RANSAC + least squares)": lambda: fit_ground_plane(points, ground.floor_normal(), ground),
        "tracker update": lambda: tracker.update(next(stamp) * 0.1, fit),
    }


def pipeline_rows(width: int, height: int, iters: int, device: str) -> list[dict]:
    """Return rows of the pipeline's scale stage and whole-frame time (p50, p95 ms) per mode."""
    est = DepthEstimator(_common.synthetic_checkpoint("vits"), encoder="vits", max_depth=20.0, device=device,
                         precision="fp32", input_size=70)
    pipe = FramePipeline(est)
    pixels = _common.synthetic_image(height, width)
    info = CameraInfo.from_fov(width, height, 70.0)
    unscaled = pipe.run([FrameInput(pixels=pixels, encoding="rgb8", camera_info=info)], FrameOptions())[0].depth
    modes = {"fixed": (FrameOptions(), None),
             "reference dense": (FrameOptions(scale=REFERENCE), unscaled * 0.8),
             "ground_plane": (FrameOptions(scale=ScaleOptions(mode="ground_plane", camera_height=1.2)), None)}
    rows = []
    for mode, (options, reference) in modes.items():
        scale_s, total_s = [], []
        for k in range(iters + 2):
            frame = FrameInput(camera=mode, pixels=pixels, encoding="rgb8", camera_info=info, stamp=k * 0.1,
                               reference=reference, outputs=("depth", "camera_info", "points"))
            result = pipe.run([frame], options)[0]
            if k >= 2:
                scale_s.append(result.seconds.get("scale", 0.0))
                total_s.append(sum(v for name, v in result.seconds.items() if name != "batch_size"))
        rows.append({"stage": f"pipeline {mode}: scale stage", "size": f"{width}x{height}", "device": device,
                     "p50_ms": float(np.median(scale_s)) * 1e3, "p95_ms": float(np.percentile(scale_s, 95)) * 1e3})
        rows.append({"stage": f"pipeline {mode}: whole frame (model at input 70)", "size": f"{width}x{height}",
                     "device": device, "p50_ms": float(np.median(total_s)) * 1e3,
                     "p95_ms": float(np.percentile(total_s, 95)) * 1e3})
    return rows


def main() -> None:
    parser = _common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--size", default="640x480", help="frame size WIDTHxHEIGHT")
    args = parser.parse_args()
    args.iters = max(args.iters or 0, 20) if not args.quick else args.iters
    _common.apply_common(args)
    width, height = (int(v) for v in args.size.split("x"))
    if args.quick:
        width, height = 64, 48
    rows = []
    for name, fn in fit_stages(width, height).items():
        stats = _common.summarise(_common.time_calls(fn, args.warmup, args.iters, "cpu"))
        rows.append({"stage": name, "size": f"{width}x{height}", "device": "cpu", "p50_ms": stats["p50_ms"],
                     "p95_ms": stats["p95_ms"]})
    rows += pipeline_rows(width, height, args.iters, args.device)
    _common.print_table(rows, ["stage", "size", "device", "p50_ms", "p95_ms"],
                        title=f"Per-frame cost of each scale mode (torch threads {torch.get_num_threads()}; reference "
                              f"fits on <= {MAX_FIT_PIXELS} pixels, floor grid <= ~{MAX_FLOOR_POINTS} points)")
    stage = {row["stage"]: row["p50_ms"] for row in rows if "scale stage" in row["stage"]}
    _common.write_json(args.json, "scale_modes", args, rows, {"scale_stage_p50_ms": stage})


if __name__ == "__main__":
    main()
