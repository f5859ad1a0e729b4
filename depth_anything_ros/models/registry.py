"""Which model family a checkpoint is (Depth-Anything-V2, DA3, Video Depth Anything) and its estimator (no ROS)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from depth_anything_ros.models.checkpoint_io import CheckpointError
from depth_anything_ros.models.da3.checkpoint import is_da3_checkpoint
from depth_anything_ros.models.da3.estimator import DEFAULT_PROCESS_RES, DA3Estimator
from depth_anything_ros.models.da3.network import ENCODER
from depth_anything_ros.models.v2.estimator import AUTO, DepthEstimator
from depth_anything_ros.models.vda.checkpoint import is_vda_checkpoint
from depth_anything_ros.models.vda.estimator import DEFAULT_INPUT_SIZE as VDA_INPUT_SIZE
from depth_anything_ros.models.vda.estimator import VDAEstimator

V2_INPUT_SIZE = 518  # the official infer_image default: shorter side at least 518


def load_estimator(checkpoint: str | os.PathLike | Mapping[str, torch.Tensor], encoder: str | None = None,
                   max_depth: float | str | None = AUTO, device: str = AUTO, precision: str = AUTO,
                   input_size: int | None = None, compile: bool | str = AUTO, download: bool = True,
                   sky: str = "invalid") -> DepthEstimator:
    """DepthEstimator for V2, DA3Estimator for DA3, VDAEstimator for Video Depth Anything; input_size None: default.

    V2 takes `encoder` and `max_depth`; DA3 takes `sky` and refuses a max_depth (its scale is the focal length);
    VDA takes `encoder` and refuses a max_depth (its relu head outputs metres).
    """
    if is_vda_checkpoint(checkpoint):
        if max_depth not in (AUTO, None):
            raise CheckpointError(f"{checkpoint} is a Video Depth Anything metric checkpoint: its head outputs metres, "
                                  "there is no max_depth to set")
        return VDAEstimator(checkpoint, encoder, device, precision,
                            VDA_INPUT_SIZE if input_size is None else input_size, compile, download)
    if not is_da3_checkpoint(checkpoint):
        return DepthEstimator(checkpoint, encoder, max_depth, device, precision,
                              V2_INPUT_SIZE if input_size is None else input_size, compile, download)
    if encoder not in (None, ENCODER):
        raise CheckpointError(f"{checkpoint} is a DA3METRIC-LARGE checkpoint ('{ENCODER}'), not encoder '{encoder}'")
    if max_depth not in (AUTO, None):
        raise CheckpointError(f"{checkpoint} is a DA3 metric checkpoint: its depth scales with the focal length of "
                              "the camera (camera_info), there is no max_depth to set")
    return DA3Estimator(checkpoint, device, precision, DEFAULT_PROCESS_RES if input_size is None else input_size,
                        compile, download, sky)
