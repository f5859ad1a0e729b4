"""`depth-anything-ros bag sample|process|evaluate|play|record`: argument parsing and the runs behind them.

The options the model-running subcommands share, and their checks, are in bag/options.py.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from depth_anything_ros.bag.bagfile import STORAGES, BagError, check_bag, check_namespace
from depth_anything_ros.cli_options import (
    add_frame_options,
    add_model_options,
    add_nav_options,
    check_checkpoint_name,
    frame_options,
    make_estimator,
    number,
    scale_options,
)


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
    p.add_argument("--frames", type=number(int, 1), default=d.frames, help=f"number of frames (default {d.frames})")
    p.add_argument("--rate", type=number(float, 0.0, above=True), default=d.rate,
                   help=f"frame rate in Hz (default {d.rate:g})")
    p.add_argument("--width", type=number(int, 2, 8192), default=d.width,
                   help=f"image width in pixels (default {d.width})")
    p.add_argument("--height", type=number(int, 2, 8192), default=d.height,
                   help=f"image height in pixels (default {d.height})")
    p.add_argument("--fov", type=number(float, 0.0, 179.0, above=True), default=d.fov_deg, metavar="DEG",
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


def check_new_bag_path(path: Path, option: str = "OUT") -> None:
    """Refuse an output bag path that exists (bags are never overwritten) before any work is done."""
    if path.exists():
        raise BagError(f"output {path} ({option}) exists already; choose a new path (bags are never overwritten)")


def run_sample(args: argparse.Namespace) -> int:
    """Write the sample bag."""
    from depth_anything_ros.bag.sample import SampleConfig, write_sample_bag

    check_new_bag_path(args.out)
    namespace = check_namespace(args.namespace, "--namespace")
    cfg = SampleConfig(width=args.width, height=args.height, frames=args.frames, rate=args.rate, fov_deg=args.fov,
                       distortion=args.distortion, encoding=args.encoding, namespace=namespace,
                       frame_id=args.frame_id, seed=args.seed, storage=args.storage)
    try:
        topics = write_sample_bag(args.out, cfg)
    except ValueError as exc:
        raise BagError(str(exc)) from exc
    print(f"sample bag {args.out}: {cfg.frames} frames {cfg.width}x{cfg.height} at {cfg.rate:g} Hz; topics "
          + ", ".join(topics.values()))
    return 0


def _register_process(sub: argparse._SubParsersAction) -> None:
    from depth_anything_ros.bag.frames import DEFAULT_OUTPUTS, OUTPUTS

    p = sub.add_parser(
        "process", help="run the model over a bag, write a new bag with depth and points",
        description="Copy every topic of IN into the new bag OUT and add, under the image topic's namespace "
                    "(/camera/image -> /camera/...) or --output-namespace: depth (32FC1 metres), "
                    "depth/camera_info, points (PointCloud2) and depth/colored (rgb8). Each output carries the "
                    "input image's header stamp and frame_id and is logged at the input's log time. Ctrl-C stops "
                    "after the current batch and leaves a valid bag with what was done. Several IN bags go into "
                    "the new folder OUT, one output bag each named after its input, processed in parallel with "
                    "--devices.")
    p.add_argument("input", type=Path, nargs="+", metavar="IN", help="input bag directory (mcap or sqlite3)")
    p.add_argument("output", type=Path, metavar="OUT",
                   help="new output bag directory (must not exist); with several IN, a new folder for their outputs")
    p.add_argument("--devices", type=_device_list, metavar="LIST",
                   help="several IN: comma-separated devices, one worker process with its own model each, e.g. "
                        "cuda:0,cuda:1 or cpu,cpu (default: one after the other on --device); a bag's output does "
                        "not depend on the worker that made it")
    p.add_argument("--image-topic", help="sensor_msgs/Image or CompressedImage topic; default: the only image topic")
    p.add_argument("--camera-info-topic",
                   help="CameraInfo topic; default: <namespace>/camera_info, else the one CameraInfo topic whose "
                        "first message has the image's frame_id and size (or the image is a uniform resize of it), "
                        "e.g. .../Color_0/info/camera_info for .../Color_0/image/data in RealSense bags")
    p.add_argument("--output-namespace", metavar="NS",
                   help="write the outputs as NS/depth, NS/depth/camera_info, NS/points, NS/depth/colored, ... "
                        "(default: the image topic's namespace, /camera for /camera/image)")
    p.add_argument("--fov", type=number(float, 0.0, 179.0, above=True), default=None, metavar="DEG",
                   help="bags without camera_info: horizontal field of view of an ideal pinhole for the points")
    p.add_argument("--topics", default=",".join(DEFAULT_OUTPUTS),
                   help=f"comma-separated outputs to write, of {','.join(OUTPUTS)} (default "
                        f"{','.join(DEFAULT_OUTPUTS)}; scan is NS/scan, confidence NS/depth/confidence)")
    add_model_options(p)
    add_frame_options(p)
    add_nav_options(p)
    p.add_argument("--strict", action="store_true",
                   help="stop at the first frame with a problem (bad image, unusable camera_info, model failure) "
                        "instead of skipping what it costs and counting it in the summary")
    p.add_argument("--temporal", default="stream", choices=("stream", "offline"),
                   help="temporal models (vda-metric-*): stream the image topic frame by frame as the node does "
                        "live (default), or run the official offline windows (32 frames, overlap 10, blended)")
    g = p.add_argument_group("metric scale", "online scale correction, as the node's scale.* parameters")
    g.add_argument("--scale-reference", metavar="TOPIC",
                   help="reference depth topic (32FC1 m or 16UC1 mm, aligned to the image or a uniform resize): "
                        "scale.mode reference, the depth scaled to it frame by frame (also makes relative models "
                        "metric)")
    g.add_argument("--camera-height", type=number(float, 0.0, 100.0, above=True), metavar="M",
                   help="camera height above the floor in metres: scale.mode ground_plane, the floor fitted per frame")
    g.add_argument("--floor-pitch", type=number(float, -90.0, 90.0), default=0.0, metavar="DEG",
                   help="ground_plane: the camera is pitched down by this (default 0)")
    g.add_argument("--scale-time-constant", type=number(float, 0.0, 3600.0), default=1.0, metavar="S",
                   help="smoothing time constant of the scale in seconds of header stamps (default 1; 0 = none)")
    g.add_argument("--max-stamp-diff", type=number(float, 0.0, 10.0), default=0.05, metavar="S",
                   help="largest stamp difference between an image and its reference depth (default 0.05)")
    _storage(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_process)


def _device_list(text: str) -> list[str]:
    """Argparse type of --devices: non-empty comma-separated names."""
    devices = [d.strip() for d in text.split(",")]
    if not all(devices):
        raise argparse.ArgumentTypeError(f"expected comma-separated devices such as cuda:0,cuda:1, got {text!r}")
    return devices


def run_process(args: argparse.Namespace) -> int:
    """Process one bag (or several, see --devices) and print the summary; exit code 130 when interrupted."""
    from depth_anything_ros.bag.process import ProcessOptions, check_options, process_bag

    opts = ProcessOptions(
        image_topic=args.image_topic, camera_info_topic=args.camera_info_topic,
        output_namespace=args.output_namespace,
        outputs=tuple(t.strip() for t in args.topics.split(",") if t.strip()), storage=args.storage,
        batch=args.batch, frame=replace(frame_options(args), scale=scale_options(args)), fov_deg=args.fov or 0.0,
        strict=args.strict, scale_reference=args.scale_reference, max_stamp_diff=args.max_stamp_diff,
        progress=not args.no_progress, temporal=args.temporal)
    check_options(opts)
    for path in args.input:
        check_bag(path)
    check_new_bag_path(args.output)
    if len(args.input) > 1:
        return _run_several(args, opts)
    if args.devices:
        raise BagError("--devices shares several IN bags between devices; one bag runs on one device: use --device")
    estimator = make_estimator(args, allow_relative=args.scale_reference is not None)
    summary = process_bag(args.input[0], args.output, estimator, opts)
    print(summary.text())
    return 130 if summary.interrupted else 0


def _run_several(args: argparse.Namespace, opts: object) -> int:
    """Process several bags into the folder OUT on the --devices workers; 2 when a bag failed, 130 when interrupted."""
    from depth_anything_ros.bag.parallel import process_bags
    from depth_anything_ros.models.v2.estimator import resolve_device

    names = [path.resolve().name for path in args.input]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise BagError(f"input bags share the folder name {twice[0]}, which would name two outputs in {args.output}; "
                       "rename one or process them separately")
    devices = args.devices or [args.device]
    for device in devices:
        try:
            resolve_device(device)
        except ValueError as exc:
            raise BagError(f"invalid --devices entry {device!r}: {exc}") from None
    check_checkpoint_name(args.checkpoint, allow_relative=args.scale_reference is not None)
    args.output.mkdir(parents=True)
    outcomes = process_bags([(src, args.output / name) for src, name in zip(args.input, names, strict=True)],
                            devices, args, replace(opts, progress=False))
    for outcome in outcomes:
        print(f"{outcome.input} ({outcome.device or 'no worker'}): {outcome.error or outcome.summary}")
    if any(o.error and not o.interrupted for o in outcomes):
        failed = sum(1 for o in outcomes if o.error and not o.interrupted)
        print(f"depth-anything-ros: error: {failed} of {len(outcomes)} bags could not be processed (see above)",
              file=sys.stderr)
        return 2
    return 130 if any(o.interrupted for o in outcomes) else 0


def _register_evaluate(sub: argparse._SubParsersAction) -> None:
    from depth_anything_ros.frame.metrics import ALIGN_MODES

    p = sub.add_parser(
        "evaluate", help="compare predicted metric depth with a bag's ground-truth depth",
        description="Pair each prediction (the model run on --image-topic, or a recorded --pred-topic) with the "
                    "ground-truth depth message of the same header stamp and report AbsRel, SqRel, RMSE, RMSE log, "
                    "MAE, SiLog, log10 and delta1/2/3 (Depth Anything V2 definitions) per frame and overall (mean "
                    "over frames), on valid ground-truth pixels inside [--gt-min-depth, --gt-max-depth]. Ground "
                    "truth is 16UC1 millimetres (0 invalid) or 32FC1 metres (non-finite invalid), REP 118.")
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
    p.add_argument("--gt-min-depth", type=number(float, 0.0, above=True, unit=" metres"), default=0.001,
                   metavar="M", help="ground truth below this (metres) is ignored (default 0.001)")
    p.add_argument("--gt-max-depth", type=number(float, 0.0, above=True, unit=" metres"), default=20.0,
                   metavar="M",
                   help="ground truth above this (metres) is ignored (default 20; 80 outdoors); predictions are "
                        "used as they are")
    p.add_argument("--stamp-tolerance", type=number(float, 0.0, unit=" seconds"), default=0.0, metavar="S",
                   help="largest stamp difference in seconds between a prediction and its ground truth (default 0: "
                        "equal stamps)")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="write metrics.json, per_frame.csv and PNG plots into DIR (created if needed)")
    add_model_options(p)
    p.add_argument("--confidence", action="store_true",
                   help="also compute the model's depth/confidence (runs it on the mirrored images too; needs "
                        "camera_info) and report AbsRel by confidence decile: low confidence should mean larger "
                        "error")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    """Evaluate and print the report."""
    from depth_anything_ros.bag.evaluate import EvaluateOptions, evaluate_bag

    if not args.gt_min_depth < args.gt_max_depth:
        raise BagError(f"--gt-min-depth {args.gt_min_depth:g} must be below --gt-max-depth {args.gt_max_depth:g}")
    if args.report is not None and args.report.exists() and not args.report.is_dir():
        raise BagError(f"--report {args.report} is a file; give a directory")
    opts = EvaluateOptions(gt_topic=args.gt_topic, image_topic=args.image_topic, pred_topic=args.pred_topic,
                           align=args.align, min_depth=args.gt_min_depth, max_depth=args.gt_max_depth,
                           stamp_tolerance=args.stamp_tolerance, batch=args.batch, report=args.report,
                           progress=not args.no_progress, confidence=args.confidence)
    check_bag(args.input)
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
