"""Validation of a model being trained: `bag evaluate`'s metrics on cached frames, model run as DepthEstimator."""

from __future__ import annotations

import numpy as np
import torch

from depth_anything_ros.bag.ground_truth import resize_to_gt
from depth_anything_ros.frame.metrics import evaluate_frame, mean_metrics


def evaluate_frames(estimator: object, frames: object, indices: list[int], min_depth: float, max_depth: float,
                    autocast: torch.dtype | None = None) -> tuple[dict[str, float], list[dict | None]]:
    """(mean metrics, per-frame metrics or None) of estimator.estimate on frames[i] against their ground truth.

    The prediction is resized to the ground truth's size and scored on pixels inside [min_depth, max_depth],
    exactly as `bag evaluate` scores a frame; the model is put in eval mode and back to train mode.
    """
    model = estimator.model
    was_training = model.training
    model.eval()
    per_frame = []
    try:
        for i in indices:
            frame = frames[i]
            with torch.autocast(estimator.device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
                pred = estimator.estimate(frame.rgb, "rgb8")
            per_frame.append(evaluate_frame(resize_to_gt(pred.astype(np.float32), frame.gt.shape), frame.gt,
                                            min_depth, max_depth))
    finally:
        model.train(was_training)
    return mean_metrics([m for m in per_frame if m is not None]), per_frame


def predict(estimator: object, frame: object, autocast: torch.dtype | None = None) -> np.ndarray:
    """(h,w) float32 prediction of one frame at its ground truth's size (for the report panels)."""
    model = estimator.model
    was_training = model.training
    model.eval()
    try:
        with torch.autocast(estimator.device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
            return resize_to_gt(estimator.estimate(frame.rgb, "rgb8").astype(np.float32), frame.gt.shape)
    finally:
        model.train(was_training)
