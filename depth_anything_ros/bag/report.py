"""Report directory of `bag evaluate`: metrics.json, per_frame.csv and PNG plots (matplotlib, Agg, no pyplot)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from depth_anything_ros.frame.figures import new_figure, save, show_depth, show_error
from depth_anything_ros.frame.metrics import METRIC_NAMES, pixel_sample, sanitise_prediction
from depth_anything_ros.frame.provenance import model_label

SCATTER_POINTS = 20000
SAMPLE_PER_FRAME = 4000  # valid pixels kept per frame for the histogram and the scatter plot


def write_report(directory: Path, result: object, store: object) -> list[Path]:
    """Write every report file into directory (created if needed); returns their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = [directory / "metrics.json", directory / "per_frame.csv"]
    files[0].write_text(json.dumps(result.to_json(), indent=2) + "\n")
    _per_frame_csv(files[1], result)
    opts = result.options
    arrays = (store.get(f.index) for f in result.frames)
    gt, pred = pixel_sample(((a["gt"], a["pred"]) for a in arrays), opts.min_depth, opts.max_depth, result.scale,
                            result.shift, SAMPLE_PER_FRAME)
    suffix = f" ({alignment_text(result)})" if result.overall_aligned is not None else ""
    version = result.provenance.get("package_version", "?")
    footer = f"{model_label(result.model)} | bag {result.bag.name} | depth_anything_ros {version}"
    plots = {
        "abs_rel_over_time.png": lambda fig: _abs_rel_over_time(fig, result),
        "scale_over_time.png": lambda fig: _scale_over_time(fig, result),
        "error_histogram.png": lambda fig: _error_histogram(fig, gt, pred, suffix),
        "pred_vs_gt.png": lambda fig: _scatter(fig, gt, pred, suffix),
        "best_worst_frames.png": lambda fig: _best_worst(fig, result, store),
    }
    synthetic = bool(result.model and result.model.get("synthetic"))
    for name, draw in plots.items():
        fig = new_figure((12, 7.5) if name == "best_worst_frames.png" else (8, 5))
        draw(fig)
        save(fig, directory / name, footer, synthetic)
        files.append(directory / name)
    return files


def alignment_text(result: object) -> str:
    """'after scale alignment x 0.8123' (or with the shift) for titles of aligned figures."""
    text = f"after scale alignment \u00d7 {result.scale:.4f}"
    return text + (f" {result.shift:+.3f} m" if result.options.align == "scale_shift" else "")


def _per_frame_csv(path: Path, result: object) -> None:
    aligned = result.overall_aligned is not None
    header = ["index", "stamp_s", "gt_stamp_s", "valid_pixels", "frame_scale", *METRIC_NAMES]
    if aligned:
        header += [f"aligned_{m}" for m in METRIC_NAMES]
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        for f in result.frames:
            row = [f.index, f"{f.stamp * 1e-9:.9f}", f"{f.gt_stamp * 1e-9:.9f}", f.valid_pixels,
                   f"{f.frame_scale:.6f}", *(f"{f.metrics[m]:.6f}" for m in METRIC_NAMES)]
            if aligned:
                row += [f"{f.aligned[m]:.6f}" for m in METRIC_NAMES]
            out.writerow(row)


def _abs_rel_over_time(fig: Figure, result: object) -> None:
    ax = fig.add_subplot()
    t0 = result.frames[0].stamp
    t = [(f.stamp - t0) * 1e-9 for f in result.frames]
    ax.plot(t, [f.metrics["abs_rel"] for f in result.frames], "o-", ms=3, label="raw prediction")
    if result.overall_aligned is not None:
        ax.plot(t, [f.aligned["abs_rel"] for f in result.frames], "o-", ms=3,
                label=f"aligned (scale {result.scale:.3f})")
    ax.set_xlabel("time since first frame (s)")
    ax.set_ylabel("AbsRel")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Per-frame AbsRel, {result.source}")
    ax.grid(alpha=0.3)
    ax.legend()


def _scale_over_time(fig: Figure, result: object) -> None:
    """Per-frame least-squares scale of the predictions, and after the bag's alignment when there is one."""
    ax = fig.add_subplot(1, 1, 1)
    t = np.array([(f.stamp - result.frames[0].stamp) * 1e-9 for f in result.frames])
    s = np.array([f.frame_scale for f in result.frames])
    ax.plot(t, s, marker=".", label="per-frame scale of the predictions")
    if result.overall_aligned is not None and result.scale:
        ax.plot(t, s / result.scale, marker=".", label=f"after the bag's alignment (/ {result.scale:.4f})")
    ax.axhline(1.0, color="0.5", linewidth=0.8)
    stability = result.scale_stability or {}
    ax.set_xlabel("time (s)")
    ax.set_ylabel("scale that fits the frame")
    ax.set_title(f"Scale over time: std {stability.get('std', float('nan')):.4f}, largest change "
                 f"{stability.get('max_jump_relative', float('nan')):.1%}")
    ax.legend()


def _error_histogram(fig: Figure, gt: np.ndarray, pred: np.ndarray, suffix: str) -> None:
    ax = fig.add_subplot()
    err = pred - gt
    lim = float(np.percentile(np.abs(err), 99.5)) or 1.0
    ax.hist(err, bins=120, range=(-lim, lim), color="tab:blue")
    ax.axvline(0.0, color="k", lw=1)
    ax.axvline(float(np.median(err)), color="tab:red", lw=1, label=f"median {np.median(err):+.3f} m")
    ax.set_xlabel("prediction - ground truth (m)")
    ax.set_ylabel("pixels (sampled)")
    ax.set_title(f"Depth error{suffix}")
    ax.legend()


def _scatter(fig: Figure, gt: np.ndarray, pred: np.ndarray, suffix: str) -> None:
    ax = fig.add_subplot()
    if gt.size > SCATTER_POINTS:
        keep = np.random.default_rng(0).choice(gt.size, SCATTER_POINTS, replace=False)
        gt, pred = gt[keep], pred[keep]
    ax.scatter(gt, pred, s=2, alpha=0.25, lw=0)
    top = float(max(gt.max(), pred.max()))
    ax.plot([0, top], [0, top], "k--", lw=1, label="prediction = ground truth")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_aspect("equal")
    ax.set_xlabel("ground truth (m)")
    ax.set_ylabel("prediction (m)")
    ax.set_title(f"Predicted vs ground-truth depth{suffix}")
    ax.legend(loc="upper left")


def _best_worst(fig: Figure, result: object, store: object) -> None:
    key = "aligned" if result.overall_aligned is not None else "metrics"
    ranked = sorted(result.frames, key=lambda f: getattr(f, key)["abs_rel"])
    rows = [("worst", ranked[-1]), ("best", ranked[0])]
    o = result.options
    for r, (label, f) in enumerate(rows):
        arrays = store.get(f.index)
        gt = arrays["gt"]
        pred = sanitise_prediction(result.scale * arrays["pred"] + result.shift, o.min_depth, o.max_depth)
        valid = np.isfinite(gt) & (gt >= o.min_depth) & (gt <= o.max_depth)
        err = np.where(valid, np.abs(pred - gt), np.nan)
        top = float(np.nanmax(np.where(valid, gt, np.nan)))
        axes = [fig.add_subplot(len(rows), 4, r * 4 + c + 1) for c in range(4)]
        image = arrays.get("rgb")
        axes[0].set_xticks([])
        axes[0].set_yticks([])
        if image is None:
            axes[0].set_title("image: not in the bag")
        else:
            axes[0].imshow(image)
            aligned = f"\n{alignment_text(result)}" if key == "aligned" else ""
            axes[0].set_title(f"{label}: t={(f.stamp - result.frames[0].stamp) * 1e-9:.2f} s, "
                              f"AbsRel {getattr(f, key)['abs_rel']:.3f}{aligned}", fontsize=9)
        show_depth(fig, axes[1], np.where(valid, gt, np.nan), top, "ground truth")
        show_depth(fig, axes[2], pred, top, "prediction")
        show_error(fig, axes[3], err, float(np.nanpercentile(err, 99)) or 1.0, "|error|", "|error| (m)")
