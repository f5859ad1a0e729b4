"""`depth-anything-ros bag sample|process|evaluate|play|record`: argument parsing and the runs behind them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from depth_anything_ros.bag.bagfile import STORAGES, BagError

MODEL_DEFAULT = "hypersim-vits"


def add_model_options(p: argparse.ArgumentParser, max_depth_flag: str = "--max-depth") -> None:
    """Options that pick and place the model (shared by process, evaluate and demo)."""
    g = p.add_argument_group("model")
    g.add_argument("--checkpoint", default=MODEL_DEFAULT,
                   help=f"variant name (hypersim-vits/vitb/vitl, vkitti-..., '-hf' for transformers repos) or a "
                        f".pth/.safetensors file or -hf folder (default {MODEL_DEFAULT}, from the Hugging Face cache)")
    g.add_argument("--encoder", choices=("vits", "vitb", "vitl"),
                   help="encoder of a checkpoint file (a variant name implies it; default vits)")
    g.add_argument(max_depth_flag, type=float, dest="model_max_depth",
                   help="metric head scale in metres of a checkpoint file (a variant name implies it: 20 hypersim, "
                        "80 vkitti)")
    g.add_argument("--input-size", type=int, default=518,
                   help="network input short side, a multiple of 14 (default 518); smaller is faster, coarser")
    g.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    g.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16", "bf16"),
                   help="auto: fp32 on CPU, bf16/fp16 on CUDA")
    g.add_argument("--compile", default="auto", choices=("auto", "on", "off"),
                   help="torch.compile the network; auto: on for CUDA, off for CPU. Each new image size or batch "
                        "size compiles once (can take minutes), so use off for a few images of many sizes")
    g.add_argument("--batch", type=int, default=1, metavar="N",
                   help="frames per forward pass (default 1); larger batches help on a GPU")


def make_estimator(args: argparse.Namespace) -> object:
    """DepthEstimator from the model options; unset options keep DepthEstimator's defaults."""
    from depth_anything_ros.estimator import DepthEstimator

    from depth_anything_ros.preprocess import check_input_size

    try:
        check_input_size(args.input_size)
    except ValueError as exc:
        raise BagError(f"invalid --input-size: {exc}") from None
    options = {"encoder": args.encoder, "max_depth": args.model_max_depth}
    compile_mode = {"on": True, "off": False}.get(args.compile, "auto")
    return DepthEstimator(checkpoint=args.checkpoint, device=args.device, precision=args.precision,
                          input_size=args.input_size, compile=compile_mode,
                          **{k: v for k, v in options.items() if v is not None})


def add_frame_options(p: argparse.ArgumentParser, cloud_layout: bool = True) -> None:
    """Per-frame output options (pipeline.FrameOptions), shared by process and estimate."""
    g = p.add_argument_group("outputs", "as the node's parameters of the same meaning (depth.scale, cloud.*, "
                                        "colored.colormap, camera.undistort)")
    g.add_argument("--depth-scale", type=float, default=1.0,
                   help="multiply the estimated depth by this (depth.scale; bag evaluate --align scale suggests it)")
    g.add_argument("--stride", type=int, default=1, help="cloud: every n-th row and column (default 1)")
    g.add_argument("--min-depth", type=float, default=0.0,
                   help="cloud: points closer than this (metres) are invalid (default 0)")
    g.add_argument("--max-depth-cloud", type=float, default=0.0,
                   help="cloud: points farther than this (metres) are invalid (default 0: no limit)")
    if cloud_layout:
        g.add_argument("--unorganized", action="store_true",
                       help="cloud: drop invalid points (height 1, is_dense) instead of keeping the image grid "
                            "with NaN")
        g.add_argument("--no-undistort", action="store_true",
                       help="treat images as rectified even when camera_info has distortion coefficients")
    g.add_argument("--no-color", action="store_true", help="cloud: leave out the packed rgb field")
    g.add_argument("--colormap", default="turbo",
                   help="colormap of the colourised depth (0 m .. the model's max depth x --depth-scale), any "
                        "OpenCV name (default turbo)")


def frame_options(args: argparse.Namespace) -> object:
    """pipeline.FrameOptions from the options of add_frame_options; BagError naming the problem."""
    from depth_anything_ros.pipeline import FrameOptions

    try:
        return FrameOptions(depth_scale=args.depth_scale, cloud_stride=args.stride, cloud_min_depth=args.min_depth,
                            cloud_max_depth=args.max_depth_cloud, cloud_color=not args.no_color,
                            cloud_organized=not getattr(args, "unorganized", False), colormap=args.colormap,
                            undistort=not getattr(args, "no_undistort", False))
    except ValueError as exc:
        raise BagError(f"invalid output options: {exc}") from exc


def _storage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", choices=sorted(STORAGES), default="mcap",
                   help="storage of the new bag: mcap (default, ROS 2 Iron and newer, Foxglove) or sqlite3 (every "
                        "ROS 2 release)")


def _register_sample(sub: argparse._SubParsersAction) -> None:
    from depth_anything_ros.bag.sample import SampleConfig

    d = SampleConfig()
    p = sub.add_parser(
        "sample", help="render a synthetic bag with exact ground-truth depth",
        description="Render a synthetic room (textured floor, walls and boxes at known positions) through a pinhole "
                    "camera walking slowly forward, and write a bag with <ns>/image (or <ns>/image/compressed), "
                    "<ns>/camera_info, <ns>/depth_gt (32FC1 metres, NaN invalid) and <ns>/depth_gt_mm (16UC1 "
                    "millimetres, 0 invalid), all with the same header stamps and frame_id. A glass pane in the far "
                    "wall has no ground truth, like a real depth camera.")
    p.add_argument("out", type=Path, metavar="OUT", help="new bag directory (must not exist)")
    p.add_argument("--frames", type=int, default=d.frames, help=f"number of frames (default {d.frames})")
    p.add_argument("--rate", type=float, default=d.rate, help=f"frame rate in Hz (default {d.rate:g})")
    p.add_argument("--width", type=int, default=d.width, help=f"image width in pixels (default {d.width})")
    p.add_argument("--height", type=int, default=d.height, help=f"image height in pixels (default {d.height})")
    p.add_argument("--fov", type=float, default=d.fov_deg,
                   help=f"horizontal field of view in degrees (default {d.fov_deg:g})")
    p.add_argument("--distortion", action="store_true",
                   help="render through plumb_bob barrel distortion (D in camera_info) instead of an ideal pinhole")
    p.add_argument("--encoding", choices=("rgb8", "bgr8", "jpeg"), default=d.encoding,
                   help="rgb8/bgr8 sensor_msgs/Image on <ns>/image, or jpeg sensor_msgs/CompressedImage on "
                        "<ns>/image/compressed (default rgb8)")
    p.add_argument("--namespace", default=d.namespace, help=f"topic namespace (default {d.namespace})")
    p.add_argument("--frame-id", default=d.frame_id, help=f"header frame_id (default {d.frame_id})")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the procedural textures (default 0)")
    _storage(p)
    p.set_defaults(func=run_sample)


def run_sample(args: argparse.Namespace) -> int:
    """Write the sample bag."""
    from depth_anything_ros.bag.sample import SampleConfig, write_sample_bag

    cfg = SampleConfig(width=args.width, height=args.height, frames=args.frames, rate=args.rate, fov_deg=args.fov,
                       distortion=args.distortion, encoding=args.encoding, namespace=args.namespace,
                       frame_id=args.frame_id, seed=args.seed, storage=args.storage)
    try:
        topics = write_sample_bag(args.out, cfg)
    except ValueError as exc:
        raise BagError(str(exc)) from exc
    print(f"sample bag {args.out}: {cfg.frames} frames {cfg.width}x{cfg.height} at {cfg.rate:g} Hz; topics "
          + ", ".join(topics.values()))
    return 0


def _register_process(sub: argparse._SubParsersAction) -> None:
    from depth_anything_ros.bag.process import OUTPUTS

    p = sub.add_parser(
        "process", help="run the model over a bag, write a new bag with depth and points",
        description="Copy every topic of IN into the new bag OUT and add, under the image topic's namespace "
                    "(/camera/image -> /camera/...): depth (32FC1 metres), depth/camera_info, points (PointCloud2) "
                    "and depth/colored (rgb8). Each output carries the input image's header stamp and frame_id and "
                    "is logged at the input's log time. Ctrl-C stops after the current batch and leaves a valid bag "
                    "with what was done.")
    p.add_argument("input", type=Path, metavar="IN", help="input bag directory (mcap or sqlite3)")
    p.add_argument("output", type=Path, metavar="OUT", help="new output bag directory (must not exist)")
    p.add_argument("--image-topic", help="sensor_msgs/Image or CompressedImage topic; default: the only image topic")
    p.add_argument("--camera-info-topic",
                   help="CameraInfo topic; default: <namespace>/camera_info, else the only CameraInfo topic")
    p.add_argument("--fov", type=float, default=0.0, metavar="DEG",
                   help="bags without camera_info: horizontal field of view of an ideal pinhole for the points")
    p.add_argument("--topics", default=",".join(OUTPUTS),
                   help=f"comma-separated outputs to write, of {','.join(OUTPUTS)} (default all)")
    add_model_options(p)
    add_frame_options(p)
    p.add_argument("--strict", action="store_true",
                   help="stop at the first frame with a problem (bad image, unusable camera_info, model failure) "
                        "instead of skipping what it costs and counting it in the summary")
    _storage(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_process)


def run_process(args: argparse.Namespace) -> int:
    """Process a bag and print the summary; exit code 130 when interrupted."""
    from depth_anything_ros.bag.process import ProcessOptions, process_bag

    opts = ProcessOptions(
        image_topic=args.image_topic, camera_info_topic=args.camera_info_topic,
        outputs=tuple(t.strip() for t in args.topics.split(",") if t.strip()), storage=args.storage,
        batch=args.batch, frame=frame_options(args), fov_deg=args.fov, strict=args.strict,
        progress=not args.no_progress)
    estimator = make_estimator(args)
    summary = process_bag(args.input, args.output, estimator, opts)
    print(summary.text())
    return 130 if summary.interrupted else 0


def _register_evaluate(sub: argparse._SubParsersAction) -> None:
    from depth_anything_ros.metrics import ALIGN_MODES

    p = sub.add_parser(
        "evaluate", help="compare predicted metric depth with a bag's ground-truth depth",
        description="Pair each prediction (the model run on --image-topic, or a recorded --pred-topic) with the "
                    "ground-truth depth message of the same header stamp and report AbsRel, SqRel, RMSE, RMSE log, "
                    "MAE, SiLog, log10 and delta1/2/3 (Depth Anything V2 definitions) per frame and overall (mean "
                    "over frames), on valid ground-truth pixels inside [--min-depth, --max-depth]. Ground truth is "
                    "16UC1 millimetres (0 invalid) or 32FC1 metres (non-finite invalid), REP 118.")
    p.add_argument("input", type=Path, metavar="IN", help="bag directory (mcap or sqlite3)")
    p.add_argument("--gt-topic", required=True, help="ground-truth depth topic (sensor_msgs/Image 16UC1 or 32FC1)")
    p.add_argument("--image-topic", help="image topic the model runs on; default: the only image topic other than "
                                         "the ground truth")
    p.add_argument("--pred-topic",
                   help="evaluate this recorded depth topic (e.g. /camera/depth from bag process) instead of running "
                        "the model")
    p.add_argument("--align", choices=ALIGN_MODES, default="none",
                   help="none: raw metric depth; scale: also fit one least-squares scale for the whole bag "
                        "(prints the depth.scale that corrects it) and report metrics after it; scale_shift: scale "
                        "and offset")
    p.add_argument("--min-depth", type=float, default=0.001,
                   help="ground truth below this (metres) is ignored (default 0.001)")
    p.add_argument("--max-depth", type=float, default=20.0,
                   help="ground truth above this (metres) is ignored (default 20; 80 outdoors); predictions are "
                        "used as they are")
    p.add_argument("--stamp-tolerance", type=float, default=0.0, metavar="S",
                   help="largest stamp difference in seconds between a prediction and its ground truth (default 0: "
                        "equal stamps)")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="write metrics.json, per_frame.csv and PNG plots into DIR (created if needed)")
    add_model_options(p, max_depth_flag="--model-max-depth")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    """Evaluate and print the report."""
    from depth_anything_ros.bag.evaluate import EvaluateOptions, evaluate_bag

    opts = EvaluateOptions(gt_topic=args.gt_topic, image_topic=args.image_topic, pred_topic=args.pred_topic,
                           align=args.align, min_depth=args.min_depth, max_depth=args.max_depth,
                           stamp_tolerance=args.stamp_tolerance, batch=args.batch, report=args.report,
                           progress=not args.no_progress)
    estimator = None if args.pred_topic else make_estimator(args)
    result = evaluate_bag(args.input, estimator, opts)
    print(result.text())
    return 0


def _register_play(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "play", help="publish a bag's messages into the ROS graph with their recorded timing",
        description="Publish every message (or --topics) of IN with the recorded spacing of log times, divided by "
                    "--rate, keeping the messages' bytes (and so their header stamps) as recorded, like "
                    "'ros2 bag play'. The first message waits for the subscribers (--expect, else --delay), and "
                    "play exits only when every reliable subscriber has acknowledged every message (at most 10 s "
                    "after the last one). For machines without rosbag2 (e.g. ROS 2 from PyPI wheels).")
    p.add_argument("input", type=Path, metavar="IN", help="bag directory (mcap or sqlite3)")
    p.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1.0)")
    p.add_argument("--loop", action="store_true", help="start over at the end until Ctrl-C")
    p.add_argument("--clock", nargs="?", type=float, const=100.0, default=0.0, metavar="HZ",
                   help="publish /clock (rosgraph_msgs/Clock) with the bag time at HZ (default 100 when given), for "
                        "nodes with use_sim_time")
    p.add_argument("--topics", nargs="+", metavar="TOPIC", help="only these topics (default all)")
    p.add_argument("--expect", nargs="+", action="extend", default=[], metavar="TOPIC[:N]",
                   help="before the first message, wait (without time limit) until TOPIC has N matched subscribers "
                        "(default 1), e.g. --expect /camera/image:2 /clock:2 for a node and a recorder; any "
                        "played topic, and /clock with --clock")
    p.add_argument("--delay", type=float, default=1.0, metavar="S",
                   help="without --expect: wait up to S seconds for a matched subscriber on every played topic "
                        "before the first message (default 1.0); with more subscribers per topic use --expect")
    p.add_argument("--qos-reliability", choices=("reliable", "best_effort"), default="reliable",
                   help="reliability of the publishers (default reliable, which best-effort subscribers hear too)")
    p.set_defaults(func=run_play)


def run_play(args: argparse.Namespace) -> int:
    """Play a bag."""
    from depth_anything_ros.bag.play import PlayOptions, parse_expect, play_bag

    opts = PlayOptions(rate=args.rate, loop=args.loop, clock_hz=args.clock, topics=args.topics,
                       delay=args.delay, reliable=args.qos_reliability == "reliable",
                       expect=parse_expect(args.expect))
    count = play_bag(args.input, opts)
    print(f"published {count} messages from {args.input}", file=sys.stderr)
    return 0


def _register_record(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "record", help="record topics of the ROS graph into a new bag",
        description="Subscribe to TOPICS (their types are discovered from the graph) and write the serialized "
                    "messages unchanged into the new bag OUT, logged at their arrival time, until Ctrl-C (or "
                    "SIGTERM) or --duration. Then it goes on writing what still arrives until the topics are quiet "
                    "for 0.3 s (at most 2 s; a second Ctrl-C stops at once), closes the bag cleanly and prints the "
                    "messages received per topic.")
    p.add_argument("output", type=Path, metavar="OUT", help="new bag directory (must not exist)")
    p.add_argument("topics", nargs="+", metavar="TOPIC", help="topics to record")
    p.add_argument("--duration", type=float, default=0.0, metavar="S", help="stop after S seconds (default: Ctrl-C)")
    p.add_argument("--qos-reliability", choices=("auto", "reliable", "best_effort"), default="auto",
                   help="reliability of the subscriptions; auto (default): reliable when every publisher of the topic "
                        "offers it (no losses), else best_effort (hears every publisher)")
    _storage(p)
    p.set_defaults(func=run_record)


def run_record(args: argparse.Namespace) -> int:
    """Record topics."""
    from depth_anything_ros.bag.record import RecordOptions, record_bag

    opts = RecordOptions(topics=args.topics, duration=args.duration, storage=args.storage,
                         reliability=args.qos_reliability)
    counts = record_bag(args.output, opts)
    print(f"recorded {sum(counts.values())} messages into {args.output}: "
          + ", ".join(f"{t} {n}" for t, n in counts.items()), file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `bag` with its subcommands to the top-level parser."""
    bag = subparsers.add_parser("bag", help="rosbag tools: sample, process, evaluate, play, record",
                                description="Rosbag2 (mcap and sqlite3) tools built on the rosbags library; "
                                            "they need no rosbag2 install.")
    sub = bag.add_subparsers(dest="bag_command", required=True, metavar="BAG_COMMAND")
    _register_sample(sub)
    _register_process(sub)
    _register_evaluate(sub)
    _register_play(sub)
    _register_record(sub)
