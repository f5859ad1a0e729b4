"""DA3Estimator: DA3METRIC-LARGE on one device, raw image bytes + focal length in, metric depth out (no ROS).

It keeps DepthEstimator's interface (upload, estimate_raw, estimate_batch, estimate, warmup, ...), with the focal
length of each image as the one extra argument: depth = network output x focal at the network input / 300.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from depth_anything_ros.models.da3.checkpoint import load_da3_state_dict
from depth_anything_ros.models.da3.network import ENCODER, DepthAnything3Metric, metric_depth
from depth_anything_ros.models.da3.preprocess import (
    SKY_THRESHOLD,
    check_sky_mode,
    network_focal,
    network_input,
    official_fill,
    to_image_size,
)
from depth_anything_ros.models.image import to_rgb8
from depth_anything_ros.models.input_size import check_input_size
from depth_anything_ros.models.v2.estimator import AUTO, DepthEstimator, resolve_device, resolve_precision
from depth_anything_ros.models.variants import DA3_METRIC

_log = logging.getLogger(__name__)
DEFAULT_PROCESS_RES = 504  # the official API's process_res: the longer image side at the network input
COLOUR_MAX_DEPTH = 80.0  # far end of the colourised depth; the exp head itself has no upper bound

Focal = tuple[float, float]  # (fx, fy) in pixels of the image as it is given


class DA3Estimator(DepthEstimator):
    """DA3METRIC-LARGE on one device: the backbone in the chosen dtype, the head in float32 (as the official forward).

    Preprocessing is the official input processor's, on the CPU (uint8 OpenCV resizes; on CUDA the frame comes back
    to the host for it and only the network input goes up). `sky` 'invalid' makes sky pixels NaN; 'official_fill'
    gives them the 0.99-quantile of the other pixels' depth, as the official code does (exact quantile).
    """

    needs_focal = True

    def __init__(self, checkpoint: str | os.PathLike | Mapping[str, torch.Tensor] = DA3_METRIC, device: str = AUTO,
                 precision: str = AUTO, input_size: int = DEFAULT_PROCESS_RES, compile: bool | str = AUTO,
                 download: bool = True, sky: str = "invalid"):
        """Load the official model.safetensors (variant name, file, folder or state_dict); input_size = process_res."""
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
        self.input_size = check_input_size(input_size)
        self.sky = check_sky_mode(sky)
        state, self.checkpoint_path = load_da3_state_dict(checkpoint, download=download)
        model = DepthAnything3Metric()
        model.load_state_dict(state)
        model = model.to(self.device).eval().requires_grad_(False)
        model.backbone.to(self.dtype)
        self.model = model
        self.encoder = ENCODER
        self.max_depth = COLOUR_MAX_DEPTH
        self._use_network(self.model, self.device.type == "cuda" if compile == AUTO else bool(compile))

    @classmethod
    def from_network(cls, network, backend: str, checkpoint_path: str | os.PathLike, *,
                     input_size: int = DEFAULT_PROCESS_RES, device: str = "cpu", sky: str = "invalid"
                     ) -> DA3Estimator:
        """Build an estimator whose network call is `network` ((B, 3, h, w) -> (depth, sky)); DA3's encoder, scale."""
        self = super().from_network(network, backend, checkpoint_path, encoder=ENCODER, max_depth=COLOUR_MAX_DEPTH,
                                    input_size=input_size, device=device)
        self.sky = check_sky_mode(sky)
        return self

    @property
    def is_metric(self) -> bool:
        """Always True: metres, given the focal length."""
        return True

    def network_outputs(self, raw: torch.Tensor, encoding: str, focal: Sequence[Focal]
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, H, W[, C]) raw tensor -> metric depth (B, h, w) and sky (B, h, w) at the network resolution.

        Depth is network output x focal / 300 before any sky handling; `focal` holds (fx, fy) per image.
        """
        height, width = raw.shape[1:3]
        if len(focal) != raw.shape[0]:
            raise ValueError(f"need one (fx, fy) per image: {raw.shape[0]} image(s), {len(focal)} focal length(s)")
        for fx, fy in focal:
            if not (math.isfinite(fx) and math.isfinite(fy) and fx > 0 and fy > 0):
                raise ValueError(f"focal lengths must be positive and finite, got fx={fx}, fy={fy}")
        rgb = to_rgb8(raw, encoding).permute(0, 2, 3, 1).cpu().numpy()  # (B, H, W, 3) uint8
        x = torch.stack([network_input(image, self.input_size) for image in rgb]).to(self.device, self.dtype)
        net_focal = torch.tensor([network_focal(fx, fy, height, width, self.input_size) for fx, fy in focal],
                                 dtype=torch.float32, device=self.device)
        if self.compiled and tuple(x.shape) not in self.compiled_shapes:
            self.compiled_shapes.append(tuple(x.shape))
            _log.info("compiling DA3METRIC-LARGE for input shape %s", tuple(x.shape))
        with torch.inference_mode():
            depth, sky = self._forward(x)
            if self.sky == "official_fill":
                depth = official_fill(depth, sky)
            return metric_depth(depth, net_focal), sky

    def estimate_raw(self, raw: torch.Tensor, encoding: str = "rgb8", focal: Sequence[Focal] | None = None
                     ) -> torch.Tensor:
        """(B, H, W[, C]) raw tensor from `upload`, (fx, fy) per image -> (B, H, W) float32 metres on the device.

        Sky (probability >= 0.3) is NaN with sky 'invalid'; depth returns to H x W bilinearly (da3/preprocess.py).
        """
        if focal is None:
            raise ValueError("DA3 metric depth needs the focal length of every image: pass focal=[(fx, fy), ...] "
                             "(from camera_info, or a field of view)")
        depth, sky = self.network_outputs(raw, encoding, focal)
        with torch.inference_mode():
            if self.sky == "invalid":
                depth = depth.masked_fill(sky >= SKY_THRESHOLD, float("nan"))
            return to_image_size(depth, tuple(raw.shape[1:3]))

    def warmup(self, height: int, width: int, batch: int = 1) -> None:
        """Run one (batch, height, width) frame now (focal = width px), so compilation does not stall a frame."""
        raw = torch.zeros((batch, height, width, 3), dtype=torch.uint8, device=self.device)
        self.estimate_raw(raw, "rgb8", [(float(width), float(width))] * batch)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def estimate_tensor(self, rgb: torch.Tensor, focal: Sequence[Focal] | None = None) -> torch.Tensor:
        """(B, 3, H, W) uint8 RGB tensor on the estimator's device, (fx, fy) per image -> (B, H, W) float32 metres."""
        if rgb.ndim != 4 or rgb.shape[1] != 3 or rgb.dtype != torch.uint8:
            raise ValueError(f"estimate_tensor expects a (B, 3, H, W) uint8 tensor, got {tuple(rgb.shape)} {rgb.dtype}")
        return self.estimate_raw(rgb.permute(0, 2, 3, 1), "rgb8", focal)

    def estimate(self, image: np.ndarray, encoding: str = "rgb8", focal: Focal | None = None) -> np.ndarray:
        """(H, W[, C]) array in `encoding`, its (fx, fy) in pixels -> (H, W) float32 metres, sky NaN by default."""
        return self.estimate_batch([image], encoding, None if focal is None else [focal])[0]

    def estimate_batch(self, images: Sequence[np.ndarray], encoding: str = "rgb8",
                       focal: Sequence[Focal] | None = None) -> np.ndarray:
        """Same-size (H, W[, C]) arrays and their (fx, fy) -> (B, H, W) float32 metres, in one forward pass."""
        return self.estimate_raw(self.upload(images, encoding), encoding, focal).cpu().numpy()
