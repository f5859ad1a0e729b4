"""rosbags message construction and CDR (de)serialisation for the bag tools (no rclpy)."""

from __future__ import annotations

import dataclasses
import functools
import struct

import numpy as np
from rosbags.typesys import Stores, get_typestore

from depth_anything_ros.frame.camera import CameraInfo

# Humble, Jazzy and Kilted share the sensor_msgs definitions (and type hashes) used here.
TYPESTORE = get_typestore(Stores.ROS2_KILTED)
TYPESTORE_NAME = "ROS 2 Kilted"  # how messages name TYPESTORE's definitions

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
POINT_CLOUD2 = "sensor_msgs/msg/PointCloud2"
LASER_SCAN = "sensor_msgs/msg/LaserScan"
CLOCK = "rosgraph_msgs/msg/Clock"
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)

_T = TYPESTORE.types


@functools.cache
def definition(msgtype: str) -> tuple[str, str]:
    """(ros2msg definition text, RIHS01 hash) of a type in TYPESTORE: what every bag we write holds for it."""
    return TYPESTORE.generate_msgdef(msgtype, ros_version=2)[0], TYPESTORE.hash_rihs01(msgtype)


def time_msg(ns: int) -> object:
    """builtin_interfaces/Time of a nanosecond timestamp."""
    sec, nanosec = divmod(int(ns), 1_000_000_000)
    return _T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)


def stamp_ns(header: object) -> int:
    """Nanoseconds of a Header's stamp."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def header_stamp(raw: bytes | memoryview) -> int:
    """Nanosecond header stamp of a serialized message that starts with a std_msgs/Header, without deserializing."""
    order = "<" if raw[1] == 1 else ">"  # CDR encapsulation: 0x0001 little-endian, 0x0000 big-endian
    sec, nanosec = struct.unpack_from(f"{order}iI", raw, 4)
    return sec * 1_000_000_000 + nanosec


def header(stamp: int, frame_id: str) -> object:
    """std_msgs/Header with a nanosecond stamp."""
    return _T["std_msgs/msg/Header"](stamp=time_msg(stamp), frame_id=frame_id)


def _bytes_array(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    return np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1).view(np.uint8)


def image(hdr: object, fields: dict) -> object:
    """sensor_msgs/Image from an image_codec field dict (height, width, encoding, is_bigendian, step, data)."""
    return _T[IMAGE](header=hdr, height=int(fields["height"]), width=int(fields["width"]),
                     encoding=str(fields["encoding"]), is_bigendian=int(fields["is_bigendian"]),
                     step=int(fields["step"]), data=_bytes_array(fields["data"]))


def compressed_image(hdr: object, fmt: str, data: bytes) -> object:
    """sensor_msgs/CompressedImage of already encoded bytes (format e.g. 'jpeg')."""
    return _T[COMPRESSED_IMAGE](header=hdr, format=fmt, data=_bytes_array(data))


def camera_info(hdr: object, info: CameraInfo) -> object:
    """sensor_msgs/CameraInfo of camera.CameraInfo fields with a header."""
    x0, y0, height, width, rectify = info.roi
    roi = _T["sensor_msgs/msg/RegionOfInterest"](x_offset=x0, y_offset=y0, height=height, width=width,
                                                 do_rectify=bool(rectify))
    return _T[CAMERA_INFO](header=hdr, height=info.height, width=info.width,
                           distortion_model=info.distortion_model, d=np.asarray(info.d, np.float64),
                           k=np.asarray(info.k, np.float64), r=np.asarray(info.r, np.float64),
                           p=np.asarray(info.p, np.float64), binning_x=info.binning_x, binning_y=info.binning_y,
                           roi=roi)


def with_header(msg: object, hdr: object) -> object:
    """Copy of a message with another header."""
    return dataclasses.replace(msg, header=hdr)


def point_cloud(hdr: object, cloud: object) -> object:
    """sensor_msgs/PointCloud2 of a geometry.CloudBuffer."""
    fields = [_T["sensor_msgs/msg/PointField"](name=name, offset=offset, datatype=datatype, count=count)
              for name, offset, datatype, count in cloud.fields]
    return _T[POINT_CLOUD2](header=hdr, height=cloud.height, width=cloud.width, fields=fields,
                            is_bigendian=False, point_step=cloud.point_step, row_step=cloud.row_step,
                            data=_bytes_array(cloud.data), is_dense=bool(cloud.is_dense))


def laser_scan(hdr: object, scan: object) -> object:
    """sensor_msgs/LaserScan of a scan.LaserScanData with the image's stamp, in its frame_id ('' = the image's)."""
    return _T[LASER_SCAN](header=header(stamp_ns(hdr), scan.frame_id or hdr.frame_id), angle_min=scan.angle_min,
                          angle_max=scan.angle_max, angle_increment=scan.angle_increment,
                          time_increment=scan.time_increment, scan_time=scan.scan_time, range_min=scan.range_min,
                          range_max=scan.range_max, ranges=np.asarray(scan.ranges, np.float32),
                          intensities=np.empty(0, np.float32))


def clock(ns: int) -> object:
    """rosgraph_msgs/Clock at a nanosecond time."""
    return _T[CLOCK](clock=time_msg(ns))


def serialize(msg: object) -> bytes:
    """CDR bytes of a rosbags message."""
    return bytes(TYPESTORE.serialize_cdr(msg, msg.__msgtype__))


def deserialize(raw: bytes | memoryview, msgtype: str) -> object:
    """Deserialize CDR bytes into a rosbags message."""
    return TYPESTORE.deserialize_cdr(raw, msgtype)
