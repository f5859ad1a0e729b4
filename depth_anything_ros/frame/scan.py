"""A planar LaserScan from depth, with depthimage_to_laserscan's conventions and maths (no ROS).

ros-perception/depthimage_to_laserscan (``DepthImageToLaserScan::convert_msg`` and ``convert``), followed here:

- ``angle_max`` is the angle between the rays of the pixels (0, cy) and (cx, cy), ``angle_min`` minus the angle
  between the rays of (cx, cy) and (W - 1, cy); ``angle_increment`` = (max - min) / (W - 1); W ranges;
  ``time_increment`` 0, ``scan_time``, ``range_min`` and ``range_max`` from the options. The scan turns the other
  way round from the image columns: range 0 is the rightmost column's bearing.
- ``height`` rows from int(cy - height / 2) on; a height with height / 2 > cy or > H - cy is refused.
- each pixel's bearing is th = -atan2(x, z) and its range hypot(x, z) (the distance in the optical x-z plane, y
  ignored); it goes to the bin int((th - angle_min) / angle_increment) (truncated), and a bin keeps its smallest
  range in [range_min, range_max].

Where we differ, on purpose:

- distortion: each pixel's x / z is its undistorted ray (frame/rays.py, the rays our clouds use), and on raw images
  undistorted through K the optical centre is K's (cx, cy); depthimage_to_laserscan rectifies only the three points
  that give the angles and treats every column as rectified.
- REP 117 for a bin without a range in [range_min, range_max]: -inf when a pixel was closer than range_min
  (object too close), else +inf when a pixel was farther than range_max (no object within range: free space, what
  Nav2's ``inf_is_valid`` clears with), else NaN (no valid pixel: invalid depth, a pixel outside the field of view
  of the undistorted bearings, or one the edge filter or the confidence gate dropped). depthimage_to_laserscan
  passes infinities of the depth image through and leaves NaN for finite depths out of range; our depth has no
  infinities, so out-of-range depths carry that meaning instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from depth_anything_ros.frame.camera import Intrinsics
from depth_anything_ros.frame.rays import pixel_rays, principal_point

if TYPE_CHECKING:  # the command line reads ScanOptions' defaults without loading torch
    import torch


class ScanError(ValueError):
    """A scan that cannot be made from this image with these options (the message names the option)."""


@dataclass(frozen=True)
class ScanOptions:
    """The node's scan.* parameters (depthimage_to_laserscan's scan_height, range_min, ... and output_frame)."""

    height: int = 1  # rows centred on the optical centre; each bin keeps the nearest of them
    range_min: float = 0.45  # metres; closer pixels give -inf when nothing in range is seen in the bin
    range_max: float = 10.0  # metres; farther pixels give +inf when nothing in range is seen in the bin
    time: float = 0.033  # scan_time, seconds between scans (depthimage_to_laserscan's default)
    output_frame: str = "camera_depth_frame"  # x forward, z up at the camera; "" = the image's (optical) frame_id
    min_confidence: float = 0.0  # pixels of lower depth/confidence are invalid for the scan; 0 = no gate

    def problems(self) -> list[str]:
        """Return why these options are invalid (empty when valid)."""
        found = []
        if isinstance(self.height, bool) or not isinstance(self.height, int) or self.height < 1:
            found.append(f"scan height must be an integer >= 1, got {self.height!r}")
        if not 0.0 <= self.range_min < self.range_max or not math.isfinite(self.range_max):
            found.append(f"scan ranges need 0 <= range_min < range_max, got {self.range_min}, {self.range_max}")
        if not 0.0 <= self.time <= 3600.0:
            found.append(f"scan time must be in [0, 3600] s, got {self.time}")
        if not 0.0 <= self.min_confidence <= 1.0:
            found.append(f"scan min confidence must be in [0, 1], got {self.min_confidence}")
        return found


@dataclass(frozen=True)
class LaserScanData:
    """The fields of a sensor_msgs/LaserScan without its header stamp; frame_id "" = the image's."""

    frame_id: str
    angle_min: float
    angle_max: float
    angle_increment: float
    time_increment: float
    scan_time: float
    range_min: float
    range_max: float
    ranges: np.ndarray  # (W,) float32 metres; -inf too close, +inf nothing within range_max, NaN invalid


def scan_rows(intr: Intrinsics, undistort: bool, height: int) -> slice:
    """Return the image rows of the scan: `height` rows from int(cy - height / 2); ScanError when too tall."""
    cy = principal_point(intr, undistort)[1]
    if height / 2.0 > cy or height / 2.0 > intr.height - cy:
        raise ScanError(f"scan height {height} rows is too large for the {intr.height}-row image with the optical "
                        f"centre at row {cy:g}")
    first = int(cy - height / 2.0)
    return slice(first, first + height)


def scan_angles(intr: Intrinsics, undistort: bool) -> tuple[float, float]:
    """Return (angle_min, angle_max): minus the angle from the centre ray to the right edge's, and to the left's."""
    cx, cy = principal_point(intr, undistort)
    left, right, centre = pixel_rays(intr, [(0.0, cy), (intr.width - 1.0, cy), (cx, cy)], undistort)
    if not np.isfinite([left, right, centre]).all():
        raise ScanError(f"the {intr.distortion_model} distortion cannot be inverted at the image's left or right "
                        "edge on the optical centre's row, which sets the scan's angles")
    return -_angle_between(centre, right), _angle_between(left, centre)


def _angle_between(a: np.ndarray, b: np.ndarray) -> float:
    return math.acos(float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))))


def laser_scan(depth: torch.Tensor, rays: torch.Tensor, intr: Intrinsics, undistort: bool,
               options: ScanOptions) -> LaserScanData:
    """Return the scan of (H, W) depth in metres (NaN, <= 0: invalid) along the (H, W, 3) z = 1 rays of `intr`."""
    rows = scan_rows(intr, undistort, options.height)
    angle_min, angle_max = scan_angles(intr, undistort)
    width = intr.width
    increment = (angle_max - angle_min) / (width - 1) if width > 1 else 0.0
    d = depth[rows].double().cpu().numpy().reshape(-1)  # (height * W,)
    x = rays[rows, :, 0].double().cpu().numpy().reshape(-1)  # x / z of each pixel's ray
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(d) & (d > 0) & np.isfinite(x)
        r = d * np.hypot(x, 1.0)  # hypot(x, z) with z = d
        index = np.trunc((-np.arctan2(x, 1.0) - angle_min) / increment) if increment > 0 else np.zeros_like(x)
    valid &= (index >= 0) & (index <= width - 1)
    index = np.where(valid, index, 0).astype(np.intp)
    in_range = valid & (r >= options.range_min) & (r <= options.range_max)
    nearest = np.full(width, np.inf)
    np.minimum.at(nearest, index[in_range], r[in_range])
    too_close = np.bincount(index[valid & (r < options.range_min)], minlength=width) > 0
    too_far = np.bincount(index[valid & (r > options.range_max)], minlength=width) > 0
    ranges = np.where(np.isfinite(nearest), nearest,
                      np.where(too_close, -np.inf, np.where(too_far, np.inf, np.nan))).astype(np.float32)
    return LaserScanData(frame_id=options.output_frame, angle_min=angle_min, angle_max=angle_max,
                         angle_increment=increment, time_increment=0.0, scan_time=options.time,
                         range_min=options.range_min, range_max=options.range_max, ranges=ranges)
