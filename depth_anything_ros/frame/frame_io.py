"""What goes into and comes out of the frame pipeline: options, one frame, its results and problems (no ROS)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np

from depth_anything_ros.frame.camera import CameraInfo
from depth_anything_ros.frame.colorize import COLORMAPS, DEFAULT_COLORMAP
from depth_anything_ros.frame.geometry import CloudBuffer
from depth_anything_ros.frame.scale import ScaleOptions, ScaleState
from depth_anything_ros.frame.scan import LaserScanData, ScanOptions

# rgb: the (H, W, 3) uint8 RGB the cloud is coloured by; scan: LaserScan; confidence: (H, W) float32 0..1
OUTPUTS = ("depth", "camera_info", "points", "colored", "rgb", "scan", "confidence")
INTRINSIC_OUTPUTS = ("camera_info", "points", "scan", "confidence")


@dataclass(frozen=True)
class FrameOptions:
    """Per-frame options, shared by every front-end (the node's run-time parameters of the same meaning)."""

    depth_scale: float = 1.0  # multiplies the model's depth (and so the cloud and the colour range)
    cloud_stride: int = 1  # every n-th row and column
    cloud_min_depth: float = 0.0  # closer points are invalid
    cloud_max_depth: float = 0.0  # farther points are invalid; 0 = no limit
    cloud_color: bool = True  # packed rgb field
    cloud_organized: bool = True  # H x W with NaN, or valid points only
    colormap: str = DEFAULT_COLORMAP  # any OpenCV colormap name, case-insensitive
    undistort: bool = True  # raw images with non-zero D: back-project through K and D
    scale: ScaleOptions = ScaleOptions()  # mode fixed: depth_scale; reference / ground_plane: fitted per frame
    edge_filter: bool = False  # points and scan: drop flying pixels (frame/edges.py)
    edge_angle_deg: float = 5.0  # a pixel whose surface is seen at less than this from its ray is flying
    voxel_size: float = 0.0  # metres: one point per occupied voxel (unorganised clouds only); 0 = off
    cloud_min_confidence: float = 0.0  # points of lower confidence are invalid; 0 = no gate
    scan: ScanOptions = ScanOptions()
    temporal_max_gap: float = 1.0  # temporal models: a longer gap between a camera's stamps starts over; 0 = never

    def __post_init__(self):
        object.__setattr__(self, "colormap", str(self.colormap).lower())
        problems = []
        if not 0.001 <= self.depth_scale <= 1000.0:
            problems.append(f"depth scale must be in [0.001, 1000], got {self.depth_scale}")
        if isinstance(self.cloud_stride, bool) or not isinstance(self.cloud_stride, int) or not \
                1 <= self.cloud_stride <= 64:
            problems.append(f"cloud stride must be an integer in [1, 64], got {self.cloud_stride!r}")
        if not (0.0 <= self.cloud_min_depth and 0.0 <= self.cloud_max_depth):
            problems.append(f"cloud depth limits must be >= 0, got {self.cloud_min_depth}, {self.cloud_max_depth}")
        elif self.cloud_max_depth > 0 and self.cloud_min_depth >= self.cloud_max_depth:
            problems.append(f"cloud min depth ({self.cloud_min_depth}) must be below the max depth "
                            f"({self.cloud_max_depth}; 0 = no limit)")
        if self.colormap not in COLORMAPS:
            problems.append(f"unknown colormap '{self.colormap}'; one of {', '.join(COLORMAPS)}")
        if not 0.1 <= self.edge_angle_deg <= 45.0:
            problems.append(f"edge angle must be in [0.1, 45] degrees, got {self.edge_angle_deg}")
        if not 0.0 <= self.voxel_size <= 100.0:
            problems.append(f"voxel size must be in [0, 100] metres, got {self.voxel_size}")
        elif self.voxel_size > 0 and self.cloud_organized:
            problems.append(f"voxel size {self.voxel_size} m needs an unorganised cloud (an organised one keeps the "
                            "image grid): set cloud.organized false (--unorganized), or cloud.voxel_size 0")
        if not 0.0 <= self.cloud_min_confidence <= 1.0:
            problems.append(f"cloud min confidence must be in [0, 1], got {self.cloud_min_confidence}")
        if not 0.0 <= self.temporal_max_gap <= 3600.0:
            problems.append(f"temporal max gap must be in [0, 3600] seconds, got {self.temporal_max_gap}")
        problems += self.scan.problems()
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def cloud_range(self) -> tuple[float, float]:
        """(min, max) valid cloud depth in metres, max inf when unlimited."""
        return self.cloud_min_depth, self.cloud_max_depth if self.cloud_max_depth > 0 else float("inf")


@dataclass(frozen=True)
class FrameProblem:
    """Why outputs of one frame were not produced: kind image | intrinsics | model | scale | scan | internal."""

    kind: str
    message: str
    skipped: tuple[str, ...]

    def text(self) -> str:
        """One line: the problem and what it cost."""
        return f"{self.message} ({', '.join(self.skipped)} not produced)" if self.skipped else self.message


@dataclass
class FrameInput:
    """One frame for the pipeline: an Image/CompressedImage-like message or decoded pixels, and its camera_info."""

    camera: Hashable = 0  # ray grids and cloud buffers are kept per camera
    message: object = None  # Image-like (height, width, encoding, step, data) or CompressedImage-like (format, data)
    pixels: np.ndarray | None = None  # or an already decoded (H, W[, C]) array in `encoding`
    encoding: str = ""
    camera_info: object = None  # CameraInfo-like or camera.CameraInfo; None: no intrinsics for this frame
    outputs: tuple[str, ...] = OUTPUTS[:4]  # what the caller wants
    stamp: float = 0.0  # header stamp, seconds: the scale smoothing's clock
    reference: np.ndarray | None = None  # (h, w) float metres, NaN/0 invalid: the image size or a uniform resize
    depth: object = None  # (H, W) float32 torch metres estimated already (offline temporal windows): no model run


@dataclass
class FrameResult:
    """Everything produced for one frame; None for outputs not wanted or not produced (see problems)."""

    depth: np.ndarray | None = None  # (H, W) float32 metres, NaN/0 never invented
    camera_info: CameraInfo | None = None  # of the depth image
    cloud: CloudBuffer | None = None
    colored: np.ndarray | None = None  # (H, W, 3) uint8 RGB
    rgb: np.ndarray | None = None  # (H, W, 3) uint8 RGB of the input
    scan: LaserScanData | None = None
    confidence: np.ndarray | None = None  # (H, W) float32 in [0, 1], 0 where the depth is invalid
    scale: ScaleState | None = None  # the scale applied and this frame's fit (scale modes other than fixed)
    problems: list[FrameProblem] = field(default_factory=list)
    restart: str | None = None  # temporal models: why the camera's stream started over at this frame
    seconds: dict[str, float] = field(default_factory=dict)  # stage durations (batch stages shared)

    def problem(self, kind: str, message: str, skipped: Sequence[str]) -> None:
        """Record a problem that cost the outputs `skipped`."""
        self.problems.append(FrameProblem(kind, message, tuple(skipped)))
