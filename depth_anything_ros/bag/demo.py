"""`depth-anything-ros demo`: the main job end to end: sample bag -> bag process -> bag evaluate --align scale."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from depth_anything_ros.bag.bagfile import BagError
from depth_anything_ros.cli_options import PROG, add_model_options, banner, make_estimator


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `demo` subcommand."""
    p = subparsers.add_parser(
        "demo", help="render a sample bag, process it and evaluate the depth against its ground truth",
        description="The main job end to end, without a robot: render the synthetic sample bag (OUT/sample_bag), "
                    "run the model over it with 'bag process' (OUT/processed_bag: depth, camera_info, points, "
                    "colourised depth) and compare the depth with the exact ground truth with 'bag evaluate "
                    "--align scale' (OUT/report: metrics.json, per_frame.csv, plots). When the checkpoint is not "
                    "available (offline, not in the Hugging Face cache) it uses synthetic weights instead and says "
                    "so loudly: the pipeline is real, the numbers are meaningless.")
    p.add_argument("--out", type=Path, default=Path("demo_output"),
                   help="output directory (default ./demo_output); earlier demo results in it are replaced")
    p.add_argument("--frames", type=int, default=20, help="frames in the sample bag (default 20)")
    p.add_argument("--width", type=int, default=320, help="sample image width (default 320)")
    p.add_argument("--height", type=int, default=240, help="sample image height (default 240)")
    p.add_argument("--distortion", action="store_true", help="render the sample through plumb_bob distortion")
    add_model_options(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run_demo)


SYNTHETIC_WARNING = ("SYNTHETIC WEIGHTS: no real Depth-Anything-V2 checkpoint was found. The model ran on random "
                     "weights with the official shapes. Every depth, point cloud and metric below is MEANINGLESS; "
                     "only the pipeline is real. Fetch real weights (README, 'Real weights') and run the demo "
                     "again.")


def _estimator(args: argparse.Namespace) -> tuple[object, bool]:
    """Load the requested model, or synthetic weights when it cannot be loaded; (estimator, synthetic)."""
    from depth_anything_ros.models.checkpoint_io import CheckpointError
    from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint
    from depth_anything_ros.models.variants import CHECKPOINTS, METRIC_FOCAL

    try:
        return make_estimator(args), False
    except CheckpointError as exc:
        if args.checkpoint not in CHECKPOINTS:  # a file the user named: their error, not a reason to fake weights
            raise
        print(f"checkpoint {args.checkpoint} not available: {exc}", file=sys.stderr)
    if CHECKPOINTS[args.checkpoint].kind == METRIC_FOCAL:  # DA3: its own official-format synthetic file (1.3 GB)
        from depth_anything_ros.models.da3.checkpoint import write_synthetic_da3_checkpoint

        path = args.out / "synthetic_da3metric_large.safetensors"
        if not path.exists():
            write_synthetic_da3_checkpoint(path, 0)
        args.checkpoint = str(path)
        return make_estimator(args, announce_synthetic=False), True
    encoder = args.encoder or "vits"
    path = args.out / f"synthetic_{encoder}.safetensors"  # marked synthetic in its metadata, named so in reports
    if not path.exists():
        write_synthetic_checkpoint(path, encoder, 0)
    args.checkpoint, args.encoder = str(path), encoder
    args.model_max_depth = args.model_max_depth or 20.0
    return make_estimator(args, announce_synthetic=False), True  # the demo says it louder itself


def _clear(path: Path, marker: str) -> None:
    """Remove an earlier demo result (a directory holding `marker`); refuse anything else."""
    if not path.exists():
        return
    if not (path / marker).exists():
        raise BagError(f"{path} exists and is not an earlier demo result; choose another --out")
    shutil.rmtree(path)


def run_demo(args: argparse.Namespace) -> int:
    """Run sample -> process -> evaluate, each step announced before it runs, and print the summary and the paths."""
    from depth_anything_ros.bag.evaluate import EvaluateOptions, evaluate_bag
    from depth_anything_ros.bag.process import ProcessOptions, process_bag
    from depth_anything_ros.bag.sample import SampleConfig, write_sample_bag, write_sample_image

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    sample, processed, report = out / "sample_bag", out / "processed_bag", out / "report"
    estimator, synthetic = _estimator(args)
    _clear(sample, "metadata.yaml")
    _clear(processed, "metadata.yaml")
    _clear(report, "metrics.json")
    if synthetic:
        print(banner(SYNTHETIC_WARNING), file=sys.stderr, flush=True)
    cfg = SampleConfig(width=args.width, height=args.height, frames=args.frames, distortion=args.distortion)
    topics = write_sample_bag(sample, cfg)
    image = write_sample_image(out / "sample.png", cfg)
    print(f"[1/3] sample bag: {sample} ({cfg.frames} frames {cfg.width}x{cfg.height}) and its first image: {image}",
          flush=True)
    print(f"[2/3] bag process {sample} {processed}", flush=True)  # before the step's own progress lines on stderr
    summary = process_bag(sample, processed, estimator,
                          ProcessOptions(image_topic=topics["image"], batch=args.batch, progress=not args.no_progress))
    print(summary.text(), flush=True)
    if summary.interrupted:
        return 130
    options = EvaluateOptions(gt_topic=topics["depth_gt"], pred_topic=f"{cfg.namespace}/depth", align="scale",
                              min_depth=0.1, max_depth=estimator.max_depth or 20.0, report=report,
                              progress=not args.no_progress)
    print(f"[3/3] {PROG} bag evaluate {processed} --pred-topic {options.pred_topic} --gt-topic {options.gt_topic} "
          f"--align {options.align} --gt-min-depth {options.min_depth:g} --gt-max-depth {options.max_depth:g} "
          f"--report {report}", flush=True)
    result = evaluate_bag(processed, None, options)
    print(result.text())
    print(f"\nmodel: {estimator.checkpoint_path} ({estimator.encoder}, input size {estimator.input_size}, "
          f"{estimator.device})")
    scale = f" --model-max-depth {estimator.max_depth:g}" if estimator.max_depth else ""
    print(f"one image: {PROG} estimate {image} --checkpoint {args.checkpoint}{scale} --fov {cfg.fov_deg:g} "
          f"--out {out / 'estimate'}")
    if synthetic:
        print(banner(SYNTHETIC_WARNING))
    return 0
