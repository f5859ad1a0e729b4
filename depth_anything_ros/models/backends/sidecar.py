"""The sidecar of an exported network: `NAME.json` beside `NAME.onnx` says what the file holds and how to feed it.

Importable without torch or onnx. The loader reads it to rebuild our pre- and post-processing around the file, and
the self-check reads `source` to find the PyTorch reference of the same weights (checked by sha256).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

FORMAT = "depth_anything_ros.onnx/1"
FAMILIES = ("v2", "da3")
OPSET = 18  # the ONNX opset every export states (ONNX Runtime 1.16 and later run it)
# What the network input is, per family: the same words the families' preprocess.py implement.
PREPROCESSING = {
    "v2": "RGB; the shorter side resized to input_size and the longer one to a multiple of 14 keeping the aspect "
          "ratio (OpenCV INTER_CUBIC on float64), /255, ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, "
          "0.225); NCHW float32. Output: depth (B, h, w) in metres (sigmoid x max_depth), bilinear back to H x W",
    "da3": "RGB; the longer side resized to input_size (process_res) and both sides to the nearest multiple of 14 "
           "(OpenCV, uint8), /255, ImageNet mean and std; NCHW float32. Outputs: depth (B, h, w), focal-normalised "
           "(metres = depth x focal at the network input / 300), and sky (B, h, w), sky where >= 0.3",
}


TUPLES = ("network_size", "image_size", "inputs", "outputs")  # JSON lists that are tuples here


class SidecarError(ValueError):
    """A sidecar that is missing, damaged or not ours, or an exported file that does not match it."""


@dataclass(frozen=True)
class Sidecar:
    """What an exported network holds: family, encoder, head scale, input contract and the weights it came from."""

    family: str  # "v2" | "da3"
    encoder: str  # vits | vitb | vitl (DA3: vitl)
    max_depth: float | None  # V2 metric head scale in metres; None for DA3 (metres from the focal length)
    input_size: int  # the family's input_size (V2: shorter side, DA3: process_res, the longer side)
    network_size: tuple[int, int]  # (h, w) of the fixed network input, batch 1 (multiples of 14)
    image_size: tuple[int, int]  # (width, height) of the camera images whose network input that is
    opset: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    preprocessing: str
    source: str  # the checkpoint file the weights came from, as given to export
    source_sha256: str
    onnx_sha256: str  # of the .onnx file as written (the self-check's corrupted-file test changes it)
    synthetic: bool  # random weights with the official shapes: depth is meaningless

    def to_json(self) -> str:
        """Return the sidecar as indented JSON text with our format key."""
        content = {"format": FORMAT, **asdict(self)}
        return json.dumps(content, indent=2) + "\n"


def sidecar_path(onnx_path: str | os.PathLike) -> Path:
    """Return the sidecar of an exported file: the same name with .json."""
    return Path(onnx_path).with_suffix(".json")


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def write_sidecar(onnx_path: str | os.PathLike, sidecar: Sidecar) -> Path:
    """Write the sidecar of `onnx_path` atomically (temporary file, then rename); returns its path."""
    path = sidecar_path(onnx_path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(sidecar.to_json())
    os.replace(tmp, path)
    return path


def check_outputs(onnx_path: str | os.PathLike, output_names: list[str], sidecar: Sidecar) -> None:
    """SidecarError when a runtime's outputs of an exported file are not the ones its sidecar names, in order."""
    if tuple(output_names) != tuple(sidecar.outputs):
        raise SidecarError(f"{onnx_path} has outputs {list(output_names)}, its sidecar says "
                           f"{list(sidecar.outputs)}: the two files do not belong together")


def read_sidecar(onnx_path: str | os.PathLike) -> Sidecar:
    """Read the sidecar of an exported file; SidecarError naming the file and the problem."""
    path = sidecar_path(onnx_path)
    if not path.is_file():
        raise SidecarError(f"{onnx_path} has no sidecar {path.name} beside it: export the network with "
                           "'depth-anything-ros export', which writes both")
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SidecarError(f"cannot read the sidecar {path}: {exc}") from None
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise SidecarError(f"{path} is not a depth_anything_ros export sidecar (format {FORMAT!r} expected)")
    content.pop("format")
    try:
        sidecar = Sidecar(**{**content, **{key: tuple(content[key]) for key in TUPLES}})
    except (TypeError, KeyError) as exc:
        raise SidecarError(f"{path} is damaged: {exc}") from None
    if sidecar.family not in FAMILIES:
        raise SidecarError(f"{path}: unknown family {sidecar.family!r}; expected one of {', '.join(FAMILIES)}")
    return sidecar
