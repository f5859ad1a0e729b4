"""Fine-tuning steps: optimizer steps/s and peak memory of the official recipe, autocast against float32.

For each encoder the same synthetic weights, the same batches (random crops of a synthetic frame and a smooth
ground truth) and the same recipe run `--steps` optimizer steps of `train_step` (SiLog, AdamW groups), once in
float32 and once per autocast dtype (bf16, and fp16 with a GradScaler on CUDA). A row holds steps/s, peak memory
(CUDA: max allocated; CPU: the process's peak resident set) and the loss of every step; the autocast rows add the
largest difference of their losses from the float32 run's.
"""

from __future__ import annotations

import resource
import time

import _common as common
import numpy as np
import torch


def _batches(args, count: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """`count` batches of (image (B,3,S,S), depth (B,S,S) metres, valid (B,S,S)) on the device, fixed by the seed."""
    from depth_anything_ros.train.config import Recipe
    from depth_anything_ros.train.recipe import train_sample

    recipe = Recipe(input_size=args.size)
    rng = np.random.default_rng(seed)
    height, width = args.size + args.size // 4, args.size + args.size // 2
    rgb = common.synthetic_image(height, width, seed=seed)
    rows, cols = np.mgrid[0:height, 0:width]
    gt = (1.0 + 4.0 * rows / height + np.sin(cols / 17.0)).astype(np.float32)  # 1..6 m, smooth
    out = []
    for _ in range(count):
        samples = [train_sample(rgb, gt, recipe, 20.0, rng) for _ in range(args.batch)]
        out.append(tuple(torch.stack(parts).to(args.device) for parts in zip(*samples, strict=True)))
    return out


def _run(encoder: str, precision: str, batches: list, args) -> dict:
    """Time `train_step` over the batches for one encoder and precision."""
    from depth_anything_ros.models.synthetic_weights import synthetic_state_dict
    from depth_anything_ros.models.v2.network import DepthAnythingV2
    from depth_anything_ros.train.config import Recipe
    from depth_anything_ros.train.recipe import make_optimizer, train_step

    recipe = Recipe(input_size=args.size, batch_size=args.batch)
    model = DepthAnythingV2(encoder, max_depth=20.0)
    model.load_state_dict(synthetic_state_dict(encoder, seed=0))
    model.to(args.device).train()
    optimizer = make_optimizer(model, recipe)
    autocast = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    scaler = torch.amp.GradScaler(args.device) if precision == "fp16" else None
    cuda = torch.device(args.device).type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(args.device)
    losses, times = [], []
    for index, batch in enumerate(batches):
        common.synchronize(args.device)
        start = time.perf_counter()
        loss = train_step(model, optimizer, [batch], recipe, autocast=autocast, scaler=scaler)
        common.synchronize(args.device)
        if index >= args.warmup:
            times.append(time.perf_counter() - start)
        losses.append(loss)
    peak = (torch.cuda.max_memory_allocated(args.device) if cuda
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"encoder": encoder, "precision": precision, "size": args.size, "batch": args.batch,
            "steps_per_s": len(times) / sum(times) if times else float("nan"),
            "step_p50_ms": float(np.median(times)) * 1e3 if times else float("nan"),
            "peak_memory_mb": peak / 2**20, "losses": losses}


def main(argv: list[str] | None = None) -> dict:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--encoders", type=common.csv_list, default=["vits", "vitb"], help="default vits,vitb")
    parser.add_argument("--precisions", type=common.csv_list, default=None,
                        help="default: fp32,bf16,fp16 on CUDA; fp32,bf16 on CPU")
    parser.add_argument("--size", type=int, default=518, help="training crop side (default 518, the official one)")
    parser.add_argument("--batch", type=int, default=4, help="batch size (default 4)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps after warm-up (CUDA 20, CPU 3)")
    args = parser.parse_args(argv)
    common.apply_common(args)
    cuda = torch.device(args.device).type == "cuda"
    if args.quick:
        args.size, args.batch, args.encoders = 70, 2, ["vits"]
    steps = args.steps or (args.iters if args.quick else (20 if cuda else 3))
    precisions = args.precisions or (["fp32", "bf16", "fp16"] if cuda else ["fp32", "bf16"])
    batches = _batches(args, args.warmup + steps, seed=0)
    results = []
    for encoder in args.encoders:
        reference = None
        for precision in precisions:
            row = _run(encoder, precision, batches, args)
            if precision == "fp32":
                reference = row["losses"]
            elif reference is not None:
                row["max_loss_diff_vs_fp32"] = max(abs(a - b) for a, b in zip(row["losses"], reference, strict=True))
            results.append(row)
            if args.json is not None:
                common.write_json(args.json, "train_steps", args, results)
    common.print_table(results, ["encoder", "precision", "size", "batch", "steps_per_s", "step_p50_ms",
                                 "peak_memory_mb", "max_loss_diff_vs_fp32"],
                       title=f"train steps ({args.device})")
    return common.write_json(args.json, "train_steps", args, results)


if __name__ == "__main__":
    main()
