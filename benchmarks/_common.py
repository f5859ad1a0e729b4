"""Shared helpers of the benchmark scripts: timing, percentiles, tables, JSON and machine information."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # scripts run as `python benchmarks/x.py` from a source checkout
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

RESOLUTIONS = {"640x480": (480, 640), "1280x720": (720, 1280)}


def base_parser(description: str) -> argparse.ArgumentParser:
    """Argument parser holding the options every benchmark shares."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--device", default="auto", help="auto (cuda when present, else cpu), cpu or cuda")
    parser.add_argument("--warmup", type=int, default=None, help="untimed calls before measuring (CUDA 10, CPU 2)")
    parser.add_argument("--iters", type=int, default=None, help="timed calls per configuration (CUDA 50, CPU 10)")
    parser.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    parser.add_argument("--quick", action="store_true",
                        help="smoke configuration: tiny input size, 2 iterations (no meaningful timing)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    return parser


def apply_common(args: argparse.Namespace) -> None:
    """Resolve --device, fill the device's default --warmup/--iters, apply --quick and --threads, in place."""
    args.device = resolve_device(args.device)
    cuda = torch.device(args.device).type == "cuda"
    if args.warmup is None:
        args.warmup = 10 if cuda else 2
    if args.iters is None:
        args.iters = 50 if cuda else 10
    if args.quick:
        args.warmup, args.iters = 1, 2
    if args.threads:
        torch.set_num_threads(args.threads)


def resolve_device(name: str) -> str:
    """'auto' -> 'cuda' when available else 'cpu'; an explicit 'cuda' without CUDA raises SystemExit."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but torch.cuda.is_available() is False")
    return name


def synchronize(device: str | torch.device) -> None:
    """Wait for queued CUDA work so that wall-clock times are real; no-op on CPU."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], object], warmup: int, iters: int, device: str | torch.device = "cpu") -> list[float]:
    """Seconds of each of `iters` calls of `fn` after `warmup` untimed calls, synchronising CUDA per call."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    samples = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        synchronize(device)
        samples.append(time.perf_counter() - start)
    return samples


def time_interleaved(fns: dict[str, Callable[[], object]], warmup: int, iters: int,
                     device: str | torch.device = "cpu") -> dict[str, list[float]]:
    """Seconds per call of each named function, alternating them call by call so that load drift hits all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    synchronize(device)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(iters):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            synchronize(device)
            samples[name].append(time.perf_counter() - start)
    return samples


def summarise(samples: Sequence[float], frames_per_call: int = 1) -> dict:
    """Latency percentiles in ms and frames/s of per-call durations in seconds."""
    arr = np.asarray(samples, dtype=np.float64)
    if arr.size == 0:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "mean_ms": None, "fps": None}
    return {
        "n": int(arr.size),
        "p50_ms": float(np.percentile(arr, 50) * 1e3),
        "p95_ms": float(np.percentile(arr, 95) * 1e3),
        "mean_ms": float(arr.mean() * 1e3),
        "fps": float(frames_per_call * arr.size / arr.sum()),
    }


def fmt(value: object, digits: int = 2) -> str:
    """Table cell text: floats rounded, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}e}" if 0 < abs(value) < 10 ** -digits else f"{value:.{digits}f}"
    return str(value)


def print_table(rows: Iterable[dict], columns: Sequence[str], title: str | None = None) -> str:
    """Print rows as a Markdown table with the given columns and return its text."""
    rows = list(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    lines += ["| " + " | ".join(fmt(row.get(c)) for c in columns) + " |" for row in rows]
    text = ("\n".join([f"### {title}", ""] + lines) if title else "\n".join(lines)) + "\n"
    print(text, flush=True)
    return text


def write_json(path: Path | None, benchmark: str, args: argparse.Namespace, results: list[dict],
               extra: dict | None = None) -> dict:
    """Write {benchmark, machine, config, results} to `path` (when given) and return it."""
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    payload = {"benchmark": benchmark, "machine": machine_info(), "config": config, "results": results,
               "command": " ".join([Path(sys.executable).name] + sys.argv)}
    if extra:
        payload.update(extra)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2) + "\n")
    return payload


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo, else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_driver() -> str | None:
    """NVIDIA driver version reported by nvidia-smi, None when absent."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().splitlines()[0] if out.strip() else None


def machine_info() -> dict:
    """CPU model, core count, load, python/torch/numpy/opencv versions, GPU name and driver when present."""
    import cv2

    info = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "loadavg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "cuda_available": torch.cuda.is_available(),
        "gpu": None,
        "gpu_driver": None,
        "cuda_runtime": torch.version.cuda,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_driver"] = gpu_driver()
        info["bf16_supported"] = torch.cuda.is_bf16_supported()
    return info


def synthetic_image(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """(H, W, C) uint8 image with smooth gradients plus noise, deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / max(width - 1, 1), yy / max(height - 1, 1), (xx + yy) / max(width + height - 2, 1)], -1)
    img = base[..., :channels] * 200.0 + rng.uniform(0, 55, size=(height, width, channels))
    return img.astype(np.uint8)


_CHECKPOINT_DIR = Path(tempfile.gettempdir()) / "depth_anything_ros_bench"


def synthetic_checkpoint(encoder: str, seed: int = 0) -> Path:
    """Path of a cached synthetic checkpoint with the official key names (written once per encoder and seed)."""
    from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint

    _CHECKPOINT_DIR.mkdir(parents=True, exist_ok=True)
    path = _CHECKPOINT_DIR / f"synthetic_{encoder}_{seed}.pth"
    if not path.exists():
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.pth")
        write_synthetic_checkpoint(tmp, encoder, seed)
        os.replace(tmp, path)
    return path


def precisions_for(device: str) -> list[str]:
    """Precisions worth measuring on `device`: fp32 on CPU; fp32, fp16 and bf16 (when supported) on CUDA."""
    if torch.device(device).type != "cuda":
        return ["fp32"]
    return ["fp32", "fp16"] + (["bf16"] if torch.cuda.is_bf16_supported() else [])


def csv_list(text: str) -> list[str]:
    """'a,b' -> ['a', 'b'] for argparse."""
    return [item.strip() for item in text.split(",") if item.strip()]


def network(est) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return the callable DepthEstimator runs its network through (the torch.compile'd module when compiled)."""
    return getattr(est, "_forward", est.model)
