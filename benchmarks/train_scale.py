"""Data-parallel `train`: optimizer steps/s and frames/s of the same run on 1 and N processes (torchrun).

Each row is one `depth-anything-ros train` run on the same synthetic sample bag and synthetic vits weights: one
process with `--grad-accum N` (the same global steps) and N processes under torchrun, gloo on the CPU or NCCL on
CUDA. The figures come from the run's own metrics.json. torchrun gives each worker one CPU thread
(OMP_NUM_THREADS=1), so the one-process run gets N threads: the same CPU threads in both rows. On a 2-core CPU two
processes cannot be faster than one: the point there is that the launch works; N GPUs measure the speed-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as common


def _run(out: Path, bag: Path, checkpoint: Path, processes: int, args) -> dict:
    """Train once with `processes` processes; the row of the table."""
    train = ["train", str(bag), "--gt-topic", "/camera/depth_gt_mm", "--checkpoint", str(checkpoint), "--out",
             str(out), "--model-max-depth", "20", "--input-size", str(args.size), "--batch-size", str(args.batch),
             "--steps", str(args.steps), "--val-every", str(args.steps), "--device", args.device, "--no-progress"]
    if processes == 1:
        command = [sys.executable, "-m", "depth_anything_ros.cli", *train, "--grad-accum", str(args.processes)]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                   "-m", "depth_anything_ros.cli", *train]
    started = time.monotonic()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.processes if processes == 1 else 1)}
    result = subprocess.run(command, capture_output=True, text=True, cwd=common.REPO_ROOT, env=env)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    return {"processes": processes, "steps": metrics["steps"], "frames_per_step": args.batch * args.processes,
            "steps_per_s": metrics["steps_per_s"], "frames_per_s": metrics["frames_per_s"],
            "wall_s": time.monotonic() - started}


def main(argv: list[str] | None = None) -> dict:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2, help="processes of the parallel run (default 2)")
    parser.add_argument("--size", type=int, default=98, help="training crop side (default 98)")
    parser.add_argument("--batch", type=int, default=2, help="frames per process and step (default 2)")
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps (default 20)")
    args = parser.parse_args(argv)
    common.apply_common(args)
    if args.quick:
        args.size, args.batch, args.steps = 28, 1, 3
    if args.device.startswith("cuda") and common.torch.cuda.device_count() < args.processes:
        print(f"note: {common.torch.cuda.device_count()} CUDA device(s): measuring that many processes, not "
              f"{args.processes}", file=sys.stderr)
        args.processes = common.torch.cuda.device_count()

    from depth_anything_ros.bag.sample import SampleConfig, write_sample_bag
    from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        frames = max(12, 2 * args.batch * args.processes + 2)
        write_sample_bag(root / "bag", SampleConfig(width=160, height=120, frames=frames))
        checkpoint = write_synthetic_checkpoint(root / "vits.safetensors", "vits")
        for processes in sorted({1, args.processes}):
            results.append(_run(root / f"run{processes}", root / "bag", checkpoint, processes, args))
            if args.json is not None:
                common.write_json(args.json, "train_scale", args, results)
    common.print_table(results, ["processes", "steps", "frames_per_step", "steps_per_s", "frames_per_s", "wall_s"],
                       title=f"train on 1 and {args.processes} processes ({args.device})")
    return common.write_json(args.json, "train_scale", args, results)


if __name__ == "__main__":
    main()
