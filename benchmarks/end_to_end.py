"""End to end through a real ROS graph: publisher process -> node process -> subscriber, latency and output rates.

A publisher process sends WxH rgb8 images with camera_info (same header) at a fixed rate, then at 1.5x the
model-only rate (saturating the node without loading the CPU with publishing) and then as fast as it can; the
node (depth_anything_ros.ros.node, its own process, synthetic weights) processes them; this process subscribes to
depth and points and measures latency = receive time - image stamp and the output rates. Model-only figures of
the same configuration are measured first in this process, so the end-to-end / model-only ratios come from one
run. Loopback DDS with a random ROS_DOMAIN_ID.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as common
import numpy as np
import torch

PUBLISHER_SETTLE_S = 1.0  # discovery time granted to a new publisher before its frames count


def camera_names(count: int) -> list[str]:
    """Camera namespaces of `count` streams: [''] (the node's own topics) for one, else cam0, cam1, ..."""
    return [""] if count == 1 else [f"cam{i}" for i in range(count)]


def topic(namespace: str, name: str) -> str:
    """Topic of one camera, as the node names it."""
    return f"{namespace}/{name}" if namespace else name


# ---------------------------------------------------------------------------------------------- publisher role

def run_publisher(args) -> None:
    """Publish images + camera_info on every camera at --rate Hz (0: as fast as possible) for --duration s."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image

    width, height = (int(v) for v in args.resolution.split("x"))
    rclpy.init()
    node = rclpy.create_node("bench_publisher")
    reliability = ReliabilityPolicy.RELIABLE if args.input_qos == "reliable" else ReliabilityPolicy.BEST_EFFORT
    qos = QoSProfile(depth=1, reliability=reliability)
    pubs = [(node.create_publisher(Image, topic(ns, "image"), qos),
             node.create_publisher(CameraInfo, topic(ns, "camera_info"), qos))
            for ns in camera_names(args.cameras)]
    images = []
    for i, _ in enumerate(pubs):
        img = Image(height=height, width=width, encoding="rgb8", is_bigendian=0, step=width * 3)
        img.data = common.synthetic_image(height, width, seed=i).tobytes()
        img.header.frame_id = f"camera{i}_optical_frame"
        images.append(img)
    f = 0.8 * width
    info = CameraInfo(height=height, width=width, distortion_model="plumb_bob", d=[0.0] * 5,
                      k=[f, 0.0, width / 2, 0.0, f, height / 2, 0.0, 0.0, 1.0],
                      r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                      p=[f, 0.0, width / 2, 0.0, 0.0, f, height / 2, 0.0, 0.0, 0.0, 1.0, 0.0])
    period = 1.0 / args.rate if args.rate > 0 else 0.0
    counted = 0
    start = time.time()
    deadline = start
    while time.time() - start < args.duration:
        now = time.time()
        for (image_pub, info_pub), img in zip(pubs, images, strict=True):
            img.header.stamp.sec, img.header.stamp.nanosec = int(now), int((now % 1) * 1e9)
            info.header = img.header
            info_pub.publish(info)
            image_pub.publish(img)
        counted += now >= start + PUBLISHER_SETTLE_S
        if period:
            deadline += period
            time.sleep(max(0.0, deadline - time.time()))
    print(json.dumps({"start": start + PUBLISHER_SETTLE_S, "end": time.time(), "counted": counted}), flush=True)
    node.destroy_node()
    rclpy.shutdown()


# ---------------------------------------------------------------------------------------------- subscriber role

class Recorder:
    """Subscriber node recording (receive time, stamp) of every depth and points message of every camera."""

    def __init__(self, cameras: int, reliable: bool):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image, PointCloud2

        self.node = rclpy.create_node("bench_subscriber")
        self.diagnostics: dict[str, dict[str, str]] = {}  # status name -> latest key/values
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT)
        self.records: dict[str, list[tuple[float, float]]] = {"depth": [], "points": []}
        for ns in camera_names(cameras):
            self.node.create_subscription(Image, topic(ns, "depth"), lambda m: self._record("depth", m), qos)
            self.node.create_subscription(PointCloud2, topic(ns, "points"), lambda m: self._record("points", m), qos)

    def _record(self, kind: str, msg) -> None:
        received = time.time()
        self.records[kind].append((received, msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9))

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            self.diagnostics[status.name] = {kv.key: kv.value for kv in status.values}

    def node_counters(self) -> dict[str, float]:
        """Frames received and dropped by the node (all cameras) and its mean stage times, from /diagnostics."""
        out = {"received": 0.0, "dropped": 0.0}
        for name, values in self.diagnostics.items():
            if ": camera " in name:
                out["received"] += float(values.get("frames received", 0))
                out["dropped"] += float(values.get("frames dropped", 0))
            elif name.endswith(": model"):
                for key in ("inference ms", "non-model ms", "batch size"):
                    try:
                        out[key] = float(values.get(key, "nan"))
                    except ValueError:
                        out[key] = None
        return out

    def spin_until(self, done, timeout: float) -> bool:
        """Spin until `done()` is true or `timeout` seconds passed; return done()."""
        import rclpy

        end = time.monotonic() + timeout
        while not done() and time.monotonic() < end:
            rclpy.spin_once(self.node, timeout_sec=0.05)
        return bool(done())

    def clear(self) -> None:
        for values in self.records.values():
            values.clear()


def window_stats(records: list[tuple[float, float]], t0: float, t1: float, cameras: int) -> dict:
    """Latency percentiles and per-camera output rate of the messages whose stamp lies in [t0, t1)."""
    kept = [(rx, stamp) for rx, stamp in records if t0 <= stamp < t1]
    latency = np.array([rx - stamp for rx, stamp in kept]) * 1e3
    return {
        "received": len(kept),
        "rate_hz": len(kept) / cameras / (t1 - t0),
        "p50_ms": float(np.percentile(latency, 50)) if latency.size else None,
        "p95_ms": float(np.percentile(latency, 95)) if latency.size else None,
    }


def start_publisher(args, rate: float, duration: float, env: dict) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--role", "publisher", "--rate", str(rate), "--duration", str(duration),
           "--resolution", args.resolution, "--cameras", str(args.cameras), "--input-qos", args.input_qos]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> tuple[str, str]:
    """Interrupt `proc` (SIGINT, then SIGKILL after `timeout`) and return its stdout and stderr."""
    if proc.poll() is None:
        proc.send_signal(2)
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


def measure_model_only(args, checkpoint: str) -> dict:
    """Model-only p50 latency and frames/s of the node's configuration (batch = cameras), in this process."""
    from depth_anything_ros.models.image import network_input_size
    from depth_anything_ros.models.v2.estimator import DepthEstimator

    width, height = (int(v) for v in args.resolution.split("x"))
    est = DepthEstimator(checkpoint=checkpoint, encoder=args.encoder, max_depth=20.0, device=args.device,
                         precision=args.precision, input_size=args.input_size, compile=args.compile)
    net_h, net_w = network_input_size(height, width, est.input_size)
    x = torch.randn(args.cameras, 3, net_h, net_w).to(device=est.device, dtype=est.dtype)
    net = common.network(est)
    with torch.inference_mode():
        forward = common.summarise(common.time_calls(lambda: net(x), args.warmup, args.iters, est.device),
                                   frames_per_call=args.cameras)
    return {"p50_ms": forward["p50_ms"], "fps": forward["fps"], "network_input": f"{net_w}x{net_h}"}


def run_graph(args, checkpoint: str, log_dir: Path, model: dict) -> list[dict]:
    """Start the node, warm it up, then run the fixed-rate, saturating and as-fast-as-possible phases."""
    import rclpy

    env = {**os.environ, "ROS_DOMAIN_ID": str(random.SystemRandom().randint(1, 200)),
           "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(common.REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "RMW_IMPLEMENTATION")})
    cameras = "[" + ",".join(f"'{ns}'" for ns in camera_names(args.cameras)) + "]"
    node_cmd = [sys.executable, "-m", "depth_anything_ros.ros.node", "--ros-args",
                "-p", f"model.checkpoint:={checkpoint}", "-p", f"model.encoder:={args.encoder}",
                "-p", "model.max_depth:=20.0",
                "-p", f"model.input_size:={args.input_size}", "-p", f"model.compile:={str(args.compile).lower()}",
                "-p", f"device:={args.device}", "-p", f"precision:={args.precision}", "-p", f"cameras:={cameras}",
                "-p", f"qos.reliability:={args.input_qos}"]
    node_log = open(log_dir / "node.log", "w")  # noqa: SIM115 - closed in finally
    node = subprocess.Popen(node_cmd, env=env, stdout=node_log, stderr=subprocess.STDOUT)
    rclpy.init()
    recorder = Recorder(args.cameras, reliable=args.sub_reliability == "reliable")
    results = []
    try:
        warm = start_publisher(args, rate=args.warmup_rate, duration=args.startup_timeout, env=env)
        def node_failed() -> bool:
            return node.poll() is not None or "activate failed" in (log_dir / "node.log").read_text()

        ok = recorder.spin_until(lambda: len(recorder.records["depth"]) >= 3 * args.cameras or node_failed(),
                                 args.startup_timeout)
        stop(warm)
        if not ok or node_failed():
            tail = (log_dir / "node.log").read_text()[-4000:]
            raise SystemExit(f"node produced no depth within {args.startup_timeout} s; node log:\n{tail}")
        for mode in args.modes:
            rate = {"fixed": args.rate, "saturate": args.saturate_factor * model["fps"] / args.cameras}.get(mode, 0.0)
            recorder.spin_until(lambda: False, 1.0)  # drain outputs of the previous phase
            recorder.clear()
            before = recorder.node_counters()
            pub = start_publisher(args, rate=rate, duration=PUBLISHER_SETTLE_S + args.duration, env=env)
            recorder.spin_until(lambda pub=pub: pub.poll() is not None, PUBLISHER_SETTLE_S + args.duration + 30)
            recorder.spin_until(lambda: False, args.drain + 1.0)  # outputs in flight and one more diagnostics period
            after = recorder.node_counters()
            out, err = stop(pub)
            if pub.returncode != 0:
                raise SystemExit(f"publisher failed ({pub.returncode}):\n{err[-4000:]}")
            sent = json.loads(out.strip().splitlines()[-1])
            t0, t1 = sent["start"], sent["end"]
            depth = window_stats(recorder.records["depth"], t0, t1, args.cameras)
            points = window_stats(recorder.records["points"], t0, t1, args.cameras)
            results.append({
                "mode": mode, "cameras": args.cameras, "publish_rate_hz": sent["counted"] / (t1 - t0),
                "depth_received": depth["received"], "depth_rate_hz": depth["rate_hz"],
                "depth_p50_ms": depth["p50_ms"], "depth_p95_ms": depth["p95_ms"],
                "points_received": points["received"], "points_rate_hz": points["rate_hz"],
                "points_p50_ms": points["p50_ms"], "points_p95_ms": points["p95_ms"],
                "node_frames_received": after["received"] - before["received"],
                "node_frames_dropped": after["dropped"] - before["dropped"],
                "node_inference_ms": after.get("inference ms"), "node_non_model_ms": after.get("non-model ms"),
                "node_batch_size": after.get("batch size"),
            })
    finally:
        recorder.node.destroy_node()
        rclpy.shutdown()
        stop(node, timeout=15.0)
        node_log.close()
    return results


def main(argv: list[str] | None = None) -> dict | None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["bench", "publisher"], default="bench",
                        help="internal: 'publisher' runs the publisher process")
    parser.add_argument("--encoder", default="vits", choices=["vits", "vitb", "vitl"])
    parser.add_argument("--precision", default="auto", help="auto, fp32, fp16 or bf16")
    parser.add_argument("--compile", action="store_true", help="model.compile:=true on the node")
    parser.add_argument("--input-size", type=int, default=518, help="network input size (lower bound, x14)")
    parser.add_argument("--resolution", default="640x480", help="WxH of the published images")
    parser.add_argument("--cameras", type=int, default=1, help="camera streams served by the one node")
    parser.add_argument("--rate", type=float, default=None,
                        help="fixed publish rate in Hz (default: half the model-only frames/s, at most 30)")
    parser.add_argument("--modes", type=common.csv_list, default=["fixed", "saturate", "max"],
                        help="fixed (at --rate), saturate (--saturate-factor x model-only frames/s: the node always "
                             "has a frame waiting, the publisher stays light) and max (as fast as the publisher can)")
    parser.add_argument("--saturate-factor", type=float, default=1.5, help="publish rate / model-only rate")
    parser.add_argument("--duration", type=float, default=None, help="seconds measured per mode (CUDA 20, CPU 60)")
    parser.add_argument("--drain", type=float, default=None,
                        help="seconds to wait for late outputs after a phase (CUDA 3, CPU 15)")
    parser.add_argument("--warmup-rate", type=float, default=2.0, help="publish rate while the node warms up")
    parser.add_argument("--startup-timeout", type=float, default=300.0,
                        help="seconds allowed for the node to load, compile and publish its first depth")
    parser.add_argument("--input-qos", choices=["best_effort", "reliable"], default="reliable",
                        help="reliability of the published images and of the node's input (qos.reliability); "
                             "best_effort loses most 640x480 frames (UDP fragments) once the node saturates a CPU")
    parser.add_argument("--sub-reliability", choices=["reliable", "best_effort"], default="reliable")
    args = parser.parse_args(argv)
    if args.role == "publisher":
        run_publisher(args)
        return None
    common.apply_common(args)
    args.duration = args.duration or (20.0 if args.device == "cuda" else 60.0)
    args.drain = args.drain if args.drain is not None else (3.0 if args.device == "cuda" else 15.0)
    if args.quick:
        args.input_size, args.resolution, args.duration, args.drain = 70, "64x48", 3.0, 1.0
        args.rate = args.rate or 5.0
    checkpoint = str(common.synthetic_checkpoint(args.encoder))
    model = measure_model_only(args, checkpoint)
    if args.rate is None:
        args.rate = round(min(30.0, 0.5 * model["fps"] / args.cameras), 2)
    with tempfile.TemporaryDirectory(prefix="bench_e2e_") as log_dir:
        results = run_graph(args, checkpoint, Path(log_dir), model)
    for row in results:
        row["model_only_p50_ms"], row["model_only_fps"] = model["p50_ms"], model["fps"]
        row["throughput_over_model_only"] = row["depth_rate_hz"] * args.cameras / model["fps"]
        row["p50_latency_over_model_only"] = (row["depth_p50_ms"] / model["p50_ms"]
                                              if row["depth_p50_ms"] is not None else None)
    common.print_table(results, ["mode", "cameras", "publish_rate_hz", "depth_rate_hz", "depth_p50_ms",
                                 "depth_p95_ms", "points_rate_hz", "points_p50_ms", "points_p95_ms",
                                 "node_frames_received", "node_frames_dropped", "node_inference_ms",
                                 "node_non_model_ms", "model_only_p50_ms", "model_only_fps",
                                 "throughput_over_model_only", "p50_latency_over_model_only"],
                       title=f"end to end {args.encoder} {args.resolution} ({args.device}), "
                             f"model input {model['network_input']}")
    return common.write_json(args.json, "end_to_end", args, results, {"model_only": model})


if __name__ == "__main__":
    main()
