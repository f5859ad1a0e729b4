"""The `depth-anything-ros` command: `estimate` on image files, `bag ...` tools and the `demo` job.

Each subcommand module adds its parser in `register(subparsers)` and sets `func=handler`, where
`handler(args) -> int` returns the exit code. `CommandError`, `CheckpointError`, `BagError` and `ValueError`
(the validation error of every module here, e.g. an unusable --device) raised by a handler are printed as one
line and exit with code 2.
"""

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from .bag import commands as bag_commands
from .bag import demo as bag_demo
from .bag.bagfile import BagError
from . import image_codec
from .camera import CameraInfo
from .checkpoint import CheckpointError
from .colorize import colormap_lut
from .export import write_depth_npy, write_depth_png_mm, write_depth_tiff, write_ply, write_preview_png
from .geometry import points_from_cloud
from .pipeline import FrameInput, FramePipeline

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
                    "colourised depth with a colour bar) and NAME.ply (the valid points of the cloud, coloured, in "
                    "the camera frame). Frames go through the same pipeline as the node and bag process. A file "
                    "that cannot be used is reported and skipped; the exit code is then 2.")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files (any format OpenCV reads)")
    bag_commands.add_model_options(p)
    cam = p.add_argument_group("intrinsics", "pinhole intrinsics of the images in pixels: all of --fx --fy --cx "
                                             f"--cy, or --fov; neither means --fov {DEFAULT_FOV_DEG:g}")
    for name in ("fx", "fy", "cx", "cy"):
        cam.add_argument(f"--{name}", type=float)
    cam.add_argument("--fov", type=float, metavar="DEG", help="horizontal field of view in degrees")
    bag_commands.add_frame_options(p, cloud_layout=False)
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory (created if needed)")
    p.add_argument("--format", choices=("tiff", "npy"), default="tiff", help="float depth file format")
    p.set_defaults(func=run_estimate)


def _camera_info_source(args: argparse.Namespace):
    """Return a function (width, height) -> camera.CameraInfo from the intrinsics options, or raise CommandError."""
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
        return lambda width, height: CameraInfo.pinhole(width, height, **explicit)
    fov = DEFAULT_FOV_DEG if args.fov is None else args.fov
    if not 0.0 < fov < 180.0:
        raise CommandError(f"invalid --fov {fov:g}: the horizontal field of view must be between 0 and 180 degrees")
    return lambda width, height: CameraInfo.from_fov(width, height, fov)


def _unreadable(path: Path) -> str:
    """Return why `path` cannot be an image file (cheap checks, before the model loads), or ''."""
    if path.is_dir():
        return f"cannot read image {path}: it is a directory, not an image file"
    if not path.is_file():
        return f"cannot read image {path}: no such file"
    if not cv2.haveImageReader(str(path)):
        return f"cannot read image {path}: not an image format OpenCV can decode"
    return ""


def _read_image(path: Path) -> tuple[np.ndarray, str]:
    """Decode an image file as the node decodes a CompressedImage: (H, W[, C]) array and its encoding."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # a damaged file: our one line, not OpenCV's too
    try:
        return image_codec.decode_encoded(np.fromfile(path, np.uint8), f"file {path.name}")
    finally:
        cv2.utils.logging.setLogLevel(level)


def _frames(paths: list[Path], size: int, camera_info_for):
    """Yield lists of (path, FrameInput) in input order, at most `size` long; unreadable files as (path, error)."""
    batch = []
    for path in paths:
        try:
            pixels, encoding = _read_image(path)
        except (OSError, ValueError) as exc:
            yield [(path, f"cannot read image {path}: {exc}")]
            continue
        height, width = pixels.shape[:2]
        batch.append((path, FrameInput(camera="files", pixels=pixels, encoding=encoding,
                                       camera_info=camera_info_for(width, height),
                                       outputs=("depth", "points", "rgb"))))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_estimate(args: argparse.Namespace) -> int:
    """Estimate and write depth, preview and point cloud for every image; 2 when a file could not be used."""
    camera_info_for = _camera_info_source(args)
    if args.batch < 1:
        raise CommandError(f"invalid --batch {args.batch}: must be at least 1")
    options = replace(bag_commands.frame_options(args), cloud_organized=False)
    unreadable = [reason for reason in map(_unreadable, args.images) if reason]
    if len(unreadable) == len(args.images):
        raise CommandError("; ".join(unreadable))
    for reason in unreadable:
        print(f"{PROG}: error: {reason}", file=sys.stderr)
    images = [path for path in args.images if not _unreadable(path)]
    pipeline = FramePipeline(bag_commands.make_estimator(args))
    if args.fov is None and args.fx is None:
        print(f"note: no intrinsics given, assuming a {DEFAULT_FOV_DEG:g} degree horizontal field of view; pass "
              "--fx --fy --cx --cy or --fov for a correct point cloud", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    lut = colormap_lut(options.colormap)
    failed = len(unreadable)
    for batch in _frames(images, args.batch, camera_info_for):
        inputs = [(path, item) for path, item in batch if isinstance(item, FrameInput)]
        for _, item in batch:
            if isinstance(item, str):
                failed += 1
                print(f"{PROG}: error: {item}", file=sys.stderr)
        results = pipeline.run([item for _, item in inputs], options)
        for (path, _), result in zip(inputs, results, strict=True):
            if result.problems:
                failed += 1
                print(f"{PROG}: error: {path}: " + "; ".join(p.text() for p in result.problems), file=sys.stderr)
                continue
            _write_outputs(args, path, result, lut, pipeline.colour_range(options))
    if failed:
        if len(args.images) > 1:
            print(f"{PROG}: error: {failed} of {len(args.images)} images could not be processed (see above)",
                  file=sys.stderr)
        return 2
    return 0


def _write_outputs(args: argparse.Namespace, path: Path, result, lut, colour_range: tuple[float, float]) -> None:
    """Write the depth file, the millimetre PNG, the preview and the PLY of one image."""
    depth, cloud = result.depth, result.cloud
    height, width = depth.shape
    points, colors = points_from_cloud(cloud.data, cloud.height, cloud.width, cloud.point_step, cloud.fields)
    outputs = [args.out / f"{path.stem}_depth.{args.format}", args.out / f"{path.stem}_depth_mm.png",
               args.out / f"{path.stem}_preview.png", args.out / f"{path.stem}.ply"]
    (write_depth_tiff if args.format == "tiff" else write_depth_npy)(outputs[0], depth)
    write_depth_png_mm(outputs[1], depth)
    write_preview_png(outputs[2], result.rgb, depth, lut, *colour_range)
    write_ply(outputs[3], points.reshape(-1, 3), None if colors is None else colors.reshape(-1, 3))
    valid = depth[np.isfinite(depth) & (depth > 0)]
    summary = f"depth {valid.min():.2f}-{valid.max():.2f} m" if valid.size else "no valid depth"
    print(f"{path}: {width}x{height}, {summary}, {cloud.width} points -> {', '.join(str(p) for p in outputs)}")


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
