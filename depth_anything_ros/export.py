"""`depth-anything-ros export`: a checkpoint's network to ONNX with its sidecar, and `--check` in ONNX Runtime.

The parser is light (no torch): the work is models/backends/export.py, imported by the handler.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from depth_anything_ros.cli_options import MODEL_DEFAULT, PROG, CommandError, input_size, number


def register(subparsers) -> None:
    """Add the `export` subcommand."""
    p = subparsers.add_parser(
        "export", help="export a checkpoint's network to ONNX (for --backend onnxruntime or openvino)",
        description="Write the fp32 network of a checkpoint (Depth-Anything-V2 any encoder, metric heads with their "
                    "max depth; DA3METRIC-LARGE) to OUT.onnx, ONNX opset 18, one file, and OUT.json beside it (family, "
                    "encoder, max depth, input size, the preprocessing contract, the source checkpoint's sha256, "
                    "synthetic or not), which the onnxruntime and openvino backends read. The input size is fixed: "
                    "batch 1 (batches run frame by frame) and the network input of --image-size images; frames of "
                    "another size are refused, naming the size to export for. Preprocessing and the resize back are "
                    "not in the file: the package runs them, the same code as with torch. See docs/onnx.md.")
    g = p.add_argument_group("model")
    g.add_argument("--checkpoint", default=MODEL_DEFAULT,
                   help=f"variant name or checkpoint file, as for estimate (default {MODEL_DEFAULT})")
    g.add_argument("--encoder", choices=("vits", "vitb", "vitl"), help="encoder of a checkpoint file")
    g.add_argument("--model-max-depth", type=number(float, 0.0, 1000.0, above=True, unit=" metres"), metavar="M",
                   help="metric head scale of a renamed V2 file (20 hypersim, 80 vkitti)")
    g.add_argument("--input-size", type=input_size, metavar="N",
                   help="network input size (default: the family's, 518 for V2, 504 for DA3)")
    p.add_argument("--image-size", nargs=2, type=number(int, 14, 8192), default=(640, 480),
                   metavar=("WIDTH", "HEIGHT"), help="size of the camera images the file will serve (default 640 480)")
    p.add_argument("--out", required=True, type=Path, metavar="FILE.onnx", help="the ONNX file to write")
    p.add_argument("--check", action="store_true",
                   help="run the written file in ONNX Runtime (CPU) and PyTorch on a probe frame and print the max "
                        "and mean depth difference in metres; exit 2 above the self-check tolerance")
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    """Export, print what was written, and with --check compare ONNX Runtime with PyTorch on a probe frame."""
    from depth_anything_ros.cli_options import check_checkpoint_name, cli_wording
    from depth_anything_ros.models.backends.export import export_onnx
    from depth_anything_ros.models.backends.loader import load_onnx_estimator
    from depth_anything_ros.models.backends.self_check import run_self_check
    from depth_anything_ros.models.checkpoint_io import CheckpointError
    from depth_anything_ros.models.registry import load_estimator

    if args.out.suffix != ".onnx":
        raise CommandError(f"--out {args.out} must end in .onnx (the sidecar is written beside it as .json)")
    check_checkpoint_name(args.checkpoint)
    options = {k: v for k, v in (("encoder", args.encoder), ("max_depth", args.model_max_depth)) if v is not None}
    try:
        estimator = load_estimator(args.checkpoint, device="cpu", precision="fp32", input_size=args.input_size,
                                   compile=False, **options)
    except CheckpointError as exc:
        raise CheckpointError(cli_wording(str(exc))) from None
    exported = export_onnx(estimator, args.out, tuple(args.image_size))
    side = exported.sidecar
    print(f"{PROG} export: wrote {exported.onnx_path} ({exported.onnx_path.stat().st_size / 1e6:.1f} MB, opset "
          f"{side.opset}, network input 1x3x{side.network_size[0]}x{side.network_size[1]} for "
          f"{side.image_size[0]}x{side.image_size[1]} images) and {exported.sidecar_path.name} in "
          f"{exported.seconds:.1f} s")
    if not args.check:
        return 0
    check = run_self_check(load_onnx_estimator(exported.onnx_path, device="cpu"), reference=estimator)
    print(f"{PROG} export --check: ONNX Runtime CPU vs PyTorch fp32 on a {side.image_size[0]}x{side.image_size[1]} "
          f"probe frame: max |diff| {check.max_diff:.3g} m, mean |diff| {check.mean_diff:.3g} m "
          f"(self-check tolerance {check.max_tolerance:.3g} m max, {check.mean_tolerance:.3g} m mean)")
    if not check.passed:
        print(f"{PROG}: error: the exported file differs from PyTorch beyond the self-check tolerance",
              file=sys.stderr)
        return 2
    return 0
