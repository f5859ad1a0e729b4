"""Load an estimator for a backend: torch (models/registry.py), onnxruntime or openvino (an exported file + sidecar).

All give the same estimator classes; with an exported file only the network call is the runtime's (ort.OrtNetwork,
openvino.OpenVinoNetwork), so upload, preprocessing, the resize back and the frame pipeline are the torch path's own
code.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from depth_anything_ros.models.backends.choices import (
    BACKENDS,
    DEFAULT_PROVIDERS,
    OPENVINO_DEFAULT_DEVICE,
    OPENVINO_DEFAULT_PRECISION,
)
from depth_anything_ros.models.backends.openvino import OpenVinoNetwork
from depth_anything_ros.models.backends.ort import OrtNetwork, tensorrt_options
from depth_anything_ros.models.backends.sidecar import Sidecar, SidecarError, read_sidecar
from depth_anything_ros.models.checkpoint_io import CheckpointError
from depth_anything_ros.models.da3.estimator import DA3Estimator
from depth_anything_ros.models.registry import load_estimator
from depth_anything_ros.models.v2.estimator import AUTO, DepthEstimator


class FixedSizeNetwork:
    """An exported network of one (h, w) input and batch 1: runs a batch frame by frame, refuses other sizes."""

    def __init__(self, network: OrtNetwork | OpenVinoNetwork, onnx_path: Path):
        self.network, self.onnx_path = network, onnx_path
        self.size = tuple(network.sidecar.network_size)

    def __call__(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """(B, 3, h, w) -> the torch module's outputs, one run of the runtime per frame."""
        if tuple(x.shape[-2:]) != self.size:
            width, height = self.network.sidecar.image_size
            raise ValueError(f"{self.onnx_path.name} was exported for network input {self.size[1]}x{self.size[0]} "
                             f"({width}x{height} images); this frame's network input is {x.shape[-1]}x"
                             f"{x.shape[-2]}: export again with --image-size set to this camera's width and height")
        outs = [self.network(frame[None]) for frame in x]
        if isinstance(outs[0], tuple):
            return tuple(torch.cat(parts) for parts in zip(*outs, strict=True))
        return torch.cat(outs)


def exported_estimator(onnx_path: str | os.PathLike, backend: str,
                       open_network: Callable[[Path, Sidecar, torch.device], OrtNetwork | OpenVinoNetwork],
                       device: str = AUTO, sky: str = "invalid") -> DepthEstimator:
    """DepthEstimator or DA3Estimator whose network is `open_network(path, sidecar, device)` on the exported file.

    Pre- and post-processing run on `device` ('auto': the CPU; the runtime moves the network input itself).
    """
    path = Path(onnx_path).expanduser()
    if path.suffix != ".onnx" or not path.is_file():
        raise CheckpointError(f"the {backend} backend needs an exported .onnx file (depth-anything-ros export), "
                              f"got {onnx_path}" + ("" if path.exists() else " (no such file)"))
    sidecar = read_sidecar(path)
    device = "cpu" if device == AUTO else device
    network = FixedSizeNetwork(open_network(path, sidecar, torch.device(device)), path)
    if sidecar.family == "da3":
        estimator = DA3Estimator.from_network(network, backend, path, input_size=sidecar.input_size,
                                              device=device, sky=sky)
    else:
        estimator = DepthEstimator.from_network(network, backend, path, encoder=sidecar.encoder,
                                                max_depth=sidecar.max_depth, input_size=sidecar.input_size,
                                                device=device)
    estimator.sidecar = sidecar
    estimator.providers = network.network.runs_on  # ONNX Runtime's providers, or OpenVINO's device and precision
    return estimator


def load_onnx_estimator(onnx_path: str | os.PathLike, providers: Sequence[str] = DEFAULT_PROVIDERS,
                        device: str = AUTO, sky: str = "invalid", tensorrt_options: dict | None = None
                        ) -> DepthEstimator:
    """Return the estimator of an exported file run by ONNX Runtime with `providers` (exported_estimator)."""
    return exported_estimator(onnx_path, "onnxruntime", lambda path, sidecar, torch_device: OrtNetwork(
        path, sidecar, providers, torch_device, tensorrt_options), device, sky)


def load_openvino_estimator(onnx_path: str | os.PathLike, openvino_device: str = OPENVINO_DEFAULT_DEVICE,
                            precision: str = OPENVINO_DEFAULT_PRECISION, device: str = AUTO, sky: str = "invalid"
                            ) -> DepthEstimator:
    """Return the estimator of an exported file compiled by OpenVINO for `openvino_device` at `precision`."""
    return exported_estimator(onnx_path, "openvino", lambda path, sidecar, torch_device: OpenVinoNetwork(
        path, sidecar, openvino_device, precision, torch_device), device, sky)


def load_backend_estimator(checkpoint, backend: str = "torch", providers: Sequence[str] = DEFAULT_PROVIDERS,
                           input_size: int | None = None, sky: str = "invalid", tensorrt_cache: str = "",
                           tensorrt_fp16: bool = False, openvino_device: str = OPENVINO_DEFAULT_DEVICE,
                           openvino_precision: str = OPENVINO_DEFAULT_PRECISION, **torch_options) -> DepthEstimator:
    """Return the estimator of `backend`: load_estimator, load_onnx_estimator or load_openvino_estimator.

    An exported file fixes encoder, head scale and input size: both runtimes refuse an input_size that differs.
    """
    if backend == "torch":
        if str(checkpoint).endswith(".onnx"):
            raise CheckpointError(f"{checkpoint} is an exported ONNX file: run it with backend onnxruntime or "
                                  "openvino")
        return load_estimator(checkpoint, input_size=input_size, sky=sky, **torch_options)
    device = torch_options.pop("device", AUTO)
    if backend == "onnxruntime":
        estimator = load_onnx_estimator(checkpoint, providers, device, sky,
                                        tensorrt_options(tensorrt_cache, tensorrt_fp16))
    elif backend == "openvino":
        estimator = load_openvino_estimator(checkpoint, openvino_device, openvino_precision, device, sky)
    else:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
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
                           "exported in (fp32; TensorRT fp16 through its provider options, OpenVINO bf16/f16 through "
                           "its precision hint, docs/onnx.md)")
    return estimator
