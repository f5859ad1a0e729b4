"""Our arrays, CloudBuffer and Intrinsics -> sensor_msgs / diagnostic_msgs messages (message types only, no rclpy)."""

from __future__ import annotations

import array

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import CameraInfo, Image, LaserScan, PointCloud2, PointField
from std_msgs.msg import Header

from depth_anything_ros.frame import image_codec


# Jazzy and later rosidl messages copy an array('B') assigned to a uint8[] field unless built with check_fields=True
# (ROS_PYTHON_CHECK_FIELDS); Humble's keep it as it is and take no such argument.
_KEEP_ARRAYS = {"check_fields": True} if "_check_fields" in Image.__slots__ else {}


def _byte_array(data) -> array.array:
    """Return `data` as the array('B') rosidl stores: as it is when it is one, else copied once."""
    if isinstance(data, array.array) and data.typecode == "B":
        return data
    out = array.array("B")
    out.frombytes(memoryview(data).cast("B"))
    return out


def image_msg(header, fields: dict) -> Image:
    """Return an Image with `header` and the fields dict of image_codec (height, width, encoding, ..., data)."""
    msg = Image(header=header, height=fields["height"], width=fields["width"], encoding=fields["encoding"],
                is_bigendian=fields["is_bigendian"], step=fields["step"], **_KEEP_ARRAYS)
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
                      point_step=cloud.point_step, row_step=cloud.row_step, is_dense=bool(cloud.is_dense),
                      **_KEEP_ARRAYS)
    msg.fields = [PointField(name=name, offset=offset, datatype=datatype, count=count)
                  for name, offset, datatype, count in cloud.fields]
    msg.data = _byte_array(cloud.data)
    return msg


def scan_msg(header, scan) -> LaserScan:
    """Return the LaserScan of a scan.LaserScanData with the image's stamp, in its frame_id ('' = the image's)."""
    msg = LaserScan(header=Header(stamp=header.stamp, frame_id=scan.frame_id or header.frame_id),
                    angle_min=scan.angle_min, angle_max=scan.angle_max, angle_increment=scan.angle_increment,
                    time_increment=scan.time_increment, scan_time=scan.scan_time, range_min=scan.range_min,
                    range_max=scan.range_max)
    msg.ranges = array.array("f", scan.ranges.tobytes())
    return msg


def camera_info_msg(header, info) -> CameraInfo:
    """Return the CameraInfo of camera.CameraInfo fields (the pipeline's depth camera_info) with `header`."""
    msg = CameraInfo(header=header, height=info.height, width=info.width, distortion_model=info.distortion_model,
                     binning_x=info.binning_x, binning_y=info.binning_y)
    msg.d, msg.k, msg.r, msg.p = list(info.d), list(info.k), list(info.r), list(info.p)
    x0, y0, height, width, rectify = info.roi
    msg.roi.x_offset, msg.roi.y_offset, msg.roi.height, msg.roi.width = x0, y0, height, width
    msg.roi.do_rectify = bool(rectify)
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
