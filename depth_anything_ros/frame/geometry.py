"""Depth to points: PointCloud2 buffers from depth and a ray grid (frame/rays.py), in torch on any device.

Points are in the image's optical frame (REP 103: z forward, x right, y down): point = ray(u, v) * depth(u, v)
with ray z = 1, so for a rectified camera x = (u - cx) z / fx and y = (v - cy) z / fy, as in depth_image_proc.

Cloud layout (little-endian, ``point_step`` 16 bytes): x, y, z FLOAT32 at offsets 0, 4, 8; with colour an
``rgb`` FLOAT32 field at offset 12 whose bytes are b, g, r, 0 (the packed-rgb convention of depth_image_proc
and PCL). Without colour bytes 12..15 are zero padding, exactly the 16-byte ``xyz`` layout of depth_image_proc.
depth_image_proc's xyzrgb cloud pads to 32 bytes with rgb at 16; consumers read offsets from ``fields``, so the
compact layout is interchangeable and halves the bandwidth.
"""

import array
import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from depth_anything_ros.frame.byte_buffers import byte_array

# sensor_msgs/PointField datatype constants.
INT8, UINT8, INT16, UINT16, INT32, UINT32, FLOAT32, FLOAT64 = range(1, 9)

POINT_STEP = 16
XYZ_FIELDS = (('x', 0, FLOAT32, 1), ('y', 4, FLOAT32, 1), ('z', 8, FLOAT32, 1))
XYZRGB_FIELDS = XYZ_FIELDS + (('rgb', 12, FLOAT32, 1),)


@dataclass(frozen=True)
class CloudBuffer:
    """A finished PointCloud2 payload: sizes, fields as (name, offset, datatype, count) and little-endian bytes.

    The builders give `data` as array('B') (frame/byte_buffers.py); any bytes-like object is accepted.
    """

    height: int
    width: int
    point_step: int
    row_step: int
    fields: tuple
    data: array.array | bytes
    is_dense: bool


class PointCloudBuilder:
    """Builds PointCloud2 buffers from depth and rays on the depth tensor's device.

    CUDA (and any non-CPU) tensors are processed with torch; CPU tensors by default with NumPy/OpenCV, which is
    several times faster than eager torch there (``cpu_kernel='torch'`` forces torch; both give identical bytes).
    The strided rays are cached for the last ``rays`` tensor: pass a new tensor when the camera changes and never
    modify a ray tensor in place. Keeps per-builder state, so use one builder per thread.
    """

    def __init__(self, cpu_kernel: str = 'opencv'):
        if cpu_kernel not in ('opencv', 'torch'):
            raise ValueError(f"cpu_kernel must be 'opencv' or 'torch', got {cpu_kernel!r}")
        self._cpu_kernel = cpu_kernel
        self._rays_key: tuple | None = None
        self._rays: tuple = ()
        self._buffer = torch.empty(0)
        self._workspace: dict = {}

    def build(self, depth: torch.Tensor, rays: torch.Tensor, rgb: torch.Tensor | None = None, *, stride: int = 1,
              min_depth: float = 0.0, max_depth: float = math.inf, organized: bool = True) -> CloudBuffer:
        """Back-project (H, W) depth in metres along (H, W, 3) rays, coloured by (H, W, 3) uint8 RGB if given.

        Rows and columns are subsampled by ``stride`` starting at 0. A point is valid when its depth is finite,
        > 0 and within [min_depth, max_depth] and its ray is finite. Organised: height x width of the strided
        grid, invalid points NaN, is_dense False. Unorganised: invalid points dropped, height 1, is_dense True.
        """
        self._check(depth, rays, rgb, stride, min_depth, max_depth)
        fields = XYZ_FIELDS if rgb is None else XYZRGB_FIELDS
        rx, ry, ray_valid = self._strided_rays(rays, stride)
        # Valid depth d satisfies low <= d <= high; NaN fails both comparisons, inf fails d <= FLT_MAX.
        low = max(float(min_depth), _SMALLEST_POSITIVE_FLOAT32)
        high = min(float(max_depth), _LARGEST_FLOAT32)
        d = depth[::stride, ::stride]
        if d.device.type == 'cpu' and self._cpu_kernel == 'opencv':
            c = None if rgb is None else rgb[::stride, ::stride].numpy()
            data, count = self._pack_opencv(d.float().numpy(), rx, ry, ray_valid, c, low, high, organized)
        else:
            c = None if rgb is None else rgb[::stride, ::stride]
            data, count = self._pack_torch(d.float(), rx, ry, ray_valid, c, low, high, organized)
        if organized:
            height, width = d.shape
            return CloudBuffer(height, width, POINT_STEP, POINT_STEP * width, fields, data, False)
        return CloudBuffer(1, count, POINT_STEP, POINT_STEP * count, fields, data, True)

    def _strided_rays(self, rays: torch.Tensor, stride: int) -> tuple:
        """Return the strided (x, y) ray components and the ray validity mask (None if all valid), cached."""
        key = (rays, stride, self._cpu_kernel)
        if self._rays_key is None or self._rays_key[0] is not rays or self._rays_key[1:] != key[1:]:
            strided = rays[::stride, ::stride]
            rx, ry = strided[..., 0], strided[..., 1]
            rx, ry = rx.contiguous(), ry.contiguous()
            ray_valid = torch.isfinite(strided).all(dim=-1)
            ray_valid = None if bool(ray_valid.all()) else ray_valid
            if rays.device.type == 'cpu' and self._cpu_kernel == 'opencv':  # OpenCV masks are uint8 0 / 255
                rx, ry = rx.numpy(), ry.numpy()
                ray_valid = None if ray_valid is None else ray_valid.numpy().astype(np.uint8) * np.uint8(255)
            self._rays_key, self._rays = key, (rx, ry, ray_valid)
        return self._rays

    def _pack_torch(self, d, rx, ry, ray_valid, rgb, low, high, organized) -> tuple[array.array, int]:
        """Torch kernel: (h, w) float32 depth on any device -> (little-endian bytes, number of points)."""
        valid = (d >= low) & (d <= high)
        if ray_valid is not None:
            valid &= ray_valid
        masked = torch.where(valid, d, math.nan)
        height, width = d.shape
        out = self._buffer
        if out.shape != (height, width, 4) or out.device != d.device:
            out = self._buffer = torch.empty((height, width, 4), dtype=torch.float32, device=d.device)
        torch.mul(rx, masked, out=out[..., 0])
        torch.mul(ry, masked, out=out[..., 1])
        out[..., 2] = masked
        packed = out.view(torch.uint8)  # (h, w, 16)
        if rgb is None:
            out[..., 3] = 0.0
        else:
            packed[..., 12] = rgb[..., 2]
            packed[..., 13] = rgb[..., 1]
            packed[..., 14] = rgb[..., 0]
            packed[..., 15] = 0
        points = out.view(-1, 4) if organized else out.view(-1, 4)[valid.view(-1)]
        return byte_array(points.cpu().numpy()), points.shape[0]

    def _pack_opencv(self, d, rx, ry, ray_valid, rgb, low, high, organized) -> tuple[array.array, int]:
        """CPU kernel: (h, w) float32 depth array -> (little-endian bytes, number of points), as the torch one.

        x, y, z and the packed colour are computed as four contiguous planes in preallocated buffers (fresh
        multi-megabyte arrays cost page faults that dwarf the arithmetic) and interleaved by one cv2.merge, straight
        into the payload when organised: strided NumPy writes into the interleaved points cost about twice as much.
        """
        x, y, z = self._scratch('planes', d.shape, (3, *d.shape), np.float32)
        d = np.ascontiguousarray(d)
        valid = cv2.inRange(d, low, high)  # (h, w) uint8, 255 where low <= d <= high (NaN fails)
        if ray_valid is not None:
            cv2.bitwise_and(valid, ray_valid, dst=valid)
        z.fill(np.nan)
        cv2.copyTo(d, valid, z)
        cv2.multiply(rx, z, dst=x)
        cv2.multiply(ry, z, dst=y)
        if rgb is None:
            colour = self._scratch('zeros', d.shape, d.shape, np.float32, fill=0.0)
        else:
            bgra = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGRA,
                                dst=self._scratch('bgra', d.shape, (*d.shape, 4), np.uint8))
            packed = bgra.view('<u4')[..., 0]
            np.bitwise_and(packed, 0x00FFFFFF, out=packed)  # b, g, r, 0 bytes
            colour = packed.view(np.float32)
        if organized:  # interleaved straight into the payload
            data = array.array('B', b'\0') * (d.size * POINT_STEP)
            cv2.merge([x, y, z, colour], dst=np.frombuffer(data, np.float32).reshape(*d.shape, 4))
            return data, d.size
        points = cv2.merge([x, y, z, colour], dst=self._scratch('points', d.shape, (*d.shape, 4), np.float32))
        kept = points.reshape(-1).view('V16')[valid.reshape(-1) != 0]  # one 16-byte record per point
        return byte_array(kept), kept.size

    def _scratch(self, name: str, image_shape: tuple, shape: tuple, dtype, fill: float | None = None) -> np.ndarray:
        """Return a buffer kept across frames of one (h, w) `image_shape`; all are dropped when that shape changes."""
        if self._workspace.get('shape') != image_shape:
            self._workspace = {'shape': image_shape}
        buffer = self._workspace.get(name)
        if buffer is None:
            buffer = self._workspace[name] = np.empty(shape, dtype) if fill is None else np.full(shape, fill, dtype)
        return buffer

    @staticmethod
    def _check(depth, rays, rgb, stride, min_depth, max_depth) -> None:
        """Raise ValueError for inconsistent shapes, devices or parameters."""
        if depth.ndim != 2:
            raise ValueError(f'depth must be (H, W), got shape {tuple(depth.shape)}')
        if rays.shape != (*depth.shape, 3):
            raise ValueError(f'rays must be (H, W, 3) = {(*depth.shape, 3)}, got {tuple(rays.shape)}')
        if rays.dtype != torch.float32:
            raise ValueError(f'rays must be float32, got {rays.dtype}')
        if rays.device != depth.device:
            raise ValueError(f'rays are on {rays.device} but depth is on {depth.device}')
        if rgb is not None:
            if rgb.shape != (*depth.shape, 3) or rgb.dtype != torch.uint8:
                raise ValueError(f'rgb must be (H, W, 3) uint8 = {(*depth.shape, 3)}, '
                                 f'got {rgb.dtype} {tuple(rgb.shape)}')
            if rgb.device != depth.device:
                raise ValueError(f'rgb is on {rgb.device} but depth is on {depth.device}')
        if not isinstance(stride, int) or isinstance(stride, bool) or stride < 1:
            raise ValueError(f'stride must be an integer >= 1, got {stride!r}')
        if not (0.0 <= min_depth < max_depth) or math.isnan(max_depth):
            raise ValueError(f'need 0 <= min_depth < max_depth, got min_depth={min_depth}, max_depth={max_depth}')


_SMALLEST_POSITIVE_FLOAT32 = float(np.nextafter(np.float32(0), np.float32(1)))
_LARGEST_FLOAT32 = float(np.finfo(np.float32).max)


def points_from_cloud(data: bytes, height: int, width: int, point_step: int,
                      fields) -> tuple[np.ndarray, np.ndarray | None]:
    """Return ((H, W, 3) float32 xyz, (H, W, 3) uint8 RGB or None) of a little-endian cloud with dense rows.

    ``fields`` are (name, offset, datatype, count) tuples or PointField-like objects.
    """
    offsets = {}
    for field in fields:
        name, offset = (field[0], field[1]) if isinstance(field, tuple) else (field.name, field.offset)
        offsets[str(name)] = int(offset)
    missing = [name for name in ('x', 'y', 'z') if name not in offsets]
    if missing:
        raise ValueError(f'cloud has no field {missing[0]!r}; fields: {sorted(offsets)}')
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size < height * width * point_step:
        raise ValueError(f'cloud data has {buf.size} bytes, expected {height}*{width}*{point_step}')
    strides = (width * point_step, point_step)
    xyz = np.empty((height, width, 3), dtype=np.float32)
    for axis, name in enumerate('xyz'):
        xyz[..., axis] = np.ndarray((height, width), '<f4', buf, offsets[name], strides)
    if 'rgb' not in offsets:
        return xyz, None
    bgr = np.ndarray((height, width, 3), np.uint8, buf, offsets['rgb'], (*strides, 1))
    return xyz, np.ascontiguousarray(bgr[..., ::-1])
