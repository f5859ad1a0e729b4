"""Per-frame cost of the navigation outputs: scan, edge filter, confidence and voxel grid, against a 3 ms budget.

On the sample room (a rendered 640x480 depth, objects in front of walls) each stage runs alone on the device:
the LaserScan of 1 and 10 rows, the flying-pixel mask, the confidence from a given flip agreement (the second
network pass it needs is model time, not measured here: it doubles the network's work), the gated depths the cloud
and scan see, the organised cloud for comparison and the voxel grid of the unorganised cloud at two sizes. The total
of the stages the Nav2 example's settings turn on (edge filter and confidence gate, scan, 5 cm voxels of the stride 2
cloud) is compared with the 3 ms budget for all non-model work per frame.

    python benchmarks/nav_outputs.py [--device cpu|cuda] [--iters 20] [--json out.json]
"""

from __future__ import annotations

import _common
import numpy as np
import torch

from depth_anything_ros.bag.sample import SampleConfig, camera_pose, render
from depth_anything_ros.frame.confidence import confidence, flip_agreement
from depth_anything_ros.frame.edges import EdgeGeometry, flying
from depth_anything_ros.frame.frame_io import FrameOptions
from depth_anything_ros.frame.geometry import PointCloudBuilder
from depth_anything_ros.frame.nav import gated_depths
from depth_anything_ros.frame.rays import ray_grid
from depth_anything_ros.frame.scan import ScanOptions, laser_scan
from depth_anything_ros.frame.voxel import voxel_downsample

BUDGET_MS = 3.0  # all non-model work of one frame
# config/nav2_costmap_example.yaml's node settings: edge filter and confidence gate, scan, 5 cm voxels at stride 2
NAV_SETUP = ("gated depths (edge filter + confidence gate, shared)", "scan (1 row)",
             "voxel grid 0.05 m (stride 2 cloud)")


def stages(width: int, height: int, device: str) -> tuple[dict, dict]:
    """Return (named zero-argument callables, facts about the scene) on a rendered `width` x `height` room."""
    rng = np.random.default_rng(0)
    cfg = SampleConfig(width=width, height=height)
    intr = cfg.intrinsics()
    rays_np = ray_grid(intr, undistort=True)
    _, depth_np = render(rays_np, *camera_pose(0, cfg.frames), rng.random((64, 64)))
    depth = torch.from_numpy(np.nan_to_num(depth_np, nan=0.0).astype(np.float32)).to(device)
    rays = torch.from_numpy(rays_np).to(device)
    mirrored = depth * torch.from_numpy(rng.lognormal(0.0, 0.02, depth.shape).astype(np.float32)).to(device)
    agreement = flip_agreement(depth, mirrored)
    geometry = EdgeGeometry(rays)  # once per camera
    cos2 = geometry.grazing(depth)
    builder = PointCloudBuilder()
    unorganised = builder.build(depth, rays, organized=False)
    strided = PointCloudBuilder().build(depth, rays, stride=2, organized=False)
    options = FrameOptions(edge_filter=True, cloud_min_confidence=0.5, cloud_organized=False)
    scan1, scan10 = ScanOptions(range_max=20.0), ScanOptions(height=10, range_max=20.0)
    facts = {"points": unorganised.width, "flying": int(flying(cos2, 5.0).sum()),
             "voxels_5cm": voxel_downsample(unorganised, 0.05).width}
    return {
        "scan (1 row)": lambda: laser_scan(depth, rays, intr, True, scan1),
        "scan (10 rows)": lambda: laser_scan(depth, rays, intr, True, scan10),
        "edge filter mask": lambda: flying(geometry.grazing(depth), 5.0),
        "confidence (given the flip agreement)": lambda: confidence(flip_agreement(depth, mirrored),
                                                                    geometry.grazing(depth)),
        "gated depths (edge filter + confidence gate, shared)": lambda: gated_depths(
            depth, geometry, agreement, options, ("points", "scan", "confidence")),
        "organised cloud (reference, existing)": lambda: builder.build(depth, rays),
        "voxel grid 0.05 m (full unorganised cloud)": lambda: voxel_downsample(unorganised, 0.05),
        "voxel grid 0.05 m (stride 2 cloud)": lambda: voxel_downsample(strided, 0.05),
        "voxel grid 0.20 m (full unorganised cloud)": lambda: voxel_downsample(unorganised, 0.2),
    }, facts


def main() -> None:
    parser = _common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--size", default="640x480", help="frame size WIDTHxHEIGHT")
    args = parser.parse_args()
    _common.apply_common(args)
    width, height = (64, 48) if args.quick else (int(v) for v in args.size.split("x"))
    fns, facts = stages(width, height, args.device)
    rows = []
    for name, fn in fns.items():
        stats = _common.summarise(_common.time_calls(fn, args.warmup, args.iters, args.device))
        rows.append({"stage": name, "size": f"{width}x{height}", "device": args.device, "p50_ms": stats["p50_ms"],
                     "p95_ms": stats["p95_ms"]})
    p50 = {row["stage"]: row["p50_ms"] for row in rows}
    total = sum(p50[name] for name in NAV_SETUP)
    rows.append({"stage": f"navigation setup: {' + '.join(NAV_SETUP)}", "size": f"{width}x{height}",
                 "device": args.device, "p50_ms": total, "p95_ms": None})
    _common.print_table(rows, ["stage", "size", "device", "p50_ms", "p95_ms"],
                        title=f"Navigation outputs per frame (torch threads {torch.get_num_threads()}); budget "
                              f"{BUDGET_MS} ms for all non-model work")
    print(f"scene: {facts['points']} valid points, {facts['flying']} flying pixels at 5 degrees, "
          f"{facts['voxels_5cm']} voxels of 5 cm; navigation setup p50 {total:.2f} ms "
          f"({'within' if total <= BUDGET_MS else 'over'} the {BUDGET_MS} ms budget)")
    _common.write_json(args.json, "nav_outputs", args, rows, {"scene": facts, "navigation_setup_p50_ms": total,
                                                              "budget_ms": BUDGET_MS})


if __name__ == "__main__":
    main()
