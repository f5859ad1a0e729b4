"""The `depth-anything-ros` command: `estimate`, `bag ...`, `evaluate` (RGB-D datasets), `train`, `serve`, `demo`.

Each subcommand module adds its parser in `register(subparsers)` and sets `func=handler`, where
`handler(args) -> int` returns the exit code. `CommandError`, `CheckpointError`, `BagError`, `ValueError`
(the validation error of every module here, e.g. an unusable --device) and `OSError` (a path that cannot be
read or written) raised by a handler are printed as one line and exit with code 2; so are usage errors
(`Parser.error`), with a "did you mean" for a mistyped flag.
"""

import argparse
import difflib
import sys
from pathlib import Path

from depth_anything_ros import cli_options
from depth_anything_ros import evaluate as dataset_evaluate
from depth_anything_ros import export as export_command
from depth_anything_ros.bag import commands as bag_commands
from depth_anything_ros.bag import demo as bag_demo
from depth_anything_ros.bag.bagfile import BagError
from depth_anything_ros.cli_options import DEFAULT_FOV_DEG, PROG, CommandError
from depth_anything_ros.models.checkpoint_io import CheckpointError
from depth_anything_ros.server import commands as server_commands
from depth_anything_ros.train import options as train_options

# flags of earlier versions -> the flags that took over their meanings (one flag, one meaning in every subcommand)
RENAMED_FLAGS = {"--max-depth": ("--model-max-depth", "--cloud-max-depth", "--gt-max-depth"),
                 "--min-depth": ("--cloud-min-depth", "--gt-min-depth"), "--max-depth-cloud": ("--cloud-max-depth",)}


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line (`PROG sub: error: ...`) pointing at --help, exit code 2."""

    def error(self, message: str):
        """Print one line and exit 2 (argparse prints the whole usage first; --help has it)."""
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of every subcommand."""
    parser = Parser(
        prog=PROG, description="Metric depth for ROS 2 (Depth-Anything-V2, Depth Anything 3, Video Depth Anything): "
                               "images, rosbags, RGB-D datasets, fine-tuning, ONNX export, a web server and the demo "
                               "job. Flags mean the same in every subcommand: --model-max-depth is the model's metric "
                               "head scale, --cloud-min-depth/--cloud-max-depth bound point clouds, "
                               "--gt-min-depth/--gt-max-depth the ground truth bag evaluate counts.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _register_estimate(subparsers)
    bag_commands.register(subparsers)
    dataset_evaluate.register(subparsers)
    train_options.register(subparsers)
    bag_demo.register(subparsers)
    server_commands.register(subparsers)
    export_command.register(subparsers)
    return parser


def _register_estimate(subparsers) -> None:
    """Add the `estimate` subcommand."""
    p = subparsers.add_parser(
        "estimate", help="metric depth, preview and point cloud of image files or a video",
        description="Run the model on image files. For each NAME.ext writes NAME_depth.tiff (or .npy, float32 "
                    "metres), NAME_depth_mm.png (uint16 millimetres, 0 = invalid), NAME_preview.png (image beside "
                    "colourised depth with a colour bar) and NAME.ply (the valid points of the cloud, coloured, in "
                    "the camera frame). Images whose names share NAME (a.png a.jpg, left/f.png right/f.png) are "
                    "named after their path below their common folder instead, with '/' and '.' as '_' "
                    "(a_png_depth.tiff, left_f_png_depth.tiff), so no output overwrites another; the same file "
                    "given twice is an error. --video FILE instead runs every frame of a video in order "
                    "(NAME_000000_depth.tiff, ...), so a temporal model (vda-metric-*) streams it as a camera. "
                    "Frames go through the same "
                    "pipeline as the node and bag process. A file or frame that cannot be used is reported and "
                    "skipped; the exit code is then 2.")
    p.add_argument("images", nargs="*", type=Path, metavar="IMAGE", help="image files (any format OpenCV reads)")
    p.add_argument("--video", type=Path, metavar="FILE", help="a video file (what OpenCV's FFmpeg reader decodes) "
                                                              "instead of images")
    p.add_argument("--max-frames", type=cli_options.number(int, 0), default=0, metavar="N",
                   help="--video: stop after N frames (default 0: all)")
    cli_options.add_model_options(p)
    cam = p.add_argument_group("intrinsics", "pinhole intrinsics of the images in pixels: all of --fx --fy --cx "
                                             f"--cy, or --fov; neither means --fov {DEFAULT_FOV_DEG:g}")
    for name in ("fx", "fy", "cx", "cy"):
        cam.add_argument(f"--{name}", type=float)
    cam.add_argument("--fov", type=float, metavar="DEG", help="horizontal field of view in degrees")
    cli_options.add_frame_options(p, cloud_layout=False)
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory (created if needed)")
    p.add_argument("--format", choices=("tiff", "npy"), default="tiff", help="float depth file format")
    p.set_defaults(func=run_estimate)


def run_estimate(args: argparse.Namespace) -> int:
    """Run `estimate` (torch and OpenCV load here, not for every subcommand)."""
    from depth_anything_ros import estimate

    return estimate.run_estimate(args)


def _chosen_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """Return the (sub)parser of the subcommand `args` were parsed for, e.g. that of `bag process`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and getattr(args, action.dest, None) in action.choices:
            return _chosen_parser(action.choices[getattr(args, action.dest)], args)
    return parser


def _unknown_arguments(parser: argparse.ArgumentParser, extra: list[str]) -> str:
    """Return the 'unrecognized arguments' message, with the nearest flags of the subcommand for a mistyped one."""
    flags = [o for action in parser._actions for o in action.option_strings if o.startswith("--")]
    hints = []
    for arg in extra:
        if arg.startswith("--"):
            flag = arg.split("=", 1)[0]
            close = [f for f in RENAMED_FLAGS.get(flag, ()) if f in flags]
            close = close or difflib.get_close_matches(flag, flags, n=2, cutoff=0.6)
            if close:
                hints.append(f"{flag}: did you mean {' or '.join(close)}?")
    return "; ".join([f"unrecognized arguments: {' '.join(extra)}", *hints])


def main(argv: list[str] | None = None) -> int:
    """Run the command line; user errors print one line and return 2."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        chosen = _chosen_parser(parser, args)
        chosen.error(_unknown_arguments(chosen, extra))
    try:
        return args.func(args)
    except (CommandError, CheckpointError, BagError, ValueError, OSError) as exc:  # OSError: a path of the user's
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
