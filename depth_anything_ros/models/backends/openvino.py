"""The network of an exported file run by the OpenVINO runtime: a callable with the torch network's signature.

`OpenVinoNetwork(x)` reads the same `.onnx` and sidecar as the onnxruntime backend, compiles it for one OpenVINO
device (CPU by default) with an explicit inference precision hint, and is called like ort.OrtNetwork: (B, 3, h, w)
float32 in, the torch module's outputs out, as torch tensors on the estimator's device.

The hint defaults to f32: without one, OpenVINO's CPU plugin runs in bf16 on CPUs with AMX or avx512_bf16 and its
GPU plugin in f16, which moves the depth away from torch fp32. bf16 and f16 are accepted only on a device that
lists them among its OPTIMIZATION_CAPABILITIES (the hardware runs them); the startup self-check bounds the result.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from depth_anything_ros.models.backends.choices import (
    OPENVINO_DEFAULT_DEVICE,
    OPENVINO_DEFAULT_PRECISION,
    OPENVINO_PRECISIONS,
)
from depth_anything_ros.models.backends.network_io import network_feed, torch_outputs
from depth_anything_ros.models.backends.sidecar import Sidecar, SidecarError, check_outputs

_log = logging.getLogger(__name__)
CPU = torch.device("cpu")


def import_openvino():
    """Return the openvino module, or raise SidecarError saying how to install it."""
    try:
        import openvino
    except ImportError:
        raise SidecarError("the openvino backend needs the openvino package: pip install -r requirements-onnx.txt "
                           "(or pip install openvino==2026.4.1, docs/onnx.md)") from None
    return openvino


def check_device(core, device: str) -> str:
    """Return `device` when OpenVINO has it here ('GPU' also names 'GPU.0'); ValueError listing the available ones."""
    available = list(core.available_devices)
    if device not in available and not any(name.startswith(f"{device}.") for name in available):
        raise ValueError(f"OpenVINO device {device!r} is not available here; available: "
                         f"{', '.join(available) or 'none'}")
    return device


def check_precision(core, device: str, precision: str) -> str:
    """Return `precision` when `device` runs it natively; ValueError naming the device's capabilities otherwise."""
    if precision not in OPENVINO_PRECISIONS:
        raise ValueError(f"unknown OpenVINO inference precision {precision!r}; expected one of "
                         f"{', '.join(OPENVINO_PRECISIONS)}")
    capabilities = list(core.get_property(device, "OPTIMIZATION_CAPABILITIES"))
    if OPENVINO_PRECISIONS[precision] not in capabilities:
        raise ValueError(f"OpenVINO device {device} does not run {precision} natively (its optimization "
                         f"capabilities: {', '.join(capabilities)}); use f32 there")
    return precision


class OpenVinoNetwork:
    """An exported network compiled by OpenVINO for one device: (B, 3, h, w) float32 tensor -> the module's outputs."""

    def __init__(self, onnx_path: str | Path, sidecar: Sidecar, openvino_device: str = OPENVINO_DEFAULT_DEVICE,
                 precision: str = OPENVINO_DEFAULT_PRECISION, device: torch.device = CPU):
        """Compile `onnx_path` for `openvino_device` with inference precision hint `precision` (both checked first)."""
        ov = import_openvino()
        core = ov.Core()
        self.openvino_device = check_device(core, openvino_device)
        self.precision = check_precision(core, openvino_device, precision)
        self.sidecar = sidecar
        self.device = device
        try:
            self.compiled = core.compile_model(core.read_model(str(onnx_path)), openvino_device,
                                               {"INFERENCE_PRECISION_HINT": precision})
        except RuntimeError as exc:  # damaged or unsupported files; the reason is the message's last line
            raise SidecarError(f"OpenVINO cannot open {onnx_path}: {str(exc).strip().splitlines()[-1]}") from None
        # a tensor can carry several names (DA3's `sky` is also its graph node's): the sidecar's where it has it
        wanted = [*sidecar.outputs, *[""] * len(self.compiled.outputs)]
        self.output_names = [wanted[i] if wanted[i] in output.get_names() else output.get_any_name()
                             for i, output in enumerate(self.compiled.outputs)]
        check_outputs(onnx_path, self.output_names, sidecar)
        self.request = self.compiled.create_infer_request()
        effective = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.runs_on = [f"{openvino_device} {effective}"]  # the precision the compiled model runs in
        _log.info("OpenVINO %s: %s on %s", ov.__version__, Path(onnx_path).name, self.runs_on[0])

    def __call__(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """(B, 3, h, w) float32 network input -> depth (B, h, w) (V2) or (depth, sky) (DA3), on `device`."""
        results = self.request.infer({0: network_feed(x)}, share_inputs=True)  # share_outputs False: copies
        return torch_outputs([results[output] for output in self.compiled.outputs], self.device)
