"""The `depth-anything-ros` command: `estimate` on image files, `bag ...` tools and the `demo` job.

Each subcommand module adds its parser in `register(subparsers)` and sets `func=handler`, where
`handler(args) -> int` returns the exit code. `CommandError`, `CheckpointError`, `BagError` and `ValueError`
(the validation error of every module here, e.g. an unusable --device) raised by a handler are printed as one
line and exit with code 2.
"""

import argparse
import math
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from .bag import commands as bag_commands
from .bag import demo as bag_demo
from .bag.bagfile import BagError
from .camera import Intrinsics
from .checkpoint import CheckpointError
from .colorize import COLORMAPS, colormap_lut
from .export import write_depth_npy, write_depth_png_mm, write_depth_tiff, write_ply, write_preview_png
from .geometry import PointCloudBuilder, points_from_cloud, ray_grid

PROG = "depth-anything-ros"
DEFAULT_FOV_DEG = 60.0


class CommandError(Exception):
    """A problem with the user's input, reported as one line with exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Depth-Anything-V2 metric depth for ROS 2: images, rosbags and the demo job.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _register_estimate(subparsers)
    bag_commands.register(subparsers)
    bag_demo.register(subparsers)
    return parser


def _register_estimate(subparsers) -> None:
    """Add the `estimate` subcommand."""
    p = subparsers.add_parser(
        "estimate", help="metric depth, preview and point cloud of image files",
        description="Run the model on image files. For each NAME.ext writes NAME_depth.tiff (or .npy, float32 "
                    "metres), NAME_depth_mm.png (uint16 millimetres, 0 = invalid), NAME_preview.png (image beside "
                    "colourised depth with a colour bar) and NAME.ply (coloured points in the camera frame).")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files (any format OpenCV reads)")
    bag_commands.add_model_options(p)
    cam = p.add_argument_group("intrinsics", "pinhole intrinsics of the images in pixels: all of --fx --fy --cx "
                                             f"--cy, or --fov; neither means --fov {DEFAULT_FOV_DEG:g}")
    for name in ("fx", "fy", "cx", "cy"):
        cam.add_argument(f"--{name}", type=float)
    cam.add_argument("--fov", type=float, metavar="DEG", help="horizontal field of view in degrees")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory (created if needed)")
    p.add_argument("--format", choices=("tiff", "npy"), default="tiff", help="float depth file format")
    p.add_argument("--colormap", default="turbo", choices=COLORMAPS, metavar="NAME",
                   help="preview colormap, any OpenCV colormap name (default turbo)")
    p.set_defaults(func=run_estimate)


def _intrinsics_source(args: argparse.Namespace):
    """Return a function (width, height) -> Intrinsics from the intrinsics options, or raise CommandError."""
    explicit = {name: getattr(args, name) for name in ("fx", "fy", "cx", "cy")}
    given = [name for name, value in explicit.items() if value is not None]
    if given and args.fov is not None:
        raise CommandError("give either --fx --fy --cx --cy or --fov, not both")
    if given:
        if len(given) < 4:
            missing = " ".join(f"--{name}" for name in explicit if explicit[name] is None)
            raise CommandError(f"incomplete intrinsics: also give {missing}")
        if not all(math.isfinite(value) for value in explicit.values()) or explicit["fx"] <= 0 or explicit["fy"] <= 0:
            raise CommandError(f"invalid intrinsics: need fx, fy > 0 and finite cx, cy, got {explicit}")
        return lambda width, height: Intrinsics(width=width, height=height, **explicit)
    fov = DEFAULT_FOV_DEG if args.fov is None else args.fov
    if not 0.0 < fov < 180.0:
        raise CommandError(f"invalid --fov {fov:g}: the horizontal field of view must be between 0 and 180 degrees")
    return lambda width, height: Intrinsics.from_fov(width, height, fov)


def _check_images(paths: list[Path]) -> None:
    """Raise CommandError for the first path that is not a readable image file."""
    for path in paths:
        if not path.is_file():
            raise CommandError(f"cannot read image {path}: no such file")
        if not cv2.haveImageReader(str(path)):
            raise CommandError(f"cannot read image {path}: not an image format OpenCV can decode")


def _preview_range(valid: np.ndarray) -> tuple[float, float]:
    """Colour scale of a preview: 2nd to 98th percentile of the valid depth, in metres."""
    if not valid.size:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(valid, (2, 98)))
    return low, max(high, low + 1e-3)


def _read_rgb(path: Path) -> np.ndarray:
    """Return the image file as (H, W, 3) uint8 RGB, or raise CommandError."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise CommandError(f"cannot read image {path}: the file is damaged or not an image")
    return np.ascontiguousarray(bgr[..., ::-1])


def _batches(paths: list[Path], size: int):
    """Yield lists of (path, rgb) in input order, each at most `size` long and of one image size."""
    batch = []
    for path in paths:
        rgb = _read_rgb(path)
        if batch and (len(batch) == size or batch[0][1].shape != rgb.shape):
            yield batch
            batch = []
        batch.append((path, rgb))
    if batch:
        yield batch


def run_estimate(args: argparse.Namespace) -> int:
    """Estimate and write depth, preview and point cloud for every image."""
    intrinsics_for = _intrinsics_source(args)
    _check_images(args.images)
    if args.batch < 1:
        raise CommandError(f"invalid --batch {args.batch}: must be at least 1")
    estimator = bag_commands.make_estimator(args)
    if args.fov is None and args.fx is None:
        print(f"note: no intrinsics given, assuming a {DEFAULT_FOV_DEG:g} degree horizontal field of view; pass "
              "--fx --fy --cx --cy or --fov for a correct point cloud", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    lut = colormap_lut(args.colormap)
    builder = PointCloudBuilder()
    for batch in _batches(args.images, args.batch):
        depths = estimator.estimate_batch([rgb for _, rgb in batch], encoding="rgb8")
        for (path, rgb), depth in zip(batch, depths, strict=True):
            height, width = depth.shape
            rays = ray_grid(intrinsics_for(width, height), undistort=False)
            cloud = builder.build(torch.from_numpy(depth), torch.from_numpy(rays), torch.from_numpy(rgb),
                                  organized=False)
            points, colors = points_from_cloud(cloud.data, cloud.height, cloud.width, cloud.point_step,
                                               cloud.fields)
            valid = depth[np.isfinite(depth) & (depth > 0)]
            outputs = [args.out / f"{path.stem}_depth.{args.format}", args.out / f"{path.stem}_depth_mm.png",
                       args.out / f"{path.stem}_preview.png", args.out / f"{path.stem}.ply"]
            (write_depth_tiff if args.format == "tiff" else write_depth_npy)(outputs[0], depth)
            write_depth_png_mm(outputs[1], depth)
            write_preview_png(outputs[2], rgb, depth, lut, *_preview_range(valid))
            write_ply(outputs[3], points.reshape(-1, 3), colors.reshape(-1, 3))
            summary = f"depth {valid.min():.2f}-{valid.max():.2f} m" if valid.size else "no valid depth"
            print(f"{path}: {width}x{height}, {summary}, {cloud.width} points -> "
                  f"{', '.join(str(p) for p in outputs)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; user errors print one line and return 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CommandError, CheckpointError, BagError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
