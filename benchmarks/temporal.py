"""Flicker on a still scene: frame-to-frame depth change of V2 vs Video Depth Anything streaming and offline.

A still camera: the same synthetic picture every frame with new Gaussian sensor noise (sigma --noise grey levels).
Per model, at the same network input size and synthetic weights of the same encoder:
- `change_mean_m`: mean over frames 2..N of the mean |depth_t - depth_t-1| (what a costmap sees as flicker);
- `change_rel`: that over the mean depth;
- `ms_per_frame`: p50 time per frame (V2: estimate; VDA stream: estimate_stream; VDA offline: the clip's total / N);
- `peak_memory_mb`: on CUDA, the device memory high-water mark of that mode (one camera stream's state included).
With synthetic weights the figures show the mechanism only (random weights respond to noise as trained ones do
not); the temporal alignment error (TAE) needs ground truth and real weights and is not measured here.
"""

from __future__ import annotations

import time

import _common as common
import numpy as np
import torch


def _noisy_frames(frame: np.ndarray, count: int, sigma: float, seed: int = 0) -> list[np.ndarray]:
    """Return `count` copies of frame with fresh N(0, sigma^2) noise each, as uint8."""
    rng = np.random.default_rng(seed)
    return [np.clip(frame + rng.normal(0.0, sigma, frame.shape), 0, 255).astype(np.uint8) for _ in range(count)]


def _row(name: str, depths: list[np.ndarray], seconds: list[float], args, peak_memory_mb: float | None) -> dict:
    change = [float(np.abs(b - a).mean()) for a, b in zip(depths, depths[1:], strict=False)]
    mean_depth = float(np.mean([d.mean() for d in depths]))
    return {"model": name, "encoder": args.encoder, "resolution": args.resolution, "input_size": args.input_size,
            "frames": len(depths), "change_mean_m": float(np.mean(change)), "change_rel": float(np.mean(change)) /
            mean_depth, "mean_depth_m": mean_depth, "ms_per_frame": 1000 * float(np.median(seconds)),
            "peak_memory_mb": peak_memory_mb}


def main(argv: list[str] | None = None) -> dict:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--resolution", default="320x240", help="WxH camera frame (default 320x240)")
    parser.add_argument("--input-size", type=int, default=266, help="network input size of both models (266)")
    parser.add_argument("--encoder", default="vits", choices=("vits", "vitb", "vitl"))
    parser.add_argument("--frames", type=int, default=40, help="frames of the still scene (default 40)")
    parser.add_argument("--noise", type=float, default=3.0, help="sensor noise sigma, grey levels (default 3)")
    args = parser.parse_args(argv)
    common.apply_common(args)
    if args.quick:
        args.resolution, args.input_size, args.frames = "64x48", 42, 4
    width, height = (int(v) for v in args.resolution.split("x"))

    from depth_anything_ros.models.v2.estimator import DepthEstimator
    from depth_anything_ros.models.vda.checkpoint import synthetic_vda_state_dict
    from depth_anything_ros.models.vda.estimator import VDAEstimator

    frames = _noisy_frames(common.synthetic_image(height, width, seed=0), args.frames, args.noise)
    v2 = DepthEstimator(str(common.synthetic_checkpoint(args.encoder)), encoder=args.encoder, max_depth=20.0,
                        device=args.device, precision="fp32", input_size=args.input_size, compile=False)
    vda = VDAEstimator(synthetic_vda_state_dict(args.encoder, seed=0), device=args.device, precision="fp32",
                       input_size=args.input_size, compile=False)
    results = []

    def peak_mb() -> float | None:
        """Device memory high-water mark since the last call, MiB (None off CUDA); resets it."""
        if not str(args.device).startswith("cuda"):
            return None
        peak = torch.cuda.max_memory_allocated(args.device) / 2**20
        torch.cuda.reset_peak_memory_stats(args.device)
        return peak

    def timed(fn) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        out = fn()
        common.synchronize(args.device)
        return out.cpu().numpy(), time.perf_counter() - start

    for _ in range(args.warmup):
        v2.estimate(frames[0], "rgb8")
        vda.estimate(frames[0], "rgb8")
    peak_mb()
    runs = [timed(lambda f=f: v2.estimate_raw(v2.upload([f]), "rgb8")[0]) for f in frames]
    results.append(_row(f"v2-{args.encoder} per frame", [d for d, _ in runs], [s for _, s in runs], args, peak_mb()))
    stream = vda.new_stream()
    runs = [timed(lambda f=f: vda.estimate_stream(vda.upload([f]), "rgb8", stream)[0]) for f in frames]
    results.append(_row(f"vda-metric-{args.encoder} stream", [d for d, _ in runs], [s for _, s in runs], args,
                        peak_mb()))
    stream = None  # free the stream's state before the offline mode is measured
    start = time.perf_counter()
    depths = [d.cpu().numpy() for d in vda.estimate_clip((vda.upload([f]) for f in frames), "rgb8")]
    per_frame = (time.perf_counter() - start) / len(frames)
    results.append(_row(f"vda-metric-{args.encoder} offline", depths, [per_frame], args, peak_mb()))
    common.print_table(results, ["model", "resolution", "input_size", "frames", "change_mean_m", "change_rel",
                                 "mean_depth_m", "ms_per_frame", "peak_memory_mb"],
                       title=f"Flicker on a still scene, noise sigma {args.noise:g} ({args.device}, SYNTHETIC "
                             "weights: mechanism only)")
    return common.write_json(args.json, "temporal", args, results)


if __name__ == "__main__":
    main()
