"""`depth-anything-ros evaluate DATASET`: the model against an RGB-D dataset's ground truth, standard protocol.

The protocol (crop, depth range) is the dataset format's (datasets/*.py); the per-sample metrics are `bag
evaluate`'s (frame/metrics.py: evaluate_frame, AlignmentFit, mean_metrics) plus PSNR and SSIM of the normalised maps
(frame/map_metrics.py). The prediction is resized to the ground truth bilinearly (bag/ground_truth.resize_to_gt).
Outputs go to a temporary folder beside --out and are renamed to --out only when complete.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from depth_anything_ros.cli_options import CommandError, add_model_options, number
from depth_anything_ros.datasets.base import Dataset, Protocol
from depth_anything_ros.datasets.registry import add_dataset_options, dataset_intrinsics, open_dataset
from depth_anything_ros.frame.metrics import ALIGN_MODES, METRIC_NAMES, AlignmentFit, evaluate_frame, mean_metrics
from depth_anything_ros.frame.metrics import valid_mask as metric_mask

MAP_METRICS = ("psnr", "ssim")
CROPS = ("none", "eigen", "garg")


@dataclass
class SampleResult:
    """Metrics of one sample (raw and, with --align, aligned)."""

    index: int
    name: str
    valid_pixels: int
    metrics: dict[str, float]
    aligned: dict[str, float] | None = None


@dataclass
class DatasetEvaluation:
    """What `evaluate` found: per-sample and overall metrics and where they came from."""

    protocol: Protocol
    align: str
    samples: list[SampleResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # samples with too few valid ground-truth pixels
    scale: float = 1.0
    shift: float = 0.0
    overall: dict[str, float] = field(default_factory=dict)
    overall_aligned: dict[str, float] | None = None
    provenance: dict = field(default_factory=dict)
    samples_per_s: float = 0.0

    def to_json(self) -> dict:
        """metrics.json content."""
        p = self.protocol
        return {"provenance": self.provenance,
                "protocol": {"name": p.name, "crop": p.crop, "min_depth": p.min_depth, "max_depth": p.max_depth},
                "align": self.align, "scale": self.scale, "shift": self.shift,
                "samples_evaluated": len(self.samples), "samples_skipped": self.skipped,
                "overall": self.overall, "overall_aligned": self.overall_aligned,
                "samples_per_s": self.samples_per_s,
                "samples": [{"index": s.index, "name": s.name, "valid_pixels": s.valid_pixels, **s.metrics,
                             **({"aligned": s.aligned} if s.aligned else {})} for s in self.samples]}

    def text(self) -> str:
        """Summary lines for the terminal."""
        p = self.protocol
        lines = [f"{len(self.samples)} samples evaluated, {len(self.skipped)} skipped (too few valid pixels); "
                 f"protocol {p.name}: crop {p.crop}, [{p.min_depth:g}, {p.max_depth:g}] m",
                 "metrics (mean over samples): " + _format(self.overall)]
        if self.overall_aligned is not None:
            lines.append(f"after {self.align} alignment (scale {self.scale:.6f}, shift {self.shift:+.4f} m): "
                         + _format(self.overall_aligned))
        return "\n".join(lines)


def _format(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())


def register(subparsers) -> None:
    """Add the `evaluate` subcommand."""
    p = subparsers.add_parser(
        "evaluate", help="evaluate metric depth on an RGB-D dataset (NYU, SUN RGB-D, TUM, KITTI, folders)",
        description="Run the model on every sample of an RGB-D dataset and compare with its ground truth under the "
                    "dataset's standard protocol (NYU: Eigen crop, 0.001-10 m; KITTI: Garg crop, 0.001-80 m; SUN "
                    "RGB-D 0.001-8 m; TUM 0.001-10 m; folders 0.001-80 m; docs/datasets.md). Metrics are bag "
                    "evaluate's (d1 d2 d3 AbsRel SqRel RMSE RMSE-log log10 SiLog MAE) plus PSNR and SSIM of the "
                    "normalised maps. Writes OUT/metrics.json, OUT/per_sample.csv and OUT/report.html (offline, "
                    "sortable, worst samples first).")
    p.add_argument("dataset", type=Path, metavar="DATASET", help="dataset folder (or NYU .mat / list file)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (must not exist or be empty)")
    p.add_argument("--split", help="evaluate one split only (e.g. test for NYU's .h5 val folder, val for KITTI)")
    p.add_argument("--limit", type=number(int, 1), metavar="N", help="evaluate only the first N samples")
    p.add_argument("--align", choices=ALIGN_MODES, default="none",
                   help="none: raw metric depth; scale / scale_shift: also metrics after one least-squares fit "
                        "over all samples")
    p.add_argument("--crop", choices=CROPS, help="evaluation crop (default: the protocol's)")
    p.add_argument("--gt-min-depth", type=number(float, 0.0, above=True, unit=" metres"), metavar="M",
                   help="ground truth below this is ignored (default: the protocol's)")
    p.add_argument("--gt-max-depth", type=number(float, 0.0, above=True, unit=" metres"), metavar="M",
                   help="ground truth above this is ignored (default: the protocol's)")
    add_dataset_options(p)
    add_model_options(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    """Check the inputs, evaluate, write the outputs atomically and print the summary."""
    from depth_anything_ros.cli_options import make_estimator
    from depth_anything_ros.frame.pipeline import FramePipeline

    out = args.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CommandError(f"--out {out} exists already and is not an empty folder")
    dataset = open_dataset(args.dataset, args.dataset_format, dataset_intrinsics(args))
    indices = dataset.indices(args.split)[:args.limit]
    base = dataset.protocol
    protocol = Protocol(base.name, args.gt_min_depth or base.min_depth, args.gt_max_depth or base.max_depth,
                        args.crop or base.crop)
    if not protocol.min_depth < protocol.max_depth:
        raise CommandError(f"--gt-min-depth {protocol.min_depth:g} must be below --gt-max-depth "
                           f"{protocol.max_depth:g}")
    pipeline = FramePipeline(make_estimator(args))
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        result = evaluate_dataset(dataset, indices, pipeline, protocol, args.align, args.batch,
                                  not args.no_progress, work)
        result.provenance = provenance(dataset, args, pipeline.estimator)
        write_outputs(work, result, dataset)
        umask = os.umask(0)
        os.umask(umask)
        work.chmod(0o777 & ~umask)  # mkdtemp makes it private; the finished folder gets the usual permissions
        if out.exists():
            out.rmdir()
        os.rename(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(result.text())
    print(f"report: {out / 'report.html'}")
    return 0


def provenance(dataset: Dataset, args: argparse.Namespace, estimator) -> dict:
    """Package version, model (checkpoint and its sha256), dataset, format, split."""
    from depth_anything_ros.frame.provenance import model_provenance, package_version

    return {"package_version": package_version(), "model": model_provenance(estimator, args.checkpoint),
            "dataset": str(dataset.root.resolve()), "format": dataset.format, "split": args.split, "limit": args.limit}


def evaluate_dataset(dataset: Dataset, indices: list[int], pipeline, protocol: Protocol, align: str, batch: int,
                     progress: bool, store_dir: Path) -> DatasetEvaluation:
    """Run the model on the samples and score each; arrays of scored samples are kept in store_dir/arrays."""
    from depth_anything_ros.bag.progress import Progress

    result = DatasetEvaluation(protocol, align)
    fit = AlignmentFit()
    arrays = store_dir / "arrays"
    arrays.mkdir()
    with Progress(len(indices), "evaluate", progress, unit="samples") as bar:
        for start in range(0, len(indices), batch):
            chunk = [dataset.load(i) for i in indices[start:start + batch]]
            for index, sample, pred in zip(indices[start:start + batch], chunk, predict(pipeline, chunk),
                                           strict=True):
                _score(index, sample, pred, protocol, result, fit, arrays)
            bar.update(len(chunk))
        result.samples_per_s = bar.rate
    if not result.samples:
        raise CommandError(f"no sample had enough valid ground-truth pixels inside [{protocol.min_depth:g}, "
                           f"{protocol.max_depth:g}] m and the {protocol.crop} crop")
    result.overall = mean_metrics([s.metrics for s in result.samples]) | _map_means(result.samples, "metrics")
    if align != "none":
        result.scale, result.shift = fit.solve(align)
        for s in result.samples:
            with np.load(arrays / f"{s.index}.npz") as a:
                pred, gt = a["pred"], a["gt"]
            s.aligned = evaluate_frame(pred, gt, protocol.min_depth, protocol.max_depth, result.scale, result.shift)
        result.overall_aligned = mean_metrics([s.aligned for s in result.samples])
    return result


def predict(pipeline, samples: list) -> list[np.ndarray]:
    """(H,W) float32 metric depth of each sample from the frame pipeline (the node's and estimate's)."""
    from depth_anything_ros.frame.camera import CameraInfo
    from depth_anything_ros.frame.pipeline import FrameInput, FrameOptions

    inputs = []
    for s in samples:
        height, width = s.rgb.shape[:2]
        info = (CameraInfo.pinhole(width, height, *s.intrinsics) if s.intrinsics is not None
                else CameraInfo.from_fov(width, height, 60.0))
        inputs.append(FrameInput(camera=(width, height), pixels=s.rgb, encoding="rgb8", camera_info=info,
                                 outputs=("depth",)))
    preds = []
    for s, out in zip(samples, pipeline.run(inputs, FrameOptions()), strict=True):
        if out.problems or out.depth is None:
            raise CommandError(f"sample {s.name}: " + "; ".join(p.text() for p in out.problems))
        preds.append(out.depth)
    return preds


def _score(index: int, sample, pred: np.ndarray, protocol: Protocol, result: DatasetEvaluation, fit: AlignmentFit,
           arrays: Path) -> None:
    from depth_anything_ros.bag.ground_truth import resize_to_gt
    from depth_anything_ros.frame.map_metrics import map_metrics

    gt = protocol.ground_truth(sample.depth)
    pred = resize_to_gt(pred, gt.shape)
    metrics = evaluate_frame(pred, gt, protocol.min_depth, protocol.max_depth)
    if metrics is None:
        result.skipped.append(sample.name)
        return
    valid = metric_mask(gt, protocol.min_depth, protocol.max_depth)
    metrics |= map_metrics(pred, gt, valid)
    fit.add(pred, gt, protocol.min_depth, protocol.max_depth)
    np.savez(arrays / f"{index}.npz", pred=pred, gt=gt, rgb=sample.rgb)
    result.samples.append(SampleResult(index, sample.name, int(valid.sum()), metrics))


def _map_means(samples: list[SampleResult], attr: str) -> dict[str, float]:
    means = {}
    for name in MAP_METRICS:
        values = [getattr(s, attr)[name] for s in samples if math.isfinite(getattr(s, attr)[name])]
        means[name] = float(np.mean(values)) if values else float("nan")
    return means


def write_outputs(directory: Path, result: DatasetEvaluation, dataset: Dataset) -> None:
    """metrics.json, per_sample.csv and report.html into directory; the arrays folder is removed after."""
    from depth_anything_ros.evaluate_page import write_page

    (directory / "metrics.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
    columns = [*METRIC_NAMES, *MAP_METRICS]
    lines = [",".join(["index", "name", "valid_pixels", *columns])]
    lines += [",".join([str(s.index), json.dumps(s.name), str(s.valid_pixels),
                        *(f"{s.metrics[c]:.6f}" for c in columns)]) for s in result.samples]
    (directory / "per_sample.csv").write_text("\n".join(lines) + "\n")
    write_page(directory / "report.html", result, directory / "arrays")
    shutil.rmtree(directory / "arrays")
