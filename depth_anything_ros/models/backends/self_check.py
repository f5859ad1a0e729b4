"""Startup self-check: one probe frame through a backend and through the PyTorch reference of the same checkpoint.

The reference is the checkpoint the sidecar names (its sha256 must match), on the CPU in fp32. The backend passes
when max |diff| <= MAX_TOLERANCE x scale and mean |diff| <= MEAN_TOLERANCE x scale, where scale is the model's
max depth (V2's head scale; 80 m for DA3): 0.2 m and 0.02 m for a 20 m head. ONNX Runtime's CPU provider and
OpenVINO's CPU plugin in f32 differ from torch fp32 by about 1e-5 of that (docs/onnx.md); TensorRT fp16 engines
are expected well inside the bound, and a broken conversion (a wrong or missing layer, a damaged weight) far
outside it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from depth_anything_ros.models.backends.export import compare_depth, probe_image
from depth_anything_ros.models.backends.sidecar import SidecarError, file_sha256
from depth_anything_ros.models.registry import load_estimator

MAX_TOLERANCE = 0.01  # of the depth scale
MEAN_TOLERANCE = 0.001
LIKELY_CAUSES = ("a converter or provider bug (e.g. TensorRT versions known to break ViT attention, docs/onnx.md), "
                 "reduced precision in the runtime (TensorRT fp16, OpenVINO bf16 or f16), or an exported file that "
                 "was changed or damaged after export")


class SelfCheckError(SidecarError):
    """The self-check could not run (no reference) or the backend's depth is too far from the reference."""


@dataclass(frozen=True)
class SelfCheck:
    """Result of one self-check: differences in metres, the bound they were held to and what each run took."""

    max_diff: float
    mean_diff: float
    max_tolerance: float
    mean_tolerance: float
    backend_seconds: float
    reference_seconds: float  # loading the PyTorch reference and running the probe through it, on the CPU

    @property
    def passed(self) -> bool:
        """True when both differences are within their tolerance."""
        return self.max_diff <= self.max_tolerance and self.mean_diff <= self.mean_tolerance

    def text(self) -> str:
        """One line: the differences, the bound and the time the check took."""
        return (f"self-check against PyTorch fp32: max |diff| {self.max_diff:.3g} m, mean {self.mean_diff:.3g} m "
                f"(tolerance {self.max_tolerance:.3g} m max, {self.mean_tolerance:.3g} m mean; reference "
                f"{self.reference_seconds:.1f} s on the CPU, backend {self.backend_seconds:.2f} s)")


def reference_estimator(estimator):
    """Load the PyTorch fp32 CPU estimator of the checkpoint an exported estimator came from; SelfCheckError if none."""
    sidecar = estimator.sidecar
    source = Path(sidecar.source)
    skip = "or turn the self-check off (model.self_check false, --no-self-check) at your own risk"
    if not source.is_file():
        raise SelfCheckError(f"self-check: the source checkpoint {source} of {estimator.checkpoint_path} is not "
                             f"here; copy it to that path {skip}")
    if file_sha256(source) != sidecar.source_sha256:
        raise SelfCheckError(f"self-check: {source} is not the checkpoint {estimator.checkpoint_path} was exported "
                             f"from (sha256 differs); export again from it {skip}")
    options = {} if sidecar.family == "da3" else {"encoder": sidecar.encoder, "max_depth": sidecar.max_depth}
    return load_estimator(source, device="cpu", precision="fp32", input_size=sidecar.input_size, compile=False,
                          download=False, sky=estimator.sky if sidecar.family == "da3" else "invalid", **options)


def run_self_check(estimator, reference=None) -> SelfCheck:
    """Probe the exported estimator and its PyTorch reference (loaded when None) with one frame of the export's size."""
    width, height = estimator.sidecar.image_size
    image = probe_image(width, height)
    focal = {"focal": (0.8 * width, 0.8 * width)} if estimator.needs_focal else {}
    start = time.perf_counter()
    candidate = estimator.estimate(image, "rgb8", **focal)
    backend_seconds = time.perf_counter() - start
    start = time.perf_counter()
    reference = (reference or reference_estimator(estimator)).estimate(image, "rgb8", **focal)
    reference_seconds = time.perf_counter() - start
    max_diff, mean_diff = compare_depth(candidate, reference)
    scale = float(estimator.max_depth)
    return SelfCheck(max_diff, mean_diff, MAX_TOLERANCE * scale, MEAN_TOLERANCE * scale, backend_seconds,
                     reference_seconds)


def require_self_check(estimator) -> SelfCheck:
    """run_self_check, raising SelfCheckError (the differences and the likely causes) when it fails."""
    check = run_self_check(estimator)
    if not check.passed:
        raise SelfCheckError(f"{estimator.checkpoint_path} with {estimator.backend} "
                             f"({', '.join(estimator.providers)}) FAILED the {check.text()}; likely causes: "
                             f"{LIKELY_CAUSES}")
    return check
