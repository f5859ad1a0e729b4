"""PSNR and SSIM of depth maps normalised to [0, 1], over the ground truth's valid pixels.

Both maps are min-max normalised over the valid pixels (each its own minimum and maximum, so the figures ignore
scale and shift); invalid ground-truth pixels take the prediction's value in both maps, so they add no error, and
only valid pixels are averaged. SSIM is Wang et al. 2004 as scikit-image's structural_similarity computes it by
default: a 7x7 uniform window, sample covariances (N / (N - 1)), K1 0.01, K2 0.03, reflected borders, data range 1,
the 3-pixel border left out of the mean (test/test_dataset_evaluate.py checks it against scikit-image).
"""

from __future__ import annotations

import cv2
import numpy as np

WINDOW = 7
K1, K2 = 0.01, 0.03


def normalised_pair(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pred, gt) (H,W) float64 in [0, 1] over `valid` (H,W) bool; invalid pixels hold the prediction's value."""
    out = []
    for depth in (pred, gt):
        values = depth[valid].astype(np.float64)
        low, high = float(values.min()), float(values.max())
        out.append((depth.astype(np.float64) - low) / (high - low if high > low else 1.0))
    pred_n, gt_n = out
    pred_n = np.where(np.isfinite(pred_n), pred_n, 0.0)
    return pred_n, np.where(valid, gt_n, pred_n)


def ssim_map(x: np.ndarray, y: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """(H,W) per-pixel SSIM of two (H,W) float maps (skimage structural_similarity's S with its defaults)."""
    x, y = x.astype(np.float64), y.astype(np.float64)

    def mean(a: np.ndarray) -> np.ndarray:
        return cv2.blur(a, (WINDOW, WINDOW), borderType=cv2.BORDER_REFLECT)

    cov_norm = WINDOW**2 / (WINDOW**2 - 1.0)
    ux, uy = mean(x), mean(y)
    vx = cov_norm * (mean(x * x) - ux * ux)
    vy = cov_norm * (mean(y * y) - uy * uy)
    vxy = cov_norm * (mean(x * y) - ux * uy)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    return ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))


def map_metrics(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    """{'psnr': dB, 'ssim'} of pred vs gt (H,W) metres over `valid` (H,W) bool, both normalised to [0, 1]."""
    pred_n, gt_n = normalised_pair(pred, gt, valid)
    mse = float(np.mean((pred_n[valid] - gt_n[valid]) ** 2))
    pad = (WINDOW - 1) // 2
    inner = np.zeros_like(valid)
    inner[pad:-pad, pad:-pad] = valid[pad:-pad, pad:-pad]
    ssim = ssim_map(pred_n, gt_n)[inner] if inner.any() else np.array([np.nan])
    return {"psnr": float(10.0 * np.log10(1.0 / mse)) if mse > 0 else float("inf"), "ssim": float(ssim.mean())}
