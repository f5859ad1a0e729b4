"""Pinhole intrinsics from CameraInfo-like objects, following the image_geometry conventions.

``fx, fy, cx, cy`` are the projection of the *rectified* image: taken from P when P[0] != 0 (as
image_geometry's PinholeCameraModel does), else from K. ``k`` (row-major 3x3 K) and ``d`` are kept for raw,
distorted images: undistortion maps raw pixels through K and D into normalised coordinates of K's optical
frame, which is the image's frame_id (see ``geometry.ray_grid``). For a rectified image (D all zero) the two
descriptions agree and back-projection is x = (u - cx) z / fx, y = (v - cy) z / fy.
"""

import math
from dataclasses import dataclass, replace

import numpy as np

# Models sensor_msgs/distortion_models defines; geometry.ray_grid can undistort each of them.
DISTORTION_MODELS = ('plumb_bob', 'rational_polynomial', 'equidistant')


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of one image size; frozen and hashable, usable as a cache key."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    distortion_model: str = ''
    d: tuple = ()
    k: tuple = ()  # row-major 3x3 K of the raw image; empty means K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]

    def __post_init__(self):
        if not (self.fx > 0 and self.fy > 0 and math.isfinite(self.fx) and math.isfinite(self.fy)):
            raise ValueError(f'focal lengths must be positive and finite, got fx={self.fx}, fy={self.fy}')
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f'image size must be positive, got {self.width}x{self.height}')
        if self.k and len(self.k) != 9:
            raise ValueError(f'k must hold the 9 entries of K, got {len(self.k)}')

    @classmethod
    def from_camera_info(cls, msg) -> 'Intrinsics':
        """Build from a CameraInfo-like object (fields k, p, d, distortion_model, width, height)."""
        k = tuple(float(v) for v in _field(msg, 'k'))
        p = tuple(float(v) for v in _field(msg, 'p'))
        if len(p) == 12 and p[0] != 0.0:
            fx, fy, cx, cy = p[0], p[5], p[2], p[6]
        elif len(k) == 9 and k[0] != 0.0:
            fx, fy, cx, cy = k[0], k[4], k[2], k[5]
        else:
            raise ValueError('camera_info has neither a projection matrix P nor a camera matrix K '
                             '(both are zero): the camera is uncalibrated')
        if len(k) != 9 or k[0] == 0.0:
            k = ()
        return cls(fx=fx, fy=fy, cx=cx, cy=cy, width=int(msg.width), height=int(msg.height),
                   distortion_model=str(msg.distortion_model),
                   d=tuple(float(v) for v in _field(msg, 'd')), k=k)

    @classmethod
    def from_fov(cls, width: int, height: int, fov_deg: float) -> 'Intrinsics':
        """Ideal pinhole of horizontal field of view fov_deg, square pixels, principal point ((W-1)/2, (H-1)/2)."""
        if not 0.0 < fov_deg < 180.0:
            raise ValueError(f'horizontal field of view must be in (0, 180) degrees, got {fov_deg}')
        f = (width / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
        return cls(fx=f, fy=f, cx=(width - 1) / 2.0, cy=(height - 1) / 2.0, width=int(width), height=int(height))

    @property
    def has_distortion(self) -> bool:
        """Whether any distortion coefficient is non-zero."""
        return any(v != 0.0 for v in self.d)

    def camera_matrix(self) -> np.ndarray:
        """Return K of the raw image as a (3, 3) float64 array."""
        if self.k:
            return np.array(self.k, dtype=np.float64).reshape(3, 3)
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled_to(self, width: int, height: int) -> 'Intrinsics':
        """Return the intrinsics of the same camera resized uniformly to width x height.

        Scaling is corner-aligned (cx' = cx * sx, fx' = fx * sx), the convention of image_geometry's binning
        and image_proc's resize; the exact pixel-centre mapping of cv2.resize, (cx + 0.5) sx - 0.5, differs
        by (1 - sx) / 2 px at most. A resize is uniform when scaling the other side by the same factor
        gives the new size within one pixel of rounding; otherwise ValueError.
        """
        width, height = int(width), int(height)
        if (width, height) == (self.width, self.height):
            return self
        if width <= 0 or height <= 0:
            raise ValueError(f'cannot scale camera intrinsics of {self.width}x{self.height} to {width}x{height}')
        sx, sy = width / self.width, height / self.height
        if abs(self.height * sx - height) > 1.0 and abs(self.width * sy - width) > 1.0:
            raise ValueError(
                f'image size {width}x{height} is not a uniform resize of camera_info size '
                f'{self.width}x{self.height} (scale x {sx:.4f}, y {sy:.4f})')
        k = ()
        if self.k:
            k = (self.k[0] * sx, self.k[1] * sx, self.k[2] * sx,
                 self.k[3] * sy, self.k[4] * sy, self.k[5] * sy,
                 self.k[6], self.k[7], self.k[8])
        return replace(self, fx=self.fx * sx, fy=self.fy * sy, cx=self.cx * sx, cy=self.cy * sy,
                       width=width, height=height, k=k)


def _field(msg, name: str):
    """Read a CameraInfo array field by its ROS 2 name, falling back to the ROS 1 upper-case name."""
    value = getattr(msg, name, None)
    if value is None:
        value = getattr(msg, name.upper(), ())
    return value
