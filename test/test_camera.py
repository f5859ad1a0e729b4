"""Intrinsics from CameraInfo (rclpy and rosbags flavours), field of view and resize scaling."""

import math

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from depth_anything_ros.frame.camera import Intrinsics

sensor_msgs = pytest.importorskip('sensor_msgs.msg')
TYPESTORE = get_typestore(Stores.ROS2_KILTED)
FLAVOURS = ('rclpy', 'rosbags')

K = (525.0, 0.0, 319.5, 0.0, 520.0, 239.5, 0.0, 0.0, 1.0)
P = (500.0, 0.0, 322.0, 0.0, 0.0, 505.0, 241.0, 0.0, 0.0, 0.0, 1.0, 0.0)
D = (-0.28, 0.07, 0.0002, -0.0001, 0.0)


def make_info(flavour, k=K, p=P, d=D, model='plumb_bob', width=640, height=480):
    if flavour == 'rclpy':
        return sensor_msgs.CameraInfo(width=width, height=height, distortion_model=model, d=list(d), k=list(k),
                                      p=list(p))
    types = TYPESTORE.types
    header = types['std_msgs/msg/Header'](stamp=types['builtin_interfaces/msg/Time'](sec=0, nanosec=0),
                                          frame_id='cam')
    roi = types['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return types['sensor_msgs/msg/CameraInfo'](
        header=header, height=height, width=width, distortion_model=model, d=np.array(d, dtype=np.float64),
        k=np.array(k, dtype=np.float64), r=np.eye(3).reshape(-1), p=np.array(p, dtype=np.float64),
        binning_x=0, binning_y=0, roi=roi)


@pytest.mark.parametrize('flavour', FLAVOURS)
def test_projection_from_p_keeps_k_and_d(flavour):
    intr = Intrinsics.from_camera_info(make_info(flavour))
    assert (intr.fx, intr.fy, intr.cx, intr.cy) == (500.0, 505.0, 322.0, 241.0)
    assert (intr.width, intr.height, intr.distortion_model) == (640, 480, 'plumb_bob')
    assert intr.d == D and intr.k == K and intr.has_distortion
    np.testing.assert_array_equal(intr.camera_matrix(), np.array(K).reshape(3, 3))


@pytest.mark.parametrize('flavour', FLAVOURS)
def test_k_when_p_is_empty(flavour):
    intr = Intrinsics.from_camera_info(make_info(flavour, p=(0.0,) * 12, d=(0.0,) * 5))
    assert (intr.fx, intr.fy, intr.cx, intr.cy) == (525.0, 520.0, 319.5, 239.5)
    assert not intr.has_distortion


@pytest.mark.parametrize('flavour', FLAVOURS)
def test_uncalibrated_camera_info_is_rejected(flavour):
    with pytest.raises(ValueError, match='neither a projection matrix P nor a camera matrix K'):
        Intrinsics.from_camera_info(make_info(flavour, k=(0.0,) * 9, p=(0.0,) * 12))


def test_equal_camera_infos_give_equal_hashable_keys():
    a = Intrinsics.from_camera_info(make_info('rclpy'))
    b = Intrinsics.from_camera_info(make_info('rosbags'))
    assert a == b and hash(a) == hash(b)
    assert len({a, b, a.scaled_to(320, 240)}) == 2
    assert all(type(v) is float for v in a.d + a.k + (a.fx, a.fy, a.cx, a.cy))


def test_from_fov():
    intr = Intrinsics.from_fov(640, 480, 90.0)
    assert intr.fx == pytest.approx(320.0) and intr.fy == intr.fx
    assert (intr.cx, intr.cy) == (319.5, 239.5)
    # the outer pixel edges (u = -0.5 and W - 0.5) sit at +-fov/2
    assert math.degrees(2 * math.atan((intr.width / 2) / intr.fx)) == pytest.approx(90.0)
    for bad in (0.0, 180.0, -10.0):
        with pytest.raises(ValueError, match='field of view'):
            Intrinsics.from_fov(640, 480, bad)


def test_scaled_to_uniform_resize():
    intr = Intrinsics.from_camera_info(make_info('rclpy'))
    half = intr.scaled_to(320, 240)
    assert (half.fx, half.fy, half.cx, half.cy) == (250.0, 252.5, 161.0, 120.5)
    assert half.k == (262.5, 0.0, 159.75, 0.0, 260.0, 119.75, 0.0, 0.0, 1.0)
    assert half.d == intr.d and (half.width, half.height) == (320, 240)
    assert intr.scaled_to(640, 480) is intr
    # 1 pixel of rounding is accepted: 640x480 -> 518x389 (389 = round(388.5))
    odd = intr.scaled_to(518, 389)
    assert odd.fx == pytest.approx(500.0 * 518 / 640) and odd.fy == pytest.approx(505.0 * 389 / 480)


def test_scaled_to_rejects_non_uniform_resize():
    intr = Intrinsics.from_camera_info(make_info('rclpy'))
    with pytest.raises(ValueError, match='640x360.*640x480'):
        intr.scaled_to(640, 360)


def test_invalid_values_rejected():
    with pytest.raises(ValueError, match='focal lengths'):
        Intrinsics(fx=0.0, fy=1.0, cx=0.0, cy=0.0, width=2, height=2)
    with pytest.raises(ValueError, match='image size'):
        Intrinsics(fx=1.0, fy=1.0, cx=0.0, cy=0.0, width=0, height=2)
