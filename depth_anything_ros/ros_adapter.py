"""Our arrays, CloudBuffer and Intrinsics -> sensor_msgs / diagnostic_msgs messages (message types only, no rclpy)."""

from __future__ import annotations

import array

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField

from depth_anything_ros import image_codec


def _byte_array(data) -> array.array:
    """Return `data` (bytes or any C-contiguous buffer) as the array('B') rosidl stores, copying once."""
    out = array.array("B")
    out.frombytes(memoryview(data).cast("B"))
    return out


def image_msg(header, fields: dict) -> Image:
    """Return an Image with `header` and the fields dict of image_codec (height, width, encoding, ..., data)."""
    msg = Image(header=header, height=fields["height"], width=fields["width"], encoding=fields["encoding"],
                is_bigendian=fields["is_bigendian"], step=fields["step"])
    msg.data = _byte_array(fields["data"])
    return msg


def depth_msg(header, depth: np.ndarray) -> Image:
    """Return a 32FC1 depth Image (metres) from a (H, W) float32 array."""
    return image_msg(header, image_codec.depth_image_fields(depth))


def rgb_msg(header, rgb: np.ndarray) -> Image:
    """Return an rgb8 Image from a (H, W, 3) uint8 array."""
    return image_msg(header, image_codec.rgb_image_fields(rgb))


def cloud_msg(header, cloud) -> PointCloud2:
    """Return a PointCloud2 from a geometry.CloudBuffer (little-endian, fields as (name, offset, datatype, count))."""
    msg = PointCloud2(header=header, height=cloud.height, width=cloud.width, is_bigendian=False,
                      point_step=cloud.point_step, row_step=cloud.row_step, is_dense=bool(cloud.is_dense))
    msg.fields = [PointField(name=name, offset=offset, datatype=datatype, count=count)
                  for name, offset, datatype, count in cloud.fields]
    msg.data = _byte_array(cloud.data)
    return msg


def camera_info_msg(header, intr, source=None) -> CameraInfo:
    """Return the CameraInfo of an image described by `intr` (camera.Intrinsics), with `header`.

    `source` (the camera's CameraInfo) is copied as it is when its size equals `intr`'s; for a resized image K and P
    take `intr`'s (scaled) values, P keeps the source's Tx, Ty scaled and binning/ROI are cleared.
    Without `source` (field-of-view fallback) it describes an ideal pinhole camera.
    """
    msg = CameraInfo(header=header, height=intr.height, width=intr.width)
    if source is not None and (source.width, source.height) == (intr.width, intr.height):
        msg.distortion_model = source.distortion_model
        msg.d = list(source.d)
        msg.k, msg.r, msg.p = list(source.k), list(source.r), list(source.p)
        msg.binning_x, msg.binning_y, msg.roi = source.binning_x, source.binning_y, source.roi
        return msg
    fx, fy, cx, cy = intr.fx, intr.fy, intr.cx, intr.cy
    msg.distortion_model = intr.distortion_model or "plumb_bob"
    msg.d = [float(v) for v in intr.d]
    msg.k = [float(v) for v in intr.camera_matrix().reshape(-1)]
    tx = ty = 0.0
    if source is not None:
        msg.r = list(source.r)
        sx = intr.width / source.width if source.width else 1.0
        sy = intr.height / source.height if source.height else 1.0
        tx, ty = float(source.p[3]) * sx, float(source.p[7]) * sy
    else:
        msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [fx, 0.0, cx, tx, 0.0, fy, cy, ty, 0.0, 0.0, 1.0, 0.0]
    return msg


LEVELS = {"OK": DiagnosticStatus.OK, "WARN": DiagnosticStatus.WARN, "ERROR": DiagnosticStatus.ERROR,
          "STALE": DiagnosticStatus.STALE}


def diagnostic_status(name: str, hardware_id: str, level: str, message: str, values: dict) -> DiagnosticStatus:
    """Return a DiagnosticStatus; `level` is OK/WARN/ERROR/STALE and `values` become string key/values."""
    return DiagnosticStatus(level=LEVELS[level], name=name, hardware_id=hardware_id, message=message,
                            values=[KeyValue(key=str(k), value=str(v)) for k, v in values.items()])


def diagnostic_array(stamp, statuses: list) -> DiagnosticArray:
    """Return a DiagnosticArray stamped `stamp` (builtin_interfaces/Time) holding `statuses`."""
    msg = DiagnosticArray(status=statuses)
    msg.header.stamp = stamp
    return msg
