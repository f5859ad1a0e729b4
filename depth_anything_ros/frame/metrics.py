"""Metric depth evaluation: the Depth Anything V2 / ZoeDepth error measures and least-squares scale alignment.

Definitions follow Depth Anything V2 ``metric_depth/util/metric.py``: errors over the valid ground-truth pixels of
one frame, SiLog with lambda = 0.5 (no x100), frames with fewer than 10 valid pixels skipped and the overall figure
the mean over frames, as its evaluation loop does. Predictions are used as they are (no clipping into the range,
so an over-range prediction counts fully); only unusable values are replaced, as ZoeDepth does: NaN and <= 0 by
min_depth, +inf by max_depth. MAE is the mean absolute error in metres; log10 is reported as both codes do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "mae", "silog", "log10", "d1", "d2", "d3")
LOWER_IS_BETTER = {name: not name.startswith("d") for name in METRIC_NAMES}
ALIGN_MODES = ("none", "scale", "scale_shift")
MIN_VALID_PIXELS = 10  # the official evaluation skips frames with fewer valid GT pixels


def valid_mask(gt: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
    """Pixels whose ground truth is finite and inside [min_depth, max_depth]; gt (H,W) metres -> (H,W) bool."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(gt) & (gt >= min_depth) & (gt <= max_depth)


def sanitise_prediction(pred: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
    """Float64 copy with NaN and values <= 0 replaced by min_depth and +inf by max_depth (ZoeDepth); any shape."""
    out = np.nan_to_num(np.asarray(pred, dtype=np.float64), nan=min_depth, posinf=max_depth, neginf=min_depth)
    out[out <= 0.0] = min_depth
    return out


def compute_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """All METRIC_NAMES for matching 1-D arrays of positive predicted and ground-truth depths (metres)."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 1 or pred.size == 0:
        raise ValueError(f"expected two equal non-empty 1-D arrays, got {pred.shape} and {gt.shape}")
    thresh = np.maximum(gt / pred, pred / gt)
    diff = pred - gt
    diff_log = np.log(pred) - np.log(gt)
    return {
        "abs_rel": float(np.mean(np.abs(diff) / gt)),
        "sq_rel": float(np.mean(diff**2 / gt)),
        "rmse": float(np.sqrt(np.mean(diff**2))),
        "rmse_log": float(np.sqrt(np.mean(diff_log**2))),
        "mae": float(np.mean(np.abs(diff))),
        "silog": float(np.sqrt(np.mean(diff_log**2) - 0.5 * np.mean(diff_log) ** 2)),
        "log10": float(np.mean(np.abs(np.log10(pred) - np.log10(gt)))),
        "d1": float(np.mean(thresh < 1.25)),
        "d2": float(np.mean(thresh < 1.25**2)),
        "d3": float(np.mean(thresh < 1.25**3)),
    }


def evaluate_frame(pred: np.ndarray, gt: np.ndarray, min_depth: float, max_depth: float,
                   scale: float = 1.0, shift: float = 0.0) -> dict[str, float] | None:
    """Metrics of one frame: pred, gt (H,W) metres; pred is aligned (scale * pred + shift) then sanitised.

    Returns None when fewer than MIN_VALID_PIXELS ground-truth pixels are valid.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in size")
    mask = valid_mask(gt, min_depth, max_depth)
    if int(mask.sum()) < MIN_VALID_PIXELS:
        return None
    aligned = sanitise_prediction(scale * pred[mask].astype(np.float64) + shift, min_depth, max_depth)
    return compute_metrics(aligned, gt[mask])


def mean_metrics(frames: list[dict[str, float]]) -> dict[str, float]:
    """Average of per-frame metric dicts (the official overall figure)."""
    if not frames:
        raise ValueError("no frame had enough valid ground-truth pixels to evaluate")
    return {name: float(np.mean([f[name] for f in frames])) for name in METRIC_NAMES}


@dataclass
class AlignmentFit:
    """Running sums for the least-squares fit gt ~ scale * pred (+ shift) over many frames."""

    n: int = 0
    sum_p: float = 0.0
    sum_g: float = 0.0
    sum_pp: float = 0.0
    sum_pg: float = 0.0

    def add(self, pred: np.ndarray, gt: np.ndarray, min_depth: float, max_depth: float) -> None:
        """Accumulate the valid pixels of one frame; pred, gt (H,W) metres."""
        mask = valid_mask(gt, min_depth, max_depth) & np.isfinite(pred)
        p = pred[mask].astype(np.float64)
        g = gt[mask].astype(np.float64)
        self.n += p.size
        self.sum_p += float(p.sum())
        self.sum_g += float(g.sum())
        self.sum_pp += float(p @ p)
        self.sum_pg += float(p @ g)

    def solve(self, mode: str) -> tuple[float, float]:
        """(scale, shift) minimising sum (scale * pred + shift - gt)^2 for mode none | scale | scale_shift."""
        if mode not in ALIGN_MODES:
            raise ValueError(f"unknown alignment {mode!r}; expected one of {', '.join(ALIGN_MODES)}")
        if mode == "none":
            return 1.0, 0.0
        if self.n == 0 or self.sum_pp <= 0.0:
            raise ValueError("cannot fit a scale: no valid pixel with a non-zero prediction")
        if mode == "scale":
            return self.sum_pg / self.sum_pp, 0.0
        det = self.n * self.sum_pp - self.sum_p**2
        if det <= 1e-12 * self.n * self.sum_pp:
            raise ValueError("cannot fit scale and shift: the prediction is constant over the valid pixels")
        scale = (self.n * self.sum_pg - self.sum_p * self.sum_g) / det
        return scale, (self.sum_g - scale * self.sum_p) / self.n


def fit_alignment(pred: np.ndarray, gt: np.ndarray, min_depth: float, max_depth: float,
                  mode: str) -> tuple[float, float]:
    """Least-squares (scale, shift) of one prediction (H,W) to its ground truth (H,W)."""
    fit = AlignmentFit()
    fit.add(pred, gt, min_depth, max_depth)
    return fit.solve(mode)


def pixel_sample(frames: Iterable[tuple[np.ndarray, np.ndarray]], min_depth: float, max_depth: float, scale: float,
                 shift: float, per_frame: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(gt, aligned sanitised prediction) of up to `per_frame` random valid pixels of each (gt, pred), 1-D arrays."""
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for gt, pred in frames:
        idx = np.flatnonzero(valid_mask(gt, min_depth, max_depth))
        idx = rng.choice(idx, size=min(per_frame, idx.size), replace=False)
        gts.append(gt.reshape(-1)[idx])
        aligned = scale * pred.reshape(-1)[idx].astype(np.float64) + shift
        preds.append(sanitise_prediction(aligned, min_depth, max_depth))
    return np.concatenate(gts), np.concatenate(preds)


def confidence_sample(pred: np.ndarray, gt: np.ndarray, confidence: np.ndarray, min_depth: float, max_depth: float,
                      per_frame: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Return (confidence, AbsRel) 1-D arrays of up to `per_frame` random valid pixels of (H, W) pred, gt, conf."""
    idx = np.flatnonzero(valid_mask(gt, min_depth, max_depth))
    idx = rng.choice(idx, size=min(per_frame, idx.size), replace=False)
    g = gt.reshape(-1)[idx].astype(np.float64)
    p = sanitise_prediction(pred.reshape(-1)[idx].astype(np.float64), min_depth, max_depth)
    return confidence.reshape(-1)[idx].astype(np.float64), np.abs(p - g) / g


def confidence_deciles(confidence: np.ndarray, error: np.ndarray, bins: int = 10) -> list[dict]:
    """Return the error-by-confidence table: (N,) pixels in `bins` equal-count bins of rising confidence, mean error."""
    order = np.argsort(confidence, kind="stable")
    return [{"bin": k + 1, "confidence_min": float(confidence[idx[0]]), "confidence_max": float(confidence[idx[-1]]),
             "pixels": int(idx.size), "abs_rel": float(error[idx].mean())}
            for k, idx in enumerate(np.array_split(order, bins)) if idx.size]
