"""Camera intrinsics of an image from CameraInfo-like objects, following image_geometry's PinholeCameraModel.

Rules, in this one place for the node, the bag tools and the CLI:

- ``fx, fy, cx, cy`` are the projection of the *rectified* image: from P when P[0] != 0 (as image_geometry), else
  from K. ``k`` (row-major raw K) and ``d`` are kept for raw, distorted images: undistortion maps raw pixels through
  K and D into normalised coordinates of K's optical frame (see ``rays.ray_grid``).
- ``binning_x/y`` (0 means 1) and ``roi`` (all zero means the full image) describe the image actually published:
  its size is roi.width / binning_x by roi.height / binning_y, and fx' = fx / bx, cx' = (cx - roi.x_offset) / bx
  (the same for y, for K and for P's Tx, Ty), as image_geometry's ``fromCameraInfo`` does.
- An image of another size is accepted when it is a uniform resize of that size (``Intrinsics.scaled_to``).
- Every entry of K, P and D must be finite, the focal lengths used positive, the roi inside the sensor: anything
  else is an ``IntrinsicsError`` that names the field. No NaN ever reaches a ray grid or ``depth/camera_info``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

# Models sensor_msgs/distortion_models defines; rays.ray_grid can undistort each of them.
DISTORTION_MODELS = ('plumb_bob', 'rational_polynomial', 'equidistant')
IDENTITY_R = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
NO_ROI = (0, 0, 0, 0, False)  # x_offset, y_offset, height, width, do_rectify


class IntrinsicsError(ValueError):
    """A camera_info that cannot describe the image; the message names the field and the value."""


@dataclass(frozen=True)
class CameraInfo:
    """The fields of a sensor_msgs/CameraInfo without its header, as plain tuples (what depth/camera_info carries)."""

    width: int
    height: int
    distortion_model: str
    d: tuple
    k: tuple
    r: tuple
    p: tuple
    binning_x: int = 0
    binning_y: int = 0
    roi: tuple = NO_ROI

    @classmethod
    def from_msg(cls, msg) -> CameraInfo:
        """Copy a CameraInfo-like object (rclpy, rosbags, ROS 1 upper-case names); IntrinsicsError if malformed."""
        try:
            roi = getattr(msg, 'roi', None)
            roi = NO_ROI if roi is None else (int(roi.x_offset), int(roi.y_offset), int(roi.height), int(roi.width),
                                              bool(roi.do_rectify))
            return cls(width=_int(msg, 'width'), height=_int(msg, 'height'),
                       distortion_model=str(msg.distortion_model), d=_floats(msg, 'd'), k=_floats(msg, 'k'),
                       r=_floats(msg, 'r'), p=_floats(msg, 'p'), binning_x=_int(msg, 'binning_x', 0),
                       binning_y=_int(msg, 'binning_y', 0), roi=roi)
        except IntrinsicsError:
            raise
        except (AttributeError, TypeError, ValueError) as exc:  # a missing field or one of the wrong type
            raise IntrinsicsError(f'camera_info is malformed: {exc}') from None

    @classmethod
    def pinhole(cls, width: int, height: int, fx: float, fy: float, cx: float, cy: float) -> CameraInfo:
        """Ideal rectified pinhole: plumb_bob with five zero coefficients, R identity, P = [K | 0]."""
        k = (float(fx), 0.0, float(cx), 0.0, float(fy), float(cy), 0.0, 0.0, 1.0)
        return cls(width=int(width), height=int(height), distortion_model='plumb_bob', d=(0.0,) * 5, k=k,
                   r=IDENTITY_R, p=_p_of(k))

    @classmethod
    def from_fov(cls, width: int, height: int, fov_deg: float) -> CameraInfo:
        """Ideal pinhole of horizontal field of view fov_deg, square pixels, principal point ((W-1)/2, (H-1)/2)."""
        if not 0.0 < fov_deg < 180.0:
            raise IntrinsicsError(f'horizontal field of view must be in (0, 180) degrees, got {fov_deg}')
        f = (width / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
        return cls.pinhole(width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0)


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
    tx: float = 0.0  # P[3], P[7] of this image size (stereo baseline terms)
    ty: float = 0.0

    def __post_init__(self):
        for name in ('fx', 'fy', 'cx', 'cy', 'tx', 'ty'):
            if not math.isfinite(getattr(self, name)):
                raise IntrinsicsError(f'{name} must be finite, got {getattr(self, name)}')
        if not (self.fx > 0 and self.fy > 0):
            raise IntrinsicsError(f'focal lengths must be positive, got fx={self.fx}, fy={self.fy}')
        if self.width <= 0 or self.height <= 0:
            raise IntrinsicsError(f'image size must be positive, got {self.width}x{self.height}')
        if self.k and len(self.k) != 9:
            raise IntrinsicsError(f'k must hold the 9 entries of K, got {len(self.k)}')

    @classmethod
    def from_camera_info(cls, msg) -> Intrinsics:
        """Intrinsics of the image a CameraInfo-like object describes (binning and roi applied); IntrinsicsError."""
        info = msg if isinstance(msg, CameraInfo) else CameraInfo.from_msg(msg)
        _check_finite(info)
        k, p, d = info.k, info.p, info.d
        if p[0] != 0.0:
            fx, fy, cx, cy, tx, ty, source = p[0], p[5], p[2], p[6], p[3], p[7], 'P'
        elif k[0] != 0.0:
            fx, fy, cx, cy, tx, ty, source = k[0], k[4], k[2], k[5], 0.0, 0.0, 'K'
        else:
            raise IntrinsicsError('camera_info has neither a projection matrix P nor a camera matrix K '
                                  '(both are zero): the camera is uncalibrated')
        if not (fx > 0 and fy > 0):
            raise IntrinsicsError(f'camera_info {source} has non-positive focal lengths fx={fx}, fy={fy}')
        raw_k = k if k[0] != 0.0 else ()
        if any(v != 0.0 for v in d) and not (raw_k and raw_k[0] > 0 and raw_k[4] > 0):
            raise IntrinsicsError(f'camera_info has distortion coefficients D but K (fx={k[0]}, fy={k[4]}) is not a '
                                  'valid camera matrix to undistort with')
        bx, by = max(info.binning_x, 1), max(info.binning_y, 1)
        x0, y0, roi_h, roi_w, _ = info.roi
        if info.width <= 0 or info.height <= 0:
            raise IntrinsicsError(f'camera_info size must be positive, got {info.width}x{info.height}')
        if roi_w == 0 and roi_h == 0:
            x0, y0, roi_w, roi_h = 0, 0, info.width, info.height
        if roi_w <= 0 or roi_h <= 0 or x0 + roi_w > info.width or y0 + roi_h > info.height:
            raise IntrinsicsError(f'camera_info roi (x_offset {x0}, y_offset {y0}, {roi_w}x{roi_h}) is not inside '
                                  f'the {info.width}x{info.height} sensor')
        width, height = roi_w // bx, roi_h // by
        if width == 0 or height == 0:
            raise IntrinsicsError(f'camera_info binning {bx}x{by} leaves no pixel of the {roi_w}x{roi_h} roi')
        if raw_k:
            raw_k = (raw_k[0] / bx, raw_k[1] / bx, (raw_k[2] - x0) / bx,
                     raw_k[3] / by, raw_k[4] / by, (raw_k[5] - y0) / by, raw_k[6], raw_k[7], raw_k[8])
        return cls(fx=fx / bx, fy=fy / by, cx=(cx - x0) / bx, cy=(cy - y0) / by, width=width, height=height,
                   distortion_model=info.distortion_model, d=d, k=raw_k, tx=tx / bx, ty=ty / by)

    @classmethod
    def from_fov(cls, width: int, height: int, fov_deg: float) -> Intrinsics:
        """Ideal pinhole of horizontal field of view fov_deg (CameraInfo.from_fov)."""
        return cls.from_camera_info(CameraInfo.from_fov(width, height, fov_deg))

    @property
    def has_distortion(self) -> bool:
        """Whether any distortion coefficient is non-zero."""
        return any(v != 0.0 for v in self.d)

    def camera_matrix(self) -> np.ndarray:
        """Return K of the raw image as a (3, 3) float64 array."""
        if self.k:
            return np.array(self.k, dtype=np.float64).reshape(3, 3)
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled_to(self, width: int, height: int) -> Intrinsics:
        """Return the intrinsics of the same camera resized uniformly to width x height.

        Scaling is corner-aligned (cx' = cx * sx, fx' = fx * sx), the convention of image_geometry's binning
        and image_proc's resize; the exact pixel-centre mapping of cv2.resize, (cx + 0.5) sx - 0.5, differs
        by (1 - sx) / 2 px at most. A resize is uniform when scaling the other side by the same factor
        gives the new size within one pixel of rounding; otherwise IntrinsicsError.
        """
        width, height = int(width), int(height)
        if (width, height) == (self.width, self.height):
            return self
        if width <= 0 or height <= 0:
            raise IntrinsicsError(f'cannot scale camera intrinsics of {self.width}x{self.height} to {width}x{height}')
        sx, sy = width / self.width, height / self.height
        if abs(self.height * sx - height) > 1.0 and abs(self.width * sy - width) > 1.0:
            raise IntrinsicsError(
                f'image size {width}x{height} is not a uniform resize of camera_info size '
                f'{self.width}x{self.height} (scale x {sx:.4f}, y {sy:.4f})')
        k = ()
        if self.k:
            k = (self.k[0] * sx, self.k[1] * sx, self.k[2] * sx,
                 self.k[3] * sy, self.k[4] * sy, self.k[5] * sy,
                 self.k[6], self.k[7], self.k[8])
        return replace(self, fx=self.fx * sx, fy=self.fy * sy, cx=self.cx * sx, cy=self.cy * sy,
                       width=width, height=height, k=k, tx=self.tx * sx, ty=self.ty * sy)


def image_camera(source, width: int, height: int) -> tuple[Intrinsics, CameraInfo]:
    """(Intrinsics of a width x height image, the CameraInfo to publish with its depth) from a CameraInfo-like source.

    The depth image has the input image's pixel grid. When that is the size the source describes, the source is
    published as it is, except that an all-zero P becomes [K | 0] (RealSense drivers send P zero, and
    image_geometry reads fx from P). For a resized image binning and roi are folded in: K and P of the new size,
    Tx and Ty scaled, R and D kept, binning 0 and roi zero.
    """
    info = source if isinstance(source, CameraInfo) else CameraInfo.from_msg(source)
    described = Intrinsics.from_camera_info(info)
    intr = described.scaled_to(width, height)
    r = info.r if any(v != 0.0 for v in info.r) else IDENTITY_R
    if intr is described:
        p = info.p if info.p[0] != 0.0 else _p_of(info.k)
        return intr, replace(info, p=p, r=r)
    k = tuple(float(v) for v in intr.camera_matrix().reshape(-1))
    p = (intr.fx, 0.0, intr.cx, intr.tx, 0.0, intr.fy, intr.cy, intr.ty, 0.0, 0.0, 1.0, 0.0)
    return intr, CameraInfo(width=intr.width, height=intr.height, distortion_model=info.distortion_model,
                            d=info.d, k=k, r=r, p=p)


def _p_of(k: tuple) -> tuple:
    """P = [K | 0] of a row-major K."""
    return (k[0], k[1], k[2], 0.0, k[3], k[4], k[5], 0.0, k[6], k[7], k[8], 0.0)


def _check_finite(info: CameraInfo) -> None:
    """Raise IntrinsicsError naming the first non-finite entry of K, P, R or D, or a wrong array length."""
    for name, values, sizes in (('K', info.k, (9,)), ('P', info.p, (12,)), ('R', info.r, (9, 0)),
                                ('D', info.d, None)):
        if sizes is not None and len(values) not in sizes:
            raise IntrinsicsError(f'camera_info {name} must hold {sizes[0]} values, got {len(values)}')
        for index, value in enumerate(values):
            if not math.isfinite(value):
                raise IntrinsicsError(f'camera_info {name}[{index}] is {value}: the calibration is invalid')


def _floats(msg, name: str) -> tuple:
    """Return a CameraInfo array field by its ROS 2 name (ROS 1 upper-case fallback) as a tuple of floats."""
    value = getattr(msg, name, None)
    if value is None:
        value = getattr(msg, name.upper(), ())
    try:
        return tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise IntrinsicsError(f'camera_info {name.upper()} must hold numbers, got {value!r}') from None


def _int(msg, name: str, default: int | None = None) -> int:
    """Return an integer CameraInfo field (IntrinsicsError naming it when it is missing or not an integer)."""
    value = getattr(msg, name) if default is None else getattr(msg, name, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise IntrinsicsError(f'camera_info {name} must be an integer, got {value!r}') from None



def user_camera(fx: float | None, fy: float | None, cx: float | None, cy: float | None, fov: float | None,
                default_fov: float, prefix: str = '--'):
    """Return (function (width, height) -> CameraInfo, where the intrinsics come from) for user-given intrinsics.

    All of fx fy cx cy (pixels), or fov (horizontal degrees), or neither (default_fov); IntrinsicsError otherwise,
    naming the options as `prefix` + name (the command line's --fx, a request's fx).
    """
    explicit = {'fx': fx, 'fy': fy, 'cx': cx, 'cy': cy}
    given = [name for name, value in explicit.items() if value is not None]
    if given and fov is not None:
        raise IntrinsicsError(f'give either {" ".join(prefix + n for n in explicit)} or {prefix}fov, not both')
    if given:
        if len(given) < 4:
            missing = ' '.join(f'{prefix}{name}' for name, value in explicit.items() if value is None)
            raise IntrinsicsError(f'incomplete intrinsics: also give {missing}')
        if not all(math.isfinite(value) for value in explicit.values()) or fx <= 0 or fy <= 0:
            raise IntrinsicsError(f'invalid intrinsics: need fx, fy > 0 and finite cx, cy, got {explicit}')
        return (lambda width, height: CameraInfo.pinhole(width, height, fx, fy, cx, cy)), 'fx fy cx cy given'
    source = f'{prefix}fov given' if fov is not None else f'no intrinsics given: {prefix}fov {default_fov:g} assumed'
    fov = default_fov if fov is None else fov
    if not 0.0 < fov < 180.0:
        raise IntrinsicsError(f'invalid {prefix}fov {fov:g}: the horizontal field of view must be between 0 and 180 '
                              'degrees')
    return (lambda width, height: CameraInfo.from_fov(width, height, fov)), source
