"""State of one camera the node serves: its topics, camera_info history, input counters and health (no rclpy)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from depth_anything_ros.frame.camera import CameraInfo, Intrinsics, IntrinsicsError
from depth_anything_ros.frame.scale import ScaleState
from depth_anything_ros.frame.stamped import StampedHistory
from depth_anything_ros.ros.scale import REFERENCE_HISTORY, ScaleHealth
from depth_anything_ros.ros.stats import WindowStats

CAMERA_INFO_GRACE_S = 3.0  # frames without camera_info for this long: warn once, fall back
CAMERA_INFO_HISTORY = 64  # camera_infos kept per camera to pair with images by stamp
RECENT_ERROR_S = 5.0  # diagnostics stay WARN this long after an error


@dataclass
class Frame:
    """One received image message and when it arrived (monotonic seconds)."""

    msg: object
    received: float


@dataclass
class Camera:
    """Topics and state of one camera namespace."""

    namespace: str
    label: str
    image_sub: object = None
    info_sub: object = None
    depth_pub: object = None
    info_pub: object = None
    points_pub: object = None
    colored_pub: object = None
    reference_sub: object = None
    scale_pub: object = None
    scan_pub: object = None
    confidence_pub: object = None
    infos: StampedHistory = field(default_factory=lambda: StampedHistory(CAMERA_INFO_HISTORY))
    references: StampedHistory = field(default_factory=lambda: StampedHistory(REFERENCE_HISTORY))
    scale_state: ScaleState | None = None  # of the last processed frame; None in fixed mode
    scale_health: ScaleHealth = field(default_factory=ScaleHealth)
    image_size: tuple[int, int] | None = None  # (width, height) of its images: first frame's, else camera_info's
    first_frame: float | None = None
    warned_no_info: bool = False
    warned_qos: bool = False
    frames_in: int = 0
    last_error: str = ""
    last_error_time: float = -math.inf
    stamp_problem: str = ""  # why this camera's stamps cannot give a latency, "" when they can
    stats: WindowStats = field(default_factory=WindowStats)

    def add_camera_info(self, stamp_ns: int, msg) -> None:
        """Keep a camera_info by stamp; until a frame arrives, its image size is the one to warm up for."""
        self.infos.add(stamp_ns, msg)
        if self.image_size is None:
            try:
                intr = Intrinsics.from_camera_info(msg)
            except IntrinsicsError:
                return  # reported with the first frame that needs it
            self.image_size = (intr.width, intr.height)

    def add_frame(self, msg, now: float) -> Frame:
        """Count a received image; the first one fixes the image size to warm up for."""
        if self.first_frame is None:
            self.first_frame = now
            if hasattr(msg, "width"):
                self.image_size = (int(msg.width), int(msg.height))
        self.frames_in += 1
        self.stats.count("in")
        return Frame(msg, now)

    def fallback_due(self, now: float) -> bool:
        """Return True when no camera_info came within the grace period after the first frame."""
        return not len(self.infos) and self.first_frame is not None and now - self.first_frame >= CAMERA_INFO_GRACE_S

    def camera_info_for(self, stamp_ns: int, image_size: tuple[int, int] | None, fallback_fov: float, now: float):
        """Return the camera_info paired with an image by stamp, the FOV fallback pinhole when due, or None."""
        info = self.infos.latest_at(stamp_ns)
        if info is None and fallback_fov > 0 and image_size is not None and self.fallback_due(now):
            return CameraInfo.from_fov(image_size[0], image_size[1], fallback_fov)
        return info

    def report(self, message: str, now: float) -> None:
        """Record a frame problem for the diagnostics."""
        self.last_error, self.last_error_time = message, now
        self.stats.count("errors")

    def recent_error(self, now: float) -> str:
        """Return the last problem when it is recent enough to keep the status at WARN, else ''."""
        return self.last_error if now - self.last_error_time < RECENT_ERROR_S else ""

    def diagnostic_values(self, received: int, dropped: int) -> dict[str, str]:
        """Return the key/values of this camera's diagnostic status (rates and means since the last call)."""
        _, rates, means = self.stats.snapshot()
        latency = f"{means['latency'] * 1e3:.1f}" if "latency" in means else "-"
        return {
            "input rate hz": f"{rates.get('in', 0.0):.2f}",
            "output rate hz": f"{rates.get('out', 0.0):.2f}",
            "latency ms": f"unknown: {self.stamp_problem}" if self.stamp_problem else latency,
            "frames received": str(received),
            "frames dropped": str(dropped),
            "camera_info": "received" if len(self.infos) else "missing",
            "error rate hz": f"{rates.get('errors', 0.0):.2f}",
            "last error": self.last_error or "-",
        }
