"""DepthEstimator: a Depth-Anything-V2 checkpoint on one device, raw image bytes in, metric depth out (no ROS)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from depth_anything_ros.models.checkpoint_io import CheckpointError
from depth_anything_ros.models.cpu_features import auto_cpu_precision
from depth_anything_ros.models.image import ENCODINGS, check_image, check_work
from depth_anything_ros.models.input_size import check_input_size
from depth_anything_ros.models.torch_support import check_torch
from depth_anything_ros.models.v2.checkpoint import load_checkpoint
from depth_anything_ros.models.v2.network import DepthAnythingV2
from depth_anything_ros.models.v2.preprocess import network_input, upsample_depth
from depth_anything_ros.models.variants import CHECKPOINTS, FORMAT_PTH, METRIC, RELATIVE

check_torch()  # an older torch fails here, saying how to install one, instead of inside a frame
_log = logging.getLogger(__name__)

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
AUTO = "auto"


def resolve_device(device: str | torch.device = AUTO) -> torch.device:
    """Map 'auto' | 'cpu' | 'cuda' | 'cuda:N' to a usable torch.device, or raise ValueError saying why not."""
    name = str(device)
    if name == AUTO:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise ValueError(f"unsupported device {name!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available (torch {torch.__version__}, "
                         f"built with CUDA {torch.version.cuda}); use device 'cpu' or 'auto'")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    return dev


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """Map 'auto' | 'fp32' | 'fp16' | 'bf16' to a dtype: auto is bf16 (else fp16) on CUDA, bf16|fp32 on CPU.

    On the CPU auto is bf16 where the CPU computes it natively (cpu_features.auto_cpu_precision), else fp32.
    """
    if precision == AUTO:
        if device.type != "cuda":
            return PRECISIONS[auto_cpu_precision()[0]] if device.type == "cpu" else torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected 'auto', {', '.join(map(repr, PRECISIONS))}")
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("precision 'fp16' is not supported on CPU; use 'fp32' (or 'bf16')")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"precision 'bf16' is not supported on {torch.cuda.get_device_name(device)}; use 'fp16'")
    return PRECISIONS[precision]


def _resolve_max_depth(source: Path, kind: str | None, src_max: float | None,
                       max_depth: float | str | None) -> float | None:
    """Head scaling from the user's max_depth and what the checkpoint source says (variant table or config.json)."""
    if max_depth == AUTO:
        if kind == RELATIVE:
            return None
        if src_max is not None:
            return src_max
        known = next((c for c in CHECKPOINTS.values() if c.format == FORMAT_PTH and c.filename == source.name), None)
        if known is not None:
            return known.max_depth
        raise CheckpointError(f"max_depth is not known for {source}: pass max_depth=20.0 for Hypersim (indoor) "
                              "checkpoints, 80.0 for VKITTI (outdoor), or None for a relative checkpoint")
    if max_depth is None:
        if kind == METRIC:
            raise CheckpointError(f"{source} is a metric checkpoint (sigmoid head); max_depth cannot be None")
        return None
    if kind == RELATIVE:
        raise CheckpointError(f"{source} is a relative checkpoint (ReLU head); pass max_depth=None")
    value = float(max_depth)
    if not value > 0:
        raise ValueError(f"max_depth must be positive, got {max_depth}")
    return value


class DepthEstimator:
    """One Depth-Anything-V2 model on one device and dtype; preprocessing runs on that device too."""

    needs_focal = False  # True for a family whose metres come from each image's focal length (DA3Estimator)
    backend = "torch"  # what runs the network: torch, or the backend a from_network estimator names

    def __init__(self, checkpoint: str | os.PathLike | Mapping[str, torch.Tensor], encoder: str | None = None,
                 max_depth: float | str | None = AUTO, device: str = AUTO, precision: str = AUTO,
                 input_size: int = 518, compile: bool | str = AUTO, download: bool = True):
        """Load `checkpoint` (variant name, .pth/.pt/.safetensors file, transformers folder or state_dict).

        `encoder` defaults to the variant's, or is read from the file's tensor shapes. `max_depth` 'auto' takes
        the variant's (or config.json's); a number forces a metric head, None a relative (ReLU) head.
        `compile` 'auto' compiles with torch.compile on CUDA only (one graph per input shape, see `warmup`).
        """
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
        self.input_size = check_input_size(input_size)
        loaded = load_checkpoint(checkpoint, encoder, download=download)
        self.checkpoint_path = loaded.path
        self.encoder = loaded.encoder
        self.max_depth = _resolve_max_depth(loaded.path, loaded.kind, loaded.max_depth, max_depth)
        model = DepthAnythingV2(self.encoder, self.max_depth)
        model.load_state_dict(loaded.state_dict)
        self.model = model.to(device=self.device, dtype=self.dtype).eval().requires_grad_(False)
        self._use_network(self.model, self.device.type == "cuda" if compile == AUTO else bool(compile))

    @classmethod
    def from_network(cls, network, backend: str, checkpoint_path: str | os.PathLike, *, encoder: str,
                     max_depth: float, input_size: int, device: str = "cpu") -> DepthEstimator:
        """Build an estimator whose network call is `network` (the torch module's signature, e.g. backends/ort.py).

        Everything else (upload, preprocessing, the resize back) is this class's: only the network call changes.
        """
        self = cls.__new__(cls)
        self.device = resolve_device(device)
        self.dtype = torch.float32
        self.input_size = check_input_size(input_size)
        self.checkpoint_path = Path(checkpoint_path)
        self.encoder, self.max_depth, self.model, self.backend = encoder, max_depth, None, backend
        self._use_network(network, False)
        return self

    def _use_network(self, network, compiled: bool) -> None:
        """Make `network` the forward call (torch.compile'd when `compiled`) and reset the per-call state."""
        self.compiled = compiled
        self._forward = torch.compile(network, dynamic=False) if compiled else network
        self.compiled_shapes: list[tuple[int, ...]] = []  # network input shapes compiled so far, in order
        self._staging: torch.Tensor | None = None
        self._staging_free = torch.cuda.Event() if self.device.type == "cuda" else None

    @property
    def is_metric(self) -> bool:
        """True when the output is metres (sigmoid x max_depth), False for relative inverse depth."""
        return self.max_depth is not None

    def upload(self, images: Sequence[np.ndarray], encoding: str = "rgb8") -> torch.Tensor:
        """Same-size (H, W[, C]) arrays in `encoding` -> (B, H, W[, C]) raw tensor on the device, copied once.

        On CUDA the frames are stacked straight into a reused pinned buffer and copied without blocking.
        """
        if len(images) == 0:
            raise ValueError("need at least one image")
        for image in images:
            check_image(image, encoding)
        shapes = {image.shape for image in images}
        if len(shapes) > 1:
            raise ValueError(f"images must all have one size, got {sorted(shapes)}")
        if ENCODINGS[encoding][0] == 1:
            images = [image.reshape(image.shape[:2]) for image in images]
        first = images[0]
        if self.device.type != "cuda":
            if len(images) == 1 and first.flags.c_contiguous and first.flags.writeable:
                return torch.from_numpy(first)[None]
            return torch.from_numpy(np.stack(images))  # also makes read-only message views writable
        shape = (len(images), *first.shape)
        staging = self._staging
        if staging is None or tuple(staging.shape) != shape or staging.numpy().dtype != first.dtype:
            staging = self._staging = torch.from_numpy(np.empty(shape, first.dtype)).pin_memory()
        self._staging_free.synchronize()  # the previous frame's copy out of the buffer has finished
        np.stack(images, out=staging.numpy())
        raw = staging.to(self.device, non_blocking=True)
        self._staging_free.record(torch.cuda.current_stream(self.device))  # the copy runs on the target's stream
        return raw

    def estimate_raw(self, raw: torch.Tensor, encoding: str = "rgb8") -> torch.Tensor:
        """(B, H, W[, C]) raw tensor from `upload` -> (B, H, W) float32 depth on the device."""
        h, w = raw.shape[1:3]
        with torch.inference_mode():
            return self._infer(network_input(raw, encoding, check_work(h, w, self.input_size), self.dtype), (h, w))

    def _infer(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(B, 3, h, w) normalised network input on the device -> (B, *size) float32 depth on the device."""
        if self.compiled and tuple(x.shape) not in self.compiled_shapes:
            self.compiled_shapes.append(tuple(x.shape))
            _log.info("compiling Depth-Anything-V2 %s for input shape %s", self.encoder, tuple(x.shape))
            cfg = torch._dynamo.config
            limit = cfg.recompile_limit if hasattr(cfg, "recompile_limit") else cfg.cache_size_limit  # torch < 2.7
            if len(self.compiled_shapes) > limit:
                _log.warning("more than %d input shapes: torch.compile falls back to eager for new ones", limit)
        with torch.inference_mode():
            depth = self._forward(x)
        return upsample_depth(depth, size)

    def warmup(self, height: int, width: int, batch: int = 1) -> None:
        """Run one (batch, height, width) frame now, so compilation does not stall the first camera frame."""
        raw = torch.zeros((batch, height, width, 3), dtype=torch.uint8, device=self.device)
        self.estimate_raw(raw, "rgb8")
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def estimate_tensor(self, rgb: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) uint8 RGB tensor on the estimator's device -> (B, H, W) float32 depth on that device."""
        if rgb.ndim != 4 or rgb.shape[1] != 3 or rgb.dtype != torch.uint8:
            raise ValueError(f"estimate_tensor expects a (B, 3, H, W) uint8 tensor, got {tuple(rgb.shape)} {rgb.dtype}")
        if rgb.device != self.device:
            raise ValueError(f"tensor is on {rgb.device} but the estimator runs on {self.device}")
        return self.estimate_raw(rgb.permute(0, 2, 3, 1), "rgb8")  # (B, H, W, 3) view: the same path as frames

    def estimate(self, image: np.ndarray, encoding: str = "rgb8") -> np.ndarray:
        """(H, W[, C]) uint8/uint16 array in `encoding` -> (H, W) float32 depth (metres for metric checkpoints)."""
        return self.estimate_batch([image], encoding)[0]

    def estimate_batch(self, images: Sequence[np.ndarray], encoding: str = "rgb8") -> np.ndarray:
        """List of same-size (H, W[, C]) arrays -> (B, H, W) float32 depth, in one forward pass."""
        return self.estimate_raw(self.upload(images, encoding), encoding).cpu().numpy()
