"""Model-only speed: frames/s and latency per encoder, precision, camera resolution and compile, synthetic weights.

Two figures per configuration:
- `forward`: the network alone on a normalised (B, 3, h', w') tensor already on the device (h', w' from the
  official lower-bound resize of the camera resolution to --input-size);
- `estimate_tensor`: uint8 RGB (B, 3, H, W) on the device -> (B, H, W) metric depth on the device
  (resize + normalise + network + upsample, all on the device).
B is --batches (1 by default); frames/s count B frames per call. With --json the file is rewritten after every
configuration, so a run stopped part-way (a time limit) keeps the rows measured so far.
"""

from __future__ import annotations

import _common as common
import numpy as np
import torch


def bench_config(est, height: int, width: int, args, batch: int = 1) -> dict:
    """Time one estimator at one camera resolution and batch size."""
    from depth_anything_ros.models.image import network_input_size

    net_h, net_w = network_input_size(height, width, est.input_size)
    gen = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(batch, 3, net_h, net_w, generator=gen).to(device=est.device, dtype=est.dtype)
    net = common.network(est)
    frames = [common.synthetic_image(height, width, seed=i) for i in range(batch)]
    rgb = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()  # (B, 3, H, W) uint8
    rgb = rgb.to(est.device)
    with torch.inference_mode():  # alternated call by call, so load drift on a shared machine hits both alike
        samples = common.time_interleaved({"forward": lambda: net(x), "full": lambda: est.estimate_tensor(rgb)},
                                          args.warmup, args.iters, est.device)
    forward = common.summarise(samples["forward"], frames_per_call=batch)
    full = common.summarise(samples["full"], frames_per_call=batch)
    row = {"network_input": f"{net_w}x{net_h}"}
    row.update({f"forward_{k}": v for k, v in forward.items() if k != "n"})
    row.update({f"estimate_tensor_{k}": v for k, v in full.items() if k != "n"})
    return row


def main(argv: list[str] | None = None) -> dict:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--encoders", type=common.csv_list, default=None,
                        help="comma-separated encoders (default: vits on CPU, vits,vitb,vitl on CUDA)")
    parser.add_argument("--precisions", type=common.csv_list, default=None,
                        help="comma-separated precisions (default: fp32 on CPU; fp32,fp16 and bf16 where supported)")
    parser.add_argument("--resolutions", type=common.csv_list, default=list(common.RESOLUTIONS),
                        help="comma-separated WxH camera resolutions")
    parser.add_argument("--batches", type=common.csv_list, default=["1"],
                        help="comma-separated batch sizes (frames per call; default 1)")
    parser.add_argument("--compile", choices=["off", "on", "both"], default=None,
                        help="torch.compile the model (default: both on CUDA, off on CPU)")
    parser.add_argument("--input-size", type=int, default=518, help="network input size (lower bound, x14)")
    args = parser.parse_args(argv)
    common.apply_common(args)
    cuda = args.device == "cuda"
    args.encoders = args.encoders or (["vits", "vitb", "vitl"] if cuda else ["vits"])
    args.precisions = args.precisions or common.precisions_for(args.device)
    args.compile = args.compile or ("both" if cuda else "off")
    if args.quick:
        args.input_size, args.resolutions = 70, ["64x48"]
    compile_modes = {"off": [False], "on": [True], "both": [False, True]}[args.compile]

    from depth_anything_ros.models.v2.estimator import DepthEstimator

    results = []
    for encoder in args.encoders:
        checkpoint = str(common.synthetic_checkpoint(encoder))
        for precision in args.precisions:
            for compiled in compile_modes:
                est = DepthEstimator(checkpoint=checkpoint, encoder=encoder, max_depth=20.0, device=args.device,
                                     precision=precision, input_size=args.input_size, compile=compiled)
                for res in args.resolutions:
                    width, height = (int(v) for v in res.split("x"))
                    for batch in (int(b) for b in args.batches):
                        row = {"encoder": encoder, "precision": precision,
                               "dtype": str(est.dtype).replace("torch.", ""), "compile": compiled,
                               "resolution": res, "batch": batch}
                        row.update(bench_config(est, height, width, args, batch))
                        results.append(row)
                        if args.json is not None:  # keep what is measured if the run is stopped later
                            common.write_json(args.json, "model_only", args, results)
                del est
                if cuda:
                    torch.cuda.empty_cache()
    common.print_table(results, ["encoder", "precision", "compile", "resolution", "batch", "network_input",
                                 "forward_p50_ms", "forward_p95_ms", "forward_fps", "estimate_tensor_p50_ms",
                                 "estimate_tensor_p95_ms", "estimate_tensor_fps"],
                       title=f"model only ({args.device})")
    return common.write_json(args.json, "model_only", args, results)


if __name__ == "__main__":
    main()
