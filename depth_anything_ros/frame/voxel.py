"""Voxel-grid downsampling of unorganised clouds: one point per occupied voxel (no ROS).

Voxels are the cubes [i s, (i + 1) s) x [j s, (j + 1) s) x [k s, (k + 1) s) of side s in the cloud's frame (the
optical frame), as PCL's VoxelGrid. Each occupied voxel gives the centroid of its points and, with colour, the
average of their colours (each of r, g, b rounded to the nearest integer). Points come out in the order of their
voxel index (i, then j, then k): the same cloud gives the same bytes.
"""

from __future__ import annotations

import numpy as np

from depth_anything_ros.frame.byte_buffers import byte_array
from depth_anything_ros.frame.geometry import POINT_STEP, CloudBuffer

_MAX_CELLS = 2 ** 62  # voxel indices are packed into one int64


def voxel_downsample(cloud: CloudBuffer, size: float) -> CloudBuffer:
    """Return the unorganised cloud of one point per occupied voxel of side `size` metres (16-byte points)."""
    if cloud.height != 1 or cloud.point_step != POINT_STEP:
        raise ValueError(f"voxel downsampling needs an unorganised cloud of {POINT_STEP}-byte points, got "
                         f"{cloud.height}x{cloud.width} of {cloud.point_step} bytes")
    if not size > 0:
        raise ValueError(f"voxel size must be > 0 metres, got {size}")
    points = np.frombuffer(cloud.data, dtype="<f4").reshape(-1, 4)  # x, y, z, packed b, g, r, 0
    if not len(points):
        return cloud
    xyz = np.ascontiguousarray(points[:, :3].T)  # (3, N): axis-wise reductions are fast on rows
    cells = np.floor(xyz / np.float32(size))
    low = cells.min(axis=1, keepdims=True)
    spans = (cells.max(axis=1) - low[:, 0] + 1).astype(np.int64)
    if float(spans[0]) * float(spans[1]) * float(spans[2]) > _MAX_CELLS:
        raise ValueError(f"voxel size {size} m is too small for the cloud's extent ({spans.tolist()} voxels)")
    cells = (cells - low).astype(np.int64)
    index = (cells[0] * spans[1] + cells[1]) * spans[2] + cells[2]
    _, inverse, counts = np.unique(index, return_inverse=True, return_counts=True)
    out = np.empty((len(counts), 4), dtype=np.float32)
    for axis in range(3):
        out[:, axis] = np.bincount(inverse, weights=xyz[axis], minlength=len(counts)) / counts
    colour = out.view(np.uint8)[:, 12:16]  # (M, 4) bytes b, g, r, 0 (or padding without colour)
    channels = points.view(np.uint8)[:, 12:15]
    colour[:, 3] = 0
    for byte in range(3):
        mean = np.bincount(inverse, weights=channels[:, byte], minlength=len(counts)) / counts
        colour[:, byte] = np.rint(mean).astype(np.uint8)
    return CloudBuffer(1, len(out), POINT_STEP, POINT_STEP * len(out), cloud.fields, byte_array(out), True)
