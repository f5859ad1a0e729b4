"""Per-frame pipeline without ROS transport: raw image bytes -> depth, point cloud and colourised buffers.

The node's per-frame work, stage by stage: decode the Image bytes (image_codec), upload them
(DepthEstimator.upload), run DepthEstimator.estimate_raw, copy the depth image back, build the organised
xyz+rgb cloud (PointCloudBuilder), colourise (LUT on the device), and wrap the buffers into sensor_msgs
messages (ros_messages, when sensor_msgs is importable). Each stage is timed on its own (CUDA synchronised);
`total` is timed separately without intermediate synchronisation. `non_model` = the sum of the stage p50s other
than estimate_tensor; `preprocess_upsample` = estimate_tensor - the network forward alone at the same input size
(the two timed call by call in alternation).
"""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import _common as common
import numpy as np
import torch


def image_message(rgb: np.ndarray, encoding: str) -> SimpleNamespace:
    """Image-like message holding `rgb` (H, W, 3) in `encoding` (rgb8 or bgr8) as raw bytes."""
    pixels = rgb if encoding == "rgb8" else np.ascontiguousarray(rgb[..., ::-1])
    height, width = rgb.shape[:2]
    return SimpleNamespace(height=height, width=width, encoding=encoding, is_bigendian=0, step=width * 3,
                           data=pixels.tobytes())


class Pipeline:
    """The node's per-frame work on one estimator, with per-stage timing."""

    def __init__(self, est, width: int, height: int, stride: int = 1):
        from depth_anything_ros.frame.camera import Intrinsics
        from depth_anything_ros.frame.colorize import colormap_lut
        from depth_anything_ros.frame.geometry import PointCloudBuilder
        from depth_anything_ros.frame.rays import ray_grid
        from depth_anything_ros.models.image import to_rgb8

        self.est, self.stride, self.to_rgb8 = est, stride, to_rgb8
        intr = Intrinsics.from_fov(width, height, 70.0)
        self.rays = torch.from_numpy(ray_grid(intr, undistort=True)).to(est.device)
        self.builder = PointCloudBuilder()
        self.lut = colormap_lut("turbo")
        try:
            from std_msgs.msg import Header

            from depth_anything_ros.ros import messages as ros_messages
        except ImportError:  # no ROS message packages: stop at the finished buffers
            self.ros_messages = None
        else:
            self.ros_messages, self.header = ros_messages, Header(frame_id="camera_optical_frame")

    def run(self, msg, timer=None) -> int:
        """Process one message; `timer(stage)` is called after each stage. Returns the bytes produced."""
        from depth_anything_ros.frame.colorize import colorize
        from depth_anything_ros.frame.image_codec import decode_image, depth_image_fields

        tick = timer or (lambda stage: None)
        image, encoding = decode_image(msg)
        tick("decode")
        raw = self.est.upload([image], encoding)
        tick("upload")
        depth = self.est.estimate_raw(raw, encoding)[0]
        tick("estimate_tensor")
        depth_fields = depth_image_fields(depth.cpu().numpy())
        tick("depth_image")
        colour = self.to_rgb8(raw, encoding)[0].permute(1, 2, 0)
        cloud = self.builder.build(depth, self.rays, colour, stride=self.stride,
                                   max_depth=math.inf, organized=True)
        tick("cloud")
        colored = colorize(depth, 0.0, self.est.max_depth or 1.0, self.lut).cpu().numpy()
        tick("colorize")
        if self.ros_messages is not None:
            self.ros_messages.depth_msg(self.header, np.frombuffer(depth_fields["data"], np.float32).reshape(
                depth_fields["height"], depth_fields["width"]))
            self.ros_messages.cloud_msg(self.header, cloud)
            self.ros_messages.rgb_msg(self.header, colored)
            tick("messages")
        return len(depth_fields["data"]) + len(cloud.data) + colored.nbytes


class StageTimer:
    """Collects per-stage durations of repeated runs, synchronising CUDA at each stage boundary."""

    def __init__(self, device):
        self.device = device
        self.samples: dict[str, list[float]] = {}
        self._last = 0.0

    def start(self) -> None:
        common.synchronize(self.device)
        self._last = time.perf_counter()

    def __call__(self, stage: str) -> None:
        common.synchronize(self.device)
        now = time.perf_counter()
        self.samples.setdefault(stage, []).append(now - self._last)
        self._last = now


def bench_resolution(est, height: int, width: int, args) -> dict:
    """Per-stage and total figures of the pipeline at one camera resolution."""
    from depth_anything_ros.models.image import network_input_size

    pipe = Pipeline(est, width, height, stride=args.stride)
    msg = image_message(common.synthetic_image(height, width), args.encoding)
    with torch.inference_mode():
        total = common.summarise(common.time_calls(lambda: pipe.run(msg), args.warmup, args.iters, est.device))
        timer = StageTimer(est.device)
        for _ in range(args.iters):
            timer.start()
            out_bytes = pipe.run(msg, timer)
        net_h, net_w = network_input_size(height, width, est.input_size)
        x = torch.randn(1, 3, net_h, net_w).to(device=est.device, dtype=est.dtype)
        rgb = pipe.est.upload([common.synthetic_image(height, width)]).permute(0, 3, 1, 2)
        net = common.network(est)
        fns = {"forward": lambda: net(x), "estimate_tensor": lambda: est.estimate_tensor(rgb)}
        model = common.time_interleaved(fns, args.warmup, args.iters, est.device)
    stages = {stage: common.summarise(times)["p50_ms"] for stage, times in timer.samples.items()}
    row = {"resolution": f"{width}x{height}", "network_input": f"{net_w}x{net_h}", "total_p50_ms": total["p50_ms"],
           "total_p95_ms": total["p95_ms"], "fps": total["fps"], "output_mib": out_bytes / 2**20}
    row.update({f"{stage}_ms": value for stage, value in stages.items()})
    row["non_model_ms"] = sum(value for stage, value in stages.items() if stage != "estimate_tensor")
    forward, full = (common.summarise(model[k])["p50_ms"] for k in ("forward", "estimate_tensor"))
    row["forward_ms"] = forward
    row["preprocess_upsample_ms"] = full - forward
    return row


def main(argv: list[str] | None = None) -> dict:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="vits", choices=["vits", "vitb", "vitl"])
    parser.add_argument("--precision", default="auto", help="auto, fp32, fp16 or bf16")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--resolutions", type=common.csv_list, default=list(common.RESOLUTIONS),
                        help="comma-separated WxH camera resolutions")
    parser.add_argument("--encoding", default="rgb8", choices=["rgb8", "bgr8"])
    parser.add_argument("--stride", type=int, default=1, help="cloud stride")
    parser.add_argument("--input-size", type=int, default=518, help="network input size (lower bound, x14)")
    args = parser.parse_args(argv)
    common.apply_common(args)
    if args.quick:
        args.input_size, args.resolutions = 70, ["64x48"]

    from depth_anything_ros.models.v2.estimator import DepthEstimator

    est = DepthEstimator(checkpoint=str(common.synthetic_checkpoint(args.encoder)), encoder=args.encoder,
                         max_depth=20.0, device=args.device, precision=args.precision, input_size=args.input_size,
                         compile=args.compile)
    results = []
    for res in args.resolutions:
        width, height = (int(v) for v in res.split("x"))
        results.append(bench_resolution(est, height, width, args))
    stage_columns = [k for k in results[0] if k.endswith("_ms") and k not in ("total_p50_ms", "total_p95_ms")]
    common.print_table(results, ["resolution", "total_p50_ms", "total_p95_ms", "fps"], title=(
        f"pipeline {args.encoder} {str(est.dtype).replace('torch.', '')} ({args.device}): raw bytes -> buffers"))
    common.print_table(results, ["resolution", *stage_columns], title="stages, p50 ms")
    return common.write_json(args.json, "pipeline", args, results, {"dtype": str(est.dtype)})


if __name__ == "__main__":
    main()
