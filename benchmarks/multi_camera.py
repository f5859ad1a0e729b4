"""Several cameras on one model: N streams batched into one forward pass vs the same N frames one at a time.

Each stream is a distinct camera frame of the same size; `batched` calls DepthEstimator.estimate_batch on all N,
`sequential` calls DepthEstimator.estimate N times. Throughput counts frames (N per call).
"""

from __future__ import annotations

import _common as common
import torch


def main(argv: list[str] | None = None) -> dict:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="vits", choices=["vits", "vitb", "vitl"])
    parser.add_argument("--precision", default="auto", help="auto, fp32, fp16 or bf16")
    parser.add_argument("--streams", type=common.csv_list, default=["1", "2", "4"], help="comma-separated counts")
    parser.add_argument("--resolution", default="640x480", help="WxH of every stream")
    parser.add_argument("--input-size", type=int, default=518, help="network input size (lower bound, x14)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    args = parser.parse_args(argv)
    if args.iters is None and common.resolve_device(args.device) == "cpu":
        args.iters = 4  # each call holds up to 4 frames of seconds each on a CPU
    common.apply_common(args)
    if args.quick:
        args.input_size, args.resolution = 70, "64x48"
    width, height = (int(v) for v in args.resolution.split("x"))

    from depth_anything_ros.models.v2.estimator import DepthEstimator

    est = DepthEstimator(checkpoint=str(common.synthetic_checkpoint(args.encoder)), encoder=args.encoder,
                         max_depth=20.0, device=args.device, precision=args.precision, input_size=args.input_size,
                         compile=args.compile)
    results = []
    for streams in (int(s) for s in args.streams):
        frames = [common.synthetic_image(height, width, seed=i) for i in range(streams)]
        samples = common.time_interleaved({
            "batched": lambda frames=frames: est.estimate_batch(frames, encoding="rgb8"),
            "sequential": lambda frames=frames: [est.estimate(f, encoding="rgb8") for f in frames],
        }, args.warmup, args.iters, est.device)
        stats = {name: common.summarise(times, frames_per_call=streams) for name, times in samples.items()}
        for name, summary in stats.items():
            results.append({"streams": streams, "mode": name, "resolution": args.resolution,
                            "call_p50_ms": summary["p50_ms"], "call_p95_ms": summary["p95_ms"],
                            "fps": summary["fps"], "batched_over_sequential": stats["batched"]["fps"]
                            / stats["sequential"]["fps"]})
    common.print_table(results, ["streams", "mode", "resolution", "call_p50_ms", "call_p95_ms", "fps",
                                 "batched_over_sequential"],
                       title=f"multi-camera {args.encoder} {str(est.dtype).replace('torch.', '')} ({args.device})")
    extra = {"dtype": str(est.dtype), "encoder": args.encoder}
    if torch.device(args.device).type == "cuda":
        extra["max_memory_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return common.write_json(args.json, "multi_camera", args, results, extra)


if __name__ == "__main__":
    main()
