"""Export a checkpoint's network to ONNX with its sidecar, and compare the file in ONNX Runtime with PyTorch.

Only the network is exported (V2: normalised image -> depth in metres; DA3: -> focal-normalised depth and sky): the
preprocessing and the resize back stay ours, so they are the same code whichever backend runs the network. The
input size is fixed at export: batch 1 and the network input of one image size (the position embedding is
resampled for the patch grid, which torch.export cannot keep symbolic); the loader runs a batch frame by frame and
refuses frames of another network size, naming the size to export for.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from depth_anything_ros.models.backends.sidecar import (
    OPSET,
    PREPROCESSING,
    Sidecar,
    file_sha256,
    write_sidecar,
)
from depth_anything_ros.models.blocks import DinoV2
from depth_anything_ros.models.checkpoint_io import is_synthetic
from depth_anything_ros.models.da3.preprocess import resize_steps
from depth_anything_ros.models.image import network_input_size
from depth_anything_ros.models.v2.estimator import DepthEstimator

DEFAULT_IMAGE_SIZE = (640, 480)  # (width, height) of the camera images an export serves by default


def family_of(estimator: DepthEstimator) -> str:
    """'da3' for a DA3Estimator, 'v2' for a Depth-Anything-V2 DepthEstimator."""
    return "da3" if estimator.needs_focal else "v2"


def network_size(family: str, input_size: int, width: int, height: int) -> tuple[int, int]:
    """(h, w) network input of a width x height image for the family's input_size rule."""
    if family == "da3":
        return resize_steps(height, width, input_size)[1]
    return network_input_size(height, width, input_size)


@dataclass(frozen=True)
class Exported:
    """What export wrote and how long it took."""

    onnx_path: Path
    sidecar_path: Path
    sidecar: Sidecar
    seconds: float


@contextlib.contextmanager
def constant_position_embeddings(model: torch.nn.Module, net_h: int, net_w: int):
    """Within the block, each DinoV2 of `model` gives its position embedding for a (net_h, net_w) input as a constant.

    The bicubic resampling of the 37x37 table depends only on the patch grid, which an export fixes, so torch computes
    it once here and the file holds the result instead of a Resize node for every runtime to compute its own way
    (OpenVINO 2026.4's CPU plugin ignores the scale 37.1/37 on an axis whose size stays 37, the short side of every V2
    input at 518: 0.9 m off at 640x480, docs/onnx.md).
    """
    patched = []
    for module in model.modules():
        if isinstance(module, DinoV2):
            grid = (net_h // module.spec.patch_size, net_w // module.spec.patch_size)
            with torch.no_grad():
                table = module.position_embedding(*grid, torch.float32).detach().clone()

            def fixed(grid_h: int, grid_w: int, dtype: torch.dtype, table=table, grid=grid) -> torch.Tensor:
                """(1, 1 + grid_h * grid_w, D): the table of the export's grid, the only grid the file serves."""
                if (grid_h, grid_w) != grid:
                    raise ValueError(f"export traced a {grid_h}x{grid_w} patch grid, its input gives {grid}")
                return table.to(dtype)

            module.position_embedding = fixed
            patched.append(module)
    try:
        yield
    finally:
        for module in patched:
            del module.position_embedding  # the class's method again


def export_onnx(estimator: DepthEstimator, onnx_path: str | Path, image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE
                ) -> Exported:
    """Write the fp32 network of a CPU `estimator` for width x height images to `onnx_path` and its sidecar."""
    if getattr(estimator, "temporal", False):
        raise ValueError("export of the temporal family (Video Depth Anything) is not supported yet: its network "
                         "carries state from frame to frame; export a Depth-Anything-V2 or DA3 checkpoint")
    if estimator.device.type != "cpu" or estimator.dtype != torch.float32:
        raise ValueError("export needs the estimator on the CPU in fp32 (device 'cpu', precision 'fp32')")
    family = family_of(estimator)
    net_h, net_w = network_size(family, estimator.input_size, *image_size)
    probe = torch.zeros(1, 3, net_h, net_w)
    outputs = ("depth", "sky") if family == "da3" else ("depth",)
    path = Path(onnx_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    quiet = logging.getLogger("torch.onnx")
    level, quiet.level = quiet.level, logging.ERROR  # its notes on optional torchvision ops
    with (contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(),  # the exporter prints its steps
          constant_position_embeddings(estimator.model, net_h, net_w)):
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(estimator.model, (probe,), str(path), dynamo=True, opset_version=OPSET,
                          input_names=["image"], output_names=list(outputs), external_data=False, verbose=False)
    quiet.setLevel(level)
    seconds = time.perf_counter() - start
    source = Path(estimator.checkpoint_path)
    sidecar = Sidecar(family=family, encoder=estimator.encoder,
                      max_depth=None if family == "da3" else float(estimator.max_depth),
                      input_size=int(estimator.input_size), network_size=(net_h, net_w), image_size=tuple(image_size),
                      opset=OPSET, inputs=("image",), outputs=outputs, preprocessing=PREPROCESSING[family],
                      source=str(source.resolve()), source_sha256=file_sha256(source),
                      onnx_sha256=file_sha256(path), synthetic=is_synthetic(source))
    return Exported(path, write_sidecar(path, sidecar), sidecar, seconds)


def probe_image(width: int, height: int) -> np.ndarray:
    """(height, width, 3) uint8 RGB probe frame: smooth ramps and a checkerboard, the same on every machine."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    checker = ((u // 32 + v // 32) % 2) * 60.0
    rgb = np.stack([255.0 * u / max(width - 1, 1), 255.0 * v / max(height - 1, 1), 97.0 + checker], axis=-1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def compare_depth(candidate: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(max, mean) |candidate - reference| in metres over pixels finite in both; inf when their NaN masks differ."""
    finite = np.isfinite(reference)
    if not np.array_equal(finite, np.isfinite(candidate)) or not finite.any():
        return float("inf"), float("inf")
    diff = np.abs(candidate[finite].astype(np.float64) - reference[finite].astype(np.float64))
    return float(diff.max()), float(diff.mean())
