"""Exported files for the ONNX Runtime tests: a small V2 export through the CLI, and a copy with one damaged weight."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from depth_anything_ros.cli import main

INPUT_SIZE = 70
IMAGE_SIZE = (64, 48)  # (width, height) the export serves: network input 70 x 98 (h x w)
DAMAGED = "depth_head.scratch.output_conv2.2.bias"  # the last convolution's bias: every depth moves


def export_small(checkpoint: Path, out: Path, *extra: str) -> Path:
    """`depth-anything-ros export` of a vits checkpoint (max depth 20) for 64x48 images at input size 70."""
    code = main(["export", "--checkpoint", str(checkpoint), "--encoder", "vits", "--model-max-depth", "20",
                 "--input-size", str(INPUT_SIZE), "--image-size", *map(str, IMAGE_SIZE), "--out", str(out), *extra])
    assert code == 0
    return out


def damaged_copy(onnx_path: Path, out: Path, initializer: str = DAMAGED, shift: float = 3.0) -> Path:
    """Copy an export and its sidecar with `shift` added to one initializer (a weight changed after export)."""
    model = onnx.load(str(onnx_path))
    matches = [t for t in model.graph.initializer if t.name == initializer]
    assert len(matches) == 1, sorted(t.name for t in model.graph.initializer)[-10:]
    tensor = matches[0]
    changed = numpy_helper.to_array(tensor) + np.float32(shift)
    tensor.CopyFrom(numpy_helper.from_array(changed.astype(np.float32), tensor.name))
    onnx.save(model, str(out))
    shutil.copyfile(onnx_path.with_suffix(".json"), out.with_suffix(".json"))
    return out
