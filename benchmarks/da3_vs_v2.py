"""DA3METRIC-LARGE next to Depth-Anything-V2 vitl at the same network input: speed, and DA3's low-precision error.

Both models get the same camera frame and the same network input size (V2: lower-bound short side; DA3: upper-bound
long side, chosen so that both give the same h' x w'), synthetic weights:
- `forward`: the network alone on a (1, 3, h', w') tensor on the device;
- `estimate`: uint8 frame -> metric depth at the frame size (preprocessing, network, focal scaling / upsampling).
For DA3 in a lower precision the row also holds max/mean |diff| of its depth against DA3 in fp32 on the same frame
(pixels valid in both) and the fraction of pixels whose sky decision differs.
"""

from __future__ import annotations

import _common as common
import numpy as np
import torch


def _bench(est, frame: np.ndarray, x: torch.Tensor, args, focal=None) -> dict:
    """Time the network on `x` and the full estimate on `frame`, interleaved."""
    net = common.network(est)
    raw = est.upload([frame], "rgb8")
    full = (lambda: est.estimate_raw(raw, "rgb8")) if focal is None else (
        lambda: est.estimate_raw(raw, "rgb8", [focal]))
    with torch.inference_mode():
        samples = common.time_interleaved({"forward": lambda: net(x), "estimate": full}, args.warmup, args.iters,
                                          est.device)
    row = {}
    for name, values in samples.items():
        row.update({f"{name}_{k}": v for k, v in common.summarise(values).items() if k != "n"})
    return row


def main(argv: list[str] | None = None) -> dict:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--resolution", default="640x480", help="WxH camera frame (default 640x480)")
    parser.add_argument("--process-res", type=int, default=504, help="DA3 long side (V2 gets the matching short side)")
    parser.add_argument("--precisions", type=common.csv_list, default=None,
                        help="comma-separated precisions (default: fp32,bf16 on CPU; fp32,fp16,bf16 on CUDA)")
    parser.add_argument("--compile", action="store_true", help="torch.compile both networks (default eager)")
    args = parser.parse_args(argv)
    common.apply_common(args)
    if args.quick:
        args.resolution, args.process_res = "64x48", 70
    precisions = args.precisions or (common.precisions_for(args.device) if args.device == "cuda" else ["fp32", "bf16"])
    width, height = (int(v) for v in args.resolution.split("x"))

    from depth_anything_ros.models.da3.checkpoint import synthetic_da3_state_dict
    from depth_anything_ros.models.da3.estimator import DA3Estimator
    from depth_anything_ros.models.da3.preprocess import resize_steps
    from depth_anything_ros.models.image import network_input_size
    from depth_anything_ros.models.v2.estimator import DepthEstimator

    net_h, net_w = resize_steps(height, width, args.process_res)[1]
    v2_size = min(net_h, net_w)
    assert network_input_size(height, width, v2_size) == (net_h, net_w), "no V2 input size gives DA3's input"
    frame = common.synthetic_image(height, width, seed=0)
    focal = (width / 2 / np.tan(np.radians(30.0)),) * 2  # a 60 degree horizontal field of view
    da3_state = synthetic_da3_state_dict(seed=0)
    v2_checkpoint = str(common.synthetic_checkpoint("vitl"))
    results, reference = [], None
    for precision in precisions:
        for family in ("v2-vitl", "da3metric-large"):
            if family == "v2-vitl":
                est = DepthEstimator(v2_checkpoint, encoder="vitl", max_depth=20.0, device=args.device,
                                     precision=precision, input_size=v2_size, compile=args.compile)
            else:
                est = DA3Estimator(da3_state, device=args.device, precision=precision, input_size=args.process_res,
                                   compile=args.compile)
            x = torch.randn(1, 3, net_h, net_w, generator=torch.Generator().manual_seed(0)).to(est.device, est.dtype)
            row = {"model": family, "precision": precision, "compiled": args.compile, "resolution": args.resolution,
                   "network_input": f"{net_w}x{net_h}"}
            row.update(_bench(est, frame, x, args, None if family == "v2-vitl" else focal))
            if family == "da3metric-large":
                metric, sky = est.network_outputs(est.upload([frame]), "rgb8", [focal])
                metric, sky = metric.float().cpu().numpy(), sky.float().cpu().numpy() >= 0.3
                if reference is None:
                    reference = (metric, sky)
                else:
                    both = ~(sky | reference[1])
                    diff = np.abs(metric - reference[0])[both]
                    row.update(depth_max_abs_diff_m=float(diff.max()), depth_mean_abs_diff_m=float(diff.mean()),
                               depth_range_m=float(np.ptp(reference[0][both])),
                               sky_flipped=float((sky != reference[1]).mean()))
            results.append(row)
            if args.json is not None:
                common.write_json(args.json, "da3_vs_v2", args, results)
            del est
    common.print_table(results, ["model", "precision", "compiled", "resolution", "network_input", "forward_p50_ms",
                                 "estimate_p50_ms", "estimate_fps", "depth_max_abs_diff_m", "depth_mean_abs_diff_m",
                                 "sky_flipped"], title=f"DA3METRIC-LARGE vs V2 vitl ({args.device})")
    return common.write_json(args.json, "da3_vs_v2", args, results)


if __name__ == "__main__":
    main()
