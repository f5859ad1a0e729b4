"""`bag process` throughput: frames/s over a rendered sample bag, all outputs written, synthetic weights.

The figure is wall time of the whole run (read, decode, model, depth/points/colour conversion, bag writing) after
a 2-frame warm-up run; the model is built once, outside the timing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import _common as common


def main(argv: list[str] | None = None) -> dict:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="vits", help="encoder of the synthetic checkpoint (default vits)")
    parser.add_argument("--input-size", type=int, default=518, help="network input size (default 518)")
    parser.add_argument("--resolution", default="640x480", help="WxH of the sample bag images (default 640x480)")
    parser.add_argument("--frames", type=int, default=None, help="frames in the bag (default: CUDA 100, CPU 10)")
    parser.add_argument("--batches", type=common.csv_list, default=["1"], help="comma-separated --batch sizes")
    parser.add_argument("--storage", default="mcap", choices=("mcap", "sqlite3"), help="output bag storage")
    args = parser.parse_args(argv)
    common.apply_common(args)
    frames = args.frames or (100 if args.device.startswith("cuda") else 10)
    width, height = (int(v) for v in args.resolution.split("x"))
    if args.quick:
        args.input_size, width, height, frames = 70, 64, 48, 3

    from depth_anything_ros.bag.process import ProcessOptions, process_bag
    from depth_anything_ros.bag.sample import SampleConfig, write_sample_bag
    from depth_anything_ros.models.v2.estimator import DepthEstimator

    est = DepthEstimator(checkpoint=str(common.synthetic_checkpoint(args.encoder)), encoder=args.encoder,
                         max_depth=20.0, device=args.device, input_size=args.input_size)
    results = []
    with tempfile.TemporaryDirectory(prefix="bag_process_fps_") as tmp:
        tmp = Path(tmp)
        write_sample_bag(tmp / "warmup", SampleConfig(width=width, height=height, frames=2))
        write_sample_bag(tmp / "in", SampleConfig(width=width, height=height, frames=frames))
        for batch in (int(b) for b in args.batches):
            opts = ProcessOptions(batch=batch, storage=args.storage, progress=False)
            process_bag(tmp / "warmup", tmp / f"warmup_out_{batch}", est, opts)
            summary = process_bag(tmp / "in", tmp / f"out_{batch}", est, opts)
            results.append({"encoder": est.encoder, "dtype": str(est.dtype).replace("torch.", ""),
                            "input_size": est.input_size, "resolution": f"{width}x{height}", "batch": batch,
                            "frames": summary.frames_done, "seconds": summary.seconds, "fps": summary.fps})
    common.print_table(results, ["encoder", "dtype", "input_size", "resolution", "batch", "frames", "seconds", "fps"],
                       title=f"bag process, all outputs ({args.device})")
    for row in results:
        print(f"bag process: {row['fps']:.3f} frames/s ({row['encoder']}, input {row['input_size']}, "
              f"{row['resolution']}, batch {row['batch']}, {args.device}, synthetic weights)")
    return common.write_json(args.json, "bag_process_fps", args, results)


if __name__ == "__main__":
    main()
