"""Peak memory of one large frame through the frame pipeline, and what stays allocated after the next small frame.

Each measurement runs in a fresh subprocess (so peaks do not mix): load the model, run one small frame (baseline),
one large frame (peak), one small frame again (what the large one left behind). Reported: resident set size (RSS)
in MB on the CPU, or torch's peak allocated memory on CUDA.

    python benchmarks/large_frame_memory.py --size 7680x4320 --json build/bench/large_frame_memory.json
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import REPO_ROOT, base_parser, write_json

CHILD = r"""
import json, resource, sys
import numpy as np, torch
sys.path.insert(0, sys.argv[5])
from depth_anything_ros.frame.camera import CameraInfo
from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint
from depth_anything_ros.models.v2.estimator import DepthEstimator
from depth_anything_ros.frame.frame_io import OUTPUTS
from depth_anything_ros.frame.pipeline import FrameInput, FrameOptions, FramePipeline

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024

width, height = (int(v) for v in sys.argv[1].split("x"))
device, input_size, ckpt = sys.argv[2], int(sys.argv[3]), sys.argv[4]
est = DepthEstimator(write_synthetic_checkpoint(ckpt, "vits", seed=0), max_depth=20.0, device=device,
                     input_size=input_size, compile=False)
pipeline = FramePipeline(est)
cuda = est.device.type == "cuda"

def frame(w, h):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    pixels.setflags(write=False)  # like a message buffer
    info = CameraInfo.pinhole(w, h, 0.8 * w, 0.8 * w, (w - 1) / 2, (h - 1) / 2)
    return FrameInput(camera="cam", pixels=pixels, encoding="rgb8", camera_info=info, outputs=OUTPUTS[:4])

def run(w, h):
    results = pipeline.run([frame(w, h)], FrameOptions())
    assert not results[0].problems, results[0].problems
    sizes = sum(getattr(results[0], a).nbytes for a in ("depth", "colored")) + len(results[0].cloud.data)
    return sizes

run(640, 480)
base = rss_mb()
if cuda:
    torch.cuda.reset_peak_memory_stats()
outputs = run(width, height)
peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
cuda_peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
run(640, 480)
after = rss_mb()
print(json.dumps({"baseline_rss_mb": base, "peak_rss_mb": peak_rss, "after_next_small_frame_rss_mb": after,
                  "large_frame_outputs_mb": outputs / 2**20, "cuda_peak_allocated_mb": cuda_peak}))
"""


def main() -> None:
    """Measure and print the table (and the JSON with --json)."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--size", default="7680x4320", help="large frame WIDTHxHEIGHT (default 7680x4320, 8K)")
    parser.add_argument("--input-size", type=int, default=518, help="network input size (default 518)")
    args = parser.parse_args()
    if args.quick:
        args.size, args.input_size = "1920x1080", 70
    device = "cuda" if args.device == "auto" and _cuda() else ("cpu" if args.device == "auto" else args.device)
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([sys.executable, "-c", CHILD, args.size, device, str(args.input_size),
                               str(Path(tmp) / "vits.pth"), str(REPO_ROOT)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print("| frame | device | baseline RSS MB | peak RSS MB | RSS after next small frame MB | outputs MB |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| {args.size} | {device} | {result['baseline_rss_mb']:.0f} | {result['peak_rss_mb']:.0f} | "
          f"{result['after_next_small_frame_rss_mb']:.0f} | {result['large_frame_outputs_mb']:.0f} |")
    if result["cuda_peak_allocated_mb"] is not None:
        print(f"CUDA peak allocated: {result['cuda_peak_allocated_mb']:.0f} MB")
    write_json(args.json, "large_frame_memory", args, [{"size": args.size, "device": device, **result}])


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    main()
