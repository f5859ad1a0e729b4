"""The network of an exported file run by ONNX Runtime: a callable with the torch network's signature.

`OrtNetwork(x)` takes the (B, 3, h, w) float32 network input our preprocessing made and returns what the PyTorch
module returns (V2: depth (B, h, w); DA3: (depth, sky)), as torch tensors on the estimator's device, so the
estimators' pre- and post-processing run unchanged around it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from depth_anything_ros.models.backends.choices import DEFAULT_PROVIDERS
from depth_anything_ros.models.backends.network_io import network_feed, torch_outputs
from depth_anything_ros.models.backends.sidecar import Sidecar, SidecarError, check_outputs

_log = logging.getLogger(__name__)
PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "OpenVINOExecutionProvider",
             "CPUExecutionProvider")
CPU = torch.device("cpu")


def import_onnxruntime():
    """Return the onnxruntime module, or raise SidecarError saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise SidecarError("the onnxruntime backend needs the onnxruntime package: pip install -r "
                           "requirements-onnx.txt (onnxruntime-gpu of the same version on a GPU robot, "
                           "docs/onnx.md)") from None
    return onnxruntime


def tensorrt_options(cache_dir: str = "", fp16: bool = False) -> dict:
    """TensorrtExecutionProvider options: fp16, and with `cache_dir` the engine and timing caches kept there.

    TensorRT builds an engine per input shape on the first run (minutes on a Jetson); the cache keeps it.
    """
    options = {"trt_fp16_enable": bool(fp16)}
    if cache_dir:
        options.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(cache_dir),
                       trt_timing_cache_enable=True, trt_timing_cache_path=str(cache_dir))
    return options


def check_providers(requested: Sequence[str]) -> list[str]:
    """Return the requested ONNX Runtime providers; ValueError naming the available ones when one is missing."""
    ort = import_onnxruntime()
    available = ort.get_available_providers()
    if not requested:
        raise ValueError(f"no ONNX Runtime provider given; available here: {', '.join(available)}")
    missing = [name for name in requested if name not in available]
    if missing:
        raise ValueError(f"ONNX Runtime provider(s) {', '.join(missing)} not available in onnxruntime "
                         f"{ort.__version__} here; available: {', '.join(available)}")
    return list(requested)


class OrtNetwork:
    """An exported network in an ONNX Runtime session: (B, 3, h, w) float32 tensor -> the torch module's outputs."""

    def __init__(self, onnx_path: str | Path, sidecar: Sidecar, providers: Sequence[str] = DEFAULT_PROVIDERS,
                 device: torch.device = CPU, tensorrt_options: dict | None = None):
        """Open `onnx_path` with `providers` (checked first; ONNX Runtime picks its thread count)."""
        ort = import_onnxruntime()
        self.providers = check_providers(providers)
        self.sidecar = sidecar
        self.device = device
        options = ort.SessionOptions()
        chosen = [(name, dict(tensorrt_options or {})) if name == "TensorrtExecutionProvider" else name
                  for name in self.providers]
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=chosen)
        except Exception as exc:  # onnxruntime raises its own classes for damaged or unsupported files
            raise SidecarError(f"ONNX Runtime cannot open {onnx_path}: {str(exc).splitlines()[0]}") from None
        self.runs_on = self.session.get_providers()  # the providers ONNX Runtime kept, in order
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        check_outputs(onnx_path, self.output_names, sidecar)
        _log.info("ONNX Runtime %s: %s with providers %s", ort.__version__, Path(onnx_path).name,
                  ", ".join(self.runs_on))

    def __call__(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """(B, 3, h, w) float32 network input -> depth (B, h, w) (V2) or (depth, sky) (DA3), on `device`."""
        outputs = self.session.run(self.output_names, {self.input_name: network_feed(x)})
        return torch_outputs(outputs, self.device)
