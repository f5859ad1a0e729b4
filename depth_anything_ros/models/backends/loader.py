"""Load an estimator for a backend: torch (models/registry.py) or onnxruntime (an exported file and its sidecar).

Both give the same estimator classes; with onnxruntime only the network call is ONNX Runtime's (ort.OrtNetwork), so
upload, preprocessing, the resize back and the frame pipeline are the torch path's own code.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from depth_anything_ros.models.backends.ort import DEFAULT_PROVIDERS, OrtNetwork, tensorrt_options
from depth_anything_ros.models.backends.sidecar import SidecarError, read_sidecar
from depth_anything_ros.models.checkpoint_io import CheckpointError
from depth_anything_ros.models.da3.estimator import DA3Estimator
from depth_anything_ros.models.registry import load_estimator
from depth_anything_ros.models.v2.estimator import AUTO, DepthEstimator

BACKENDS = ("torch", "onnxruntime")


class FixedSizeNetwork:
    """An exported network of one (h, w) input and batch 1: runs a batch frame by frame, refuses other sizes."""

    def __init__(self, network: OrtNetwork, onnx_path: Path):
        self.network, self.onnx_path = network, onnx_path
        self.size = tuple(network.sidecar.network_size)

    def __call__(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """(B, 3, h, w) -> the torch module's outputs, one ONNX Runtime run per frame."""
        if tuple(x.shape[-2:]) != self.size:
            width, height = self.network.sidecar.image_size
            raise ValueError(f"{self.onnx_path.name} was exported for network input {self.size[1]}x{self.size[0]} "
                             f"({width}x{height} images); this frame's network input is {x.shape[-1]}x"
                             f"{x.shape[-2]}: export again with --image-size set to this camera's width and height")
        outs = [self.network(frame[None]) for frame in x]
        if isinstance(outs[0], tuple):
            return tuple(torch.cat(parts) for parts in zip(*outs, strict=True))
        return torch.cat(outs)


def load_onnx_estimator(onnx_path: str | os.PathLike, providers: Sequence[str] = DEFAULT_PROVIDERS,
                        device: str = AUTO, sky: str = "invalid", tensorrt_options: dict | None = None
                        ) -> DepthEstimator:
    """DepthEstimator or DA3Estimator whose network is the exported file run by ONNX Runtime with `providers`.

    Pre- and post-processing run on `device` ('auto': the CPU; ONNX Runtime moves the network input itself).
    """
    path = Path(onnx_path).expanduser()
    if path.suffix != ".onnx" or not path.is_file():
        raise CheckpointError(f"the onnxruntime backend needs an exported .onnx file (depth-anything-ros export), "
                              f"got {onnx_path}" + ("" if path.exists() else " (no such file)"))
    sidecar = read_sidecar(path)
    device = "cpu" if device == AUTO else device
    network = FixedSizeNetwork(OrtNetwork(path, sidecar, providers, torch.device(device), tensorrt_options), path)
    if sidecar.family == "da3":
        estimator = DA3Estimator.from_network(network, "onnxruntime", path, input_size=sidecar.input_size,
                                              device=device, sky=sky)
    else:
        estimator = DepthEstimator.from_network(network, "onnxruntime", path, encoder=sidecar.encoder,
                                                max_depth=sidecar.max_depth, input_size=sidecar.input_size,
                                                device=device)
    estimator.sidecar = sidecar
    estimator.providers = network.network.active_providers
    return estimator


def load_backend_estimator(checkpoint, backend: str = "torch", providers: Sequence[str] = DEFAULT_PROVIDERS,
                           input_size: int | None = None, sky: str = "invalid", tensorrt_cache: str = "",
                           tensorrt_fp16: bool = False, **torch_options) -> DepthEstimator:
    """Return the estimator of `backend`: load_estimator for torch, load_onnx_estimator for onnxruntime.

    An exported file fixes encoder, head scale and input size: onnxruntime refuses an input_size that differs.
    """
    if backend == "torch":
        if str(checkpoint).endswith(".onnx"):
            raise CheckpointError(f"{checkpoint} is an exported ONNX file: run it with backend onnxruntime")
        return load_estimator(checkpoint, input_size=input_size, sky=sky, **torch_options)
    if backend != "onnxruntime":
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    estimator = load_onnx_estimator(checkpoint, providers, torch_options.pop("device", AUTO), sky,
                                    tensorrt_options(tensorrt_cache, tensorrt_fp16))
    fixed = {"input_size": (input_size, estimator.input_size), "encoder": (torch_options.get("encoder"),
                                                                           estimator.encoder),
             "max_depth": (torch_options.get("max_depth", AUTO), estimator.max_depth if not estimator.needs_focal
                           else None)}
    for name, (given, exported) in fixed.items():
        if given not in (None, AUTO, exported):
            raise SidecarError(f"{checkpoint} was exported with {name} {exported}, not {given}: leave {name} unset "
                               "(the sidecar gives it) or export again")
    if torch_options.get("precision", AUTO) not in (AUTO, "fp32") or torch_options.get("compile") is True:
        raise SidecarError("precision and compile are torch options: an exported file runs in the precision it was "
                           "exported in (fp32; TensorRT fp16 through its provider options, docs/onnx.md)")
    return estimator
