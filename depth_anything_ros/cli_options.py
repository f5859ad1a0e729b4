"""Command-line pieces every subcommand shares: the model and output options, their checks, errors and the banner.

Flag names mean one thing in every subcommand: `--model-max-depth` is the metric head scale of the model
(estimate, bag process, bag evaluate, demo), `--cloud-min-depth/--cloud-max-depth` bound the point cloud (estimate,
bag process) and `--gt-min-depth/--gt-max-depth` the ground truth that counts (bag evaluate).
"""

from __future__ import annotations

import argparse
import difflib
import math
import re
import sys
import textwrap
from pathlib import Path

from depth_anything_ros.bag.bagfile import BagError
from depth_anything_ros.models.backends.choices import (
    BACKENDS,
    DEFAULT_PROVIDERS,
    OPENVINO_DEFAULT_DEVICE,
    OPENVINO_DEFAULT_PRECISION,
    OPENVINO_PRECISIONS,
)

PROG = "depth-anything-ros"
MODEL_DEFAULT = "hypersim-vits"
DEFAULT_FOV_DEG = 60.0  # estimate: horizontal field of view assumed when no intrinsics are given
BANNER_WIDTH = 78


class CommandError(Exception):
    """A problem with the user's input, reported as one line with exit code 2."""


def number(kind: type = float, low: float | None = None, high: float | None = None, *, above: bool = False,
           unit: str = ""):
    """Return an argparse type: int or finite float in [low, high] (low excluded with `above`), errors saying so."""
    if low is not None and high is not None:
        bounds = f"{'above' if above else 'at least'} {low:g} and at most {high:g}"
    elif low is not None:
        bounds = f"{'above' if above else 'at least'} {low:g}"
    else:
        bounds = f"at most {high:g}" if high is not None else ""
    what = "an integer" if kind is int else "a number"
    need = f"{what}{' ' + bounds if bounds else ''}{unit}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {need}, got {text!r}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected {need}, got {text!r}")
        if (low is not None and (value < low or (above and value == low))) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {need}, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def input_size(text: str) -> int:
    """Argparse type of --input-size: the rule every front-end states (models/input_size.py)."""
    from depth_anything_ros.models.input_size import check_input_size

    try:
        return check_input_size(int(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc) if text.strip().lstrip("-").isdigit() else
                                         f"expected an integer, got {text!r}") from None


def add_model_options(p: argparse.ArgumentParser, inference: bool = True, batch: bool = True) -> None:
    """Options that pick and place the model (shared by estimate, process, evaluate, demo, train and serve).

    `inference` False (train) leaves out --compile and --batch, which only apply to running the model; `batch` False
    (serve: one request per forward pass) leaves out --batch.
    """
    from depth_anything_ros.models.input_size import INPUT_SIZE_RULE
    from depth_anything_ros.models.variants import CHECKPOINTS, RELATIVE

    metric = ", ".join(name for name, spec in CHECKPOINTS.items() if spec.kind != RELATIVE)
    g = p.add_argument_group("model")
    g.add_argument("--checkpoint", default=MODEL_DEFAULT,
                   help=f"metric variant name ({metric}; '-hf' ones are transformers repos; da3metric-large needs "
                        f"intrinsics) or a .pth/.safetensors file or -hf folder (default {MODEL_DEFAULT}, from the "
                        "Hugging Face cache). Relative checkpoints are refused: they give no metres")
    g.add_argument("--encoder", choices=("vits", "vitb", "vitl"),
                   help="encoder of a checkpoint file (a variant name implies it; default: read from the file's "
                        "tensor shapes)")
    g.add_argument("--model-max-depth", type=number(float, 0.0, 1000.0, above=True, unit=" metres (the metric "
                                                     "head scale: 20 for Hypersim, 80 for VKITTI)"),
                   metavar="M",
                   help="metric head scale in metres: the largest depth the model outputs (a variant name or an "
                        "official file name implies it: 20 hypersim, 80 vkitti; needed for a renamed file)")
    g.add_argument("--input-size", type=input_size, metavar="N",
                   help=f"network input size, {INPUT_SIZE_RULE}; default: the official one of the model's family, "
                        "518 for Depth-Anything-V2 (the short side), 504 for DA3 (process_res, the long side); "
                        "smaller is faster, coarser" if inference else
                        f"side of the square training crops, {INPUT_SIZE_RULE} (default 518, the official "
                        "metric_depth/train.py value); the short side of the network input in validation")
    g.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    g.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16", "bf16"),
                   help="auto: bf16/fp16 on CUDA; on the CPU bf16 where native (avx512_bf16, amx_bf16), else fp32")
    if not inference:
        return
    g.add_argument("--compile", default="auto", choices=("auto", "on", "off"),
                   help="torch.compile the network; auto: on for CUDA, off for CPU. Each new image size or batch "
                        "size compiles once (can take minutes), so use off for a few images of many sizes")
    if batch:
        g.add_argument("--batch", type=number(int, 1), default=1, metavar="N",
                       help="frames per forward pass (default 1); larger batches help on a GPU")
    g.add_argument("--backend", default="torch", choices=BACKENDS,
                   help="what runs the network: torch (default), or onnxruntime or openvino with --checkpoint an "
                        "exported .onnx file (depth-anything-ros export); preprocessing and everything after the "
                        "network are the same code for all three (docs/onnx.md)")
    g.add_argument("--providers", default=",".join(DEFAULT_PROVIDERS), metavar="NAME[,NAME]",
                   help="onnxruntime only: execution providers in order of preference, comma-separated "
                        "(TensorrtExecutionProvider, CUDAExecutionProvider, OpenVINOExecutionProvider, "
                        "CPUExecutionProvider; default CPUExecutionProvider)")
    g.add_argument("--tensorrt-cache", default="", metavar="DIR",
                   help="TensorrtExecutionProvider only: keep its engines (one per input shape, minutes to build) "
                        "and timing cache in DIR")
    g.add_argument("--tensorrt-fp16", action="store_true", help="TensorrtExecutionProvider only: fp16 engines")
    g.add_argument("--openvino-device", default=OPENVINO_DEFAULT_DEVICE, metavar="DEVICE",
                   help=f"openvino only: the OpenVINO device that runs the network (default "
                        f"{OPENVINO_DEFAULT_DEVICE}; GPU, NPU where OpenVINO lists them)")
    g.add_argument("--openvino-precision", default=OPENVINO_DEFAULT_PRECISION, choices=tuple(OPENVINO_PRECISIONS),
                   help=f"openvino only: inference precision hint (default {OPENVINO_DEFAULT_PRECISION}, torch fp32's "
                        "numerics; bf16 or f16 only on a device that runs it natively)")
    g.add_argument("--no-self-check", action="store_true",
                   help="onnxruntime and openvino only: skip the startup self-check (one probe frame through the "
                        "backend and the PyTorch checkpoint it was exported from; a difference above the tolerance "
                        "exits 2)")
    g.add_argument("--sky", default="invalid", choices=("invalid", "official_fill"),
                   help="da3metric-large only: sky pixels are invalid, NaN (default), or get the official fill "
                        "(0.99-quantile of the other pixels' depth)")


# Library errors are worded for Python callers (DepthEstimator(max_depth=..., encoder=...)): CLI users get flags.
_CLI_WORDING = (
    (re.compile(r"max_depth is not known for (.+?): pass max_depth=20\.0 for Hypersim \(indoor\) checkpoints, "
                r"80\.0 for VKITTI \(outdoor\), or None for a relative checkpoint"),
     r"the metric head scale of \1 is not known (the file does not keep an official name): pass "
     r"--model-max-depth 20 for Hypersim (indoor) checkpoints or --model-max-depth 80 for VKITTI (outdoor)"),
    (re.compile(r"is a relative checkpoint \(ReLU head\); pass max_depth=None"),
     r"is a relative checkpoint (ReLU head, affine-invariant inverse depth, not metres): --model-max-depth does not "
     r"apply and the command-line tools need a metric checkpoint"),
    (re.compile(r"OpenVINO device '([^']+)' is not available here"),
     r"--openvino-device \1: no such OpenVINO device here"),
    (re.compile(r"OpenVINO device (\S+) does not run (\w+) natively"),
     r"--openvino-precision \2: OpenVINO device \1 does not run it natively"),
    (re.compile(r"encoder '(\w+)' was requested"), r"--encoder \1 was given"),
    (re.compile(r"encoder='(\w+)'"), r"--encoder \1"),
    (re.compile(r"\bpass encoder\b"), "pass --encoder"),
    (re.compile(r"\bmax_depth\b"), "--model-max-depth"),
)


def cli_wording(text: str) -> str:
    """Reword a library error for the command line: Python argument names become the flags that set them."""
    for pattern, replacement in _CLI_WORDING:
        text = pattern.sub(replacement, text)
    return text


def check_checkpoint_name(name: str, allow_relative: bool = False) -> None:
    """Refuse, before anything loads, a relative variant name (unless allowed) and a name that is no variant or path."""
    from depth_anything_ros.models.variants import CHECKPOINTS, METRIC, RELATIVE

    spec = CHECKPOINTS.get(name)
    if spec is not None and spec.kind == RELATIVE and not allow_relative:
        metric = [n for n, s in CHECKPOINTS.items() if s.kind == METRIC]
        close = difflib.get_close_matches(name.replace("relative", "hypersim"), metric, n=1)
        raise BagError(f"--checkpoint {name} is a relative model (affine-invariant inverse depth, not metres); "
                       f"the tools need a metric one{f' such as {close[0]}' if close else ''}: {', '.join(metric)}")
    if spec is None and not Path(name).expanduser().exists() and Path(name).suffix not in (".pth", ".pt",
                                                                                           ".safetensors"):
        from depth_anything_ros.models.checkpoint_io import CheckpointError, unknown_checkpoint_error

        raise CheckpointError(f"--checkpoint: {unknown_checkpoint_error(name)}")


def make_estimator(args: argparse.Namespace, announce_synthetic: bool = True, allow_relative: bool = False) -> object:
    """DepthEstimator from the model options; unset options keep DepthEstimator's defaults.

    Errors name the flags: CheckpointError (reworded, see cli_wording) or BagError for --input-size, --device,
    --precision. A checkpoint marked as synthetic weights is announced with a banner on stderr.
    """
    from depth_anything_ros.models.checkpoint_io import CheckpointError
    from depth_anything_ros.models.input_size import check_input_size
    from depth_anything_ros.models.registry import load_estimator
    from depth_anything_ros.models.v2.estimator import resolve_device, resolve_precision

    try:
        if args.input_size is not None:
            check_input_size(args.input_size)
    except ValueError as exc:
        raise BagError(f"invalid --input-size: {exc}") from None
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        raise BagError(f"invalid --device: {exc}") from None
    try:
        resolve_precision(args.precision, device)
    except ValueError as exc:
        raise BagError(f"invalid --precision: {exc}") from None
    backend = getattr(args, "backend", "torch")
    if backend == "torch" and str(args.checkpoint).endswith(".onnx"):
        raise CommandError(f"--checkpoint {args.checkpoint} is an exported ONNX file: add --backend onnxruntime or "
                           "--backend openvino")
    check_checkpoint_name(args.checkpoint, allow_relative)
    options = {"encoder": args.encoder, "max_depth": args.model_max_depth}
    compile_mode = {"on": True, "off": False}.get(getattr(args, "compile", "auto"), "auto")
    if backend != "torch":
        return _backend_estimator(args, backend, options, compile_mode, announce_synthetic)
    try:
        estimator = load_estimator(args.checkpoint, device=args.device, precision=args.precision,
                                   input_size=args.input_size, compile=compile_mode,
                                   sky=getattr(args, "sky", "invalid"),
                                   **{k: v for k, v in options.items() if v is not None})
    except CheckpointError as exc:
        raise CheckpointError(cli_wording(str(exc))) from None
    _announce(estimator, announce_synthetic)
    if args.precision == "auto" and device.type == "cpu":
        from depth_anything_ros.models.cpu_features import auto_cpu_precision_text

        print(auto_cpu_precision_text())
    return estimator


def _announce(estimator, announce_synthetic: bool) -> None:
    """Print the synthetic-weights banner on stderr when the checkpoint holds random weights."""
    from depth_anything_ros.models.checkpoint_io import is_synthetic

    if announce_synthetic and is_synthetic(estimator.checkpoint_path):
        print(banner(f"SYNTHETIC WEIGHTS: {Path(estimator.checkpoint_path).name} holds random weights with the "
                     "official shapes. Every depth, point cloud and metric is MEANINGLESS; only the pipeline is "
                     "real. Use a real checkpoint for results."), file=sys.stderr)


def _backend_estimator(args: argparse.Namespace, backend: str, options: dict, compile_mode: object,
                       announce_synthetic: bool) -> object:
    """Load the estimator of a non-torch --backend and self-check it unless --no-self-check; CommandError on failure."""
    from depth_anything_ros.models.backends.loader import load_backend_estimator
    from depth_anything_ros.models.backends.self_check import require_self_check

    providers = [name.strip() for name in args.providers.split(",") if name.strip()]
    try:
        estimator = load_backend_estimator(args.checkpoint, backend, providers, args.input_size,
                                           getattr(args, "sky", "invalid"), args.tensorrt_cache, args.tensorrt_fp16,
                                           args.openvino_device, args.openvino_precision, device=args.device,
                                           precision=args.precision, compile=compile_mode,
                                           **{k: v for k, v in options.items() if v is not None})
    except ValueError as exc:
        raise CommandError(f"--backend {backend}: {cli_wording(str(exc))}") from None
    _announce(estimator, announce_synthetic)
    if not args.no_self_check:
        try:
            print(f"{PROG}: {require_self_check(estimator).text()}", file=sys.stderr)
        except ValueError as exc:
            raise CommandError(f"{exc} (--no-self-check skips the check)") from None
    return estimator


def add_frame_options(p: argparse.ArgumentParser, cloud_layout: bool = True) -> None:
    """Per-frame output options (pipeline.FrameOptions), shared by process and estimate."""
    g = p.add_argument_group("outputs", "as the node's parameters of the same meaning (depth.scale, cloud.*, "
                                        "colored.colormap, camera.undistort)")
    g.add_argument("--depth-scale", type=number(float, 0.001, 1000.0), default=1.0, metavar="F",
                   help="multiply the estimated depth by this (depth.scale; bag evaluate --align scale suggests it)")
    g.add_argument("--stride", type=number(int, 1, 64), default=1, metavar="N",
                   help="cloud: every n-th row and column (default 1)")
    g.add_argument("--cloud-min-depth", type=number(float, 0.0, unit=" metres"), default=0.0, metavar="M",
                   help="cloud: points closer than this (metres) are invalid (cloud.min_depth; default 0)")
    g.add_argument("--cloud-max-depth", type=number(float, 0.0, unit=" metres"), default=0.0, metavar="M",
                   help="cloud: points farther than this (metres) are invalid (cloud.max_depth; default 0: no "
                        "limit)")
    if cloud_layout:
        g.add_argument("--unorganized", action="store_true",
                       help="cloud: drop invalid points (height 1, is_dense) instead of keeping the image grid "
                            "with NaN")
        g.add_argument("--no-undistort", action="store_true",
                       help="treat images as rectified even when camera_info has distortion coefficients")
    g.add_argument("--no-color", action="store_true", help="cloud: leave out the packed rgb field")
    g.add_argument("--colormap",
                   help="colormap of the colourised depth (0 m .. the model's max depth x --depth-scale; near = "
                        "warm, invalid = black), any OpenCV name (default turbo)")


def add_nav_options(p: argparse.ArgumentParser) -> None:
    """Navigation output options (edge filter, voxel grid, confidence gates, scan), as the node's parameters."""
    from depth_anything_ros.frame.scan import ScanOptions

    scan = ScanOptions()
    g = p.add_argument_group("navigation outputs", "as the node's cloud.edge_filter, cloud.voxel_size, "
                                                   "cloud.min_confidence and scan.* parameters")
    g.add_argument("--edge-filter", action="store_true",
                   help="drop flying pixels from points and scan (cloud.edge_filter)")
    g.add_argument("--edge-angle", type=number(float, 0.1, 45.0), default=5.0, metavar="DEG",
                   help="edge filter threshold in degrees (cloud.edge_angle_deg; default 5)")
    g.add_argument("--voxel-size", type=number(float, 0.0, 100.0, unit=" metres"), default=0.0, metavar="M",
                   help="one point per occupied voxel of this side (cloud.voxel_size; 0 = off); the cloud must be "
                        "unorganized")
    g.add_argument("--cloud-min-confidence", type=number(float, 0.0, 1.0), default=0.0, metavar="C",
                   help="points below this confidence are invalid (cloud.min_confidence; 0 = no gate)")
    g.add_argument("--scan-height", type=number(int, 1, 4096), default=scan.height, metavar="ROWS",
                   help=f"scan rows centred on the optical centre (scan.height; default {scan.height})")
    g.add_argument("--scan-range-min", type=number(float, 0.0, 1000.0), default=scan.range_min, metavar="M",
                   help=f"scan.range_min (default {scan.range_min})")
    g.add_argument("--scan-range-max", type=number(float, 0.001, 1000.0), default=scan.range_max, metavar="M",
                   help=f"scan.range_max (default {scan.range_max})")
    g.add_argument("--scan-frame", default=scan.output_frame, metavar="FRAME",
                   help=f"frame_id of the scan, x forward z up (scan.output_frame; default {scan.output_frame}; "
                        "'' = the image's)")
    g.add_argument("--scan-min-confidence", type=number(float, 0.0, 1.0), default=0.0, metavar="C",
                   help="scan pixels below this confidence are invalid (scan.min_confidence; 0 = no gate)")


def _nav_fields(args: argparse.Namespace) -> dict:
    """FrameOptions fields of add_nav_options' flags; none when the subcommand has no such flags."""
    from depth_anything_ros.frame.scan import ScanOptions

    if not hasattr(args, "edge_filter"):
        return {}
    scan = ScanOptions(height=args.scan_height, range_min=args.scan_range_min, range_max=args.scan_range_max,
                       output_frame=args.scan_frame, min_confidence=args.scan_min_confidence)
    return {"edge_filter": args.edge_filter, "edge_angle_deg": args.edge_angle, "voxel_size": args.voxel_size,
            "cloud_min_confidence": args.cloud_min_confidence, "scan": scan}


def scale_options(args: argparse.Namespace) -> object:
    """scale.ScaleOptions of bag process's metric scale options (mode fixed without them)."""
    from depth_anything_ros.frame.scale import ScaleOptions

    if args.scale_reference and args.camera_height:
        raise BagError("give --scale-reference or --camera-height, not both")
    mode = "reference" if args.scale_reference else "ground_plane" if args.camera_height else "fixed"
    return ScaleOptions(mode=mode, time_constant=args.scale_time_constant, camera_height=args.camera_height or 0.0,
                        floor_pitch_deg=args.floor_pitch)


def frame_options(args: argparse.Namespace) -> object:
    """pipeline.FrameOptions from the options of add_frame_options; BagError naming the flag."""
    from depth_anything_ros.frame.colorize import COLORMAPS, DEFAULT_COLORMAP
    from depth_anything_ros.frame.pipeline import FrameOptions

    colormap = args.colormap or DEFAULT_COLORMAP
    if args.cloud_max_depth > 0 and args.cloud_min_depth >= args.cloud_max_depth:
        raise BagError(f"--cloud-min-depth {args.cloud_min_depth:g} must be below --cloud-max-depth "
                       f"{args.cloud_max_depth:g} (0 = no limit)")
    if colormap.lower() not in COLORMAPS:
        close = difflib.get_close_matches(colormap.lower(), COLORMAPS, n=1)
        raise BagError(f"unknown --colormap {colormap!r}; {f'did you mean {close[0]!r}? ' if close else ''}"
                       f"choose from {', '.join(COLORMAPS)}")
    try:
        return FrameOptions(depth_scale=args.depth_scale, cloud_stride=args.stride,
                            cloud_min_depth=args.cloud_min_depth, cloud_max_depth=args.cloud_max_depth,
                            cloud_color=not args.no_color, cloud_organized=not getattr(args, "unorganized", False),
                            colormap=colormap, undistort=not getattr(args, "no_undistort", False),
                            **_nav_fields(args))
    except ValueError as exc:
        raise BagError(f"invalid output options: {exc}") from exc


def banner(text: str) -> str:
    """Wrap text into a loud box of exclamation marks BANNER_WIDTH wide (a long word, e.g. a file name, is split)."""
    rule = "!" * BANNER_WIDTH
    lines = textwrap.wrap(text, BANNER_WIDTH - 7)  # "!!  " + text + at least one space + "!!"
    return "\n".join([rule, *(f"!!  {line}".ljust(BANNER_WIDTH - 2) + "!!" for line in lines), rule])
