"""`evaluate DATASET` throughput and the dataset readers' cost per sample.

Readers: each format's reader on a small dataset written in its layout (test/dataset_writers.py) at 640x480
(KITTI 1216x352; --quick: 64x48), every sample loaded --iters times: ms per sample (decode, unit conversion, size
check). Evaluation: `evaluate_dataset` (read, the frame pipeline, metrics, PSNR/SSIM, the arrays kept for the
report) on an NYU .h5 dataset of --samples 640x480 samples with synthetic vits at input 518 (--quick: 70), against
the frame pipeline alone on the same samples, alternated sample by sample: samples/s of both and the evaluation's
overhead per sample (median difference).

    python benchmarks/dataset_eval.py [--device cpu] [--samples 6] [--iters 10] [--json out.json]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import _common
import numpy as np

sys.path.insert(0, str(_common.REPO_ROOT / "test"))
import dataset_writers as writers  # noqa: E402 - the tests' dataset writers

from depth_anything_ros.datasets.base import Protocol  # noqa: E402
from depth_anything_ros.datasets.registry import open_dataset  # noqa: E402
from depth_anything_ros.evaluate import evaluate_dataset, predict  # noqa: E402
from depth_anything_ros.frame.pipeline import FramePipeline  # noqa: E402
from depth_anything_ros.models.registry import load_estimator  # noqa: E402
from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint  # noqa: E402


def reader_rows(root: Path, quick: bool, iters: int) -> list[dict]:
    """Time each format's reader: milliseconds per sample."""
    size, kitti_size = ((48, 64), (48, 160)) if quick else ((480, 640), (352, 1216))
    layouts = {
        "folder (16-bit PNG mm)": lambda p: writers.write_folder(p, "png", size=size),
        "folder (float TIFF)": lambda p: writers.write_folder(p, "tiff", size=size),
        "folder (NPY)": lambda p: writers.write_folder(p, "npy", size=size),
        "nyu (.h5)": lambda p: writers.write_nyu_h5(p, size=size),
        "nyu (labeled .mat)": lambda p: writers.write_nyu_mat(p / "nyu_depth_v2_labeled.mat", size=size),
        "nyu (list + PNG)": lambda p: writers.write_nyu_list(p, size=size),
        "sun (bit-rotated PNG)": lambda p: writers.write_sun(p, size=size),
        "tum (PNG / 5000)": lambda p: writers.write_tum(p, size=size),
        "kitti (PNG / 256)": lambda p: writers.write_kitti_selection(p, size=kitti_size),
    }
    rows = []
    for k, (name, write) in enumerate(layouts.items()):
        folder = root / f"reader{k}"
        write(folder)
        dataset = open_dataset(folder)
        samples = [dataset.load(i) for i in range(len(dataset))]  # warm the file cache
        start = time.perf_counter()
        for _ in range(iters):
            for i in range(len(dataset)):
                dataset.load(i)
        per_sample = (time.perf_counter() - start) / (iters * len(dataset))
        height, width = samples[0].depth.shape
        rows.append({"format": name, "size": f"{width}x{height}", "samples": len(dataset),
                     "ms_per_sample": per_sample * 1e3})
    return rows


def main() -> None:
    parser = _common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=6, help="NYU .h5 samples evaluated (default 6)")
    args = parser.parse_args()
    _common.apply_common(args)
    input_size, samples = (70, 2) if args.quick else (518, args.samples)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        readers = reader_rows(root, args.quick, args.iters)
        _common.print_table(readers, ["format", "size", "samples", "ms_per_sample"], "reader cost per sample")
        size = (48, 64) if args.quick else (480, 640)
        for k in range(samples):  # an NYU .h5 tree: val/official/NNNNN.h5
            rgb, depth = writers.scene(*size, seed=k, far=9.0)
            path = root / "nyu" / "val" / "official" / f"{k:05d}.h5"
            path.parent.mkdir(parents=True, exist_ok=True)
            with writers.h5py.File(path, "w") as h5:
                h5.create_dataset("rgb", data=rgb.transpose(2, 0, 1))
                h5.create_dataset("depth", data=np.nan_to_num(depth))
        checkpoint = write_synthetic_checkpoint(root / "synthetic_vits.safetensors", "vits", seed=0)
        estimator = load_estimator(checkpoint, encoder="vits", max_depth=20.0, input_size=input_size,
                                   device=args.device)
        pipeline = FramePipeline(estimator)
        dataset = open_dataset(root / "nyu")
        loaded = [dataset.load(i) for i in range(len(dataset))]
        predict(pipeline, loaded[:1])  # warm-up
        model_s, eval_s = [], []
        for i, sample in enumerate(loaded):  # alternated sample by sample: a loaded machine slows both alike
            start = time.perf_counter()
            predict(pipeline, [sample])
            model_s.append(time.perf_counter() - start)
            (root / f"eval{i}").mkdir()
            start = time.perf_counter()
            evaluate_dataset(dataset, [i], pipeline, dataset.protocol, "none", 1, False, root / f"eval{i}")
            eval_s.append(time.perf_counter() - start)
        model_p50, eval_p50 = float(np.median(model_s)), float(np.median(eval_s))
        protocol: Protocol = dataset.protocol
        rows = [{"path": "frame pipeline only", "samples": len(loaded), "input_size": input_size,
                 "samples_per_s": len(loaded) / sum(model_s), "p50_ms": model_p50 * 1e3},
                {"path": f"evaluate ({protocol.name}, {protocol.crop} crop)", "samples": len(loaded),
                 "input_size": input_size, "samples_per_s": len(loaded) / sum(eval_s), "p50_ms": eval_p50 * 1e3,
                 "overhead_p50_ms": (eval_p50 - model_p50) * 1e3}]
        _common.print_table(rows, ["path", "samples", "input_size", "samples_per_s", "p50_ms", "overhead_p50_ms"],
                            f"evaluate, {size[1]}x{size[0]} NYU .h5, synthetic vits")
    _common.write_json(args.json, "dataset_eval", args, readers + rows)


if __name__ == "__main__":
    main()
