"""ros/messages and ros/params: messages built from our arrays, and the parameter table's validation."""

import numpy as np
import pytest
import torch
from sensor_msgs.msg import CameraInfo, PointField
from std_msgs.msg import Header

from depth_anything_ros.frame.camera import CameraInfo as CameraInfoFields
from depth_anything_ros.frame.camera import Intrinsics, image_camera
from depth_anything_ros.frame.geometry import PointCloudBuilder
from depth_anything_ros.frame.rays import ray_grid
from depth_anything_ros.ros import messages as ros_messages
from depth_anything_ros.ros import params as node_params


def header():
    h = Header(frame_id="cam_optical_frame")
    h.stamp.sec, h.stamp.nanosec = 12, 345
    return h


def test_depth_and_rgb_messages_carry_the_header_and_the_bytes():
    depth = np.arange(12, dtype=np.float32).reshape(3, 4)
    msg = ros_messages.depth_msg(header(), depth)
    assert (msg.header.frame_id, msg.header.stamp.nanosec) == ("cam_optical_frame", 345)
    assert (msg.height, msg.width, msg.encoding, msg.step, msg.is_bigendian) == (3, 4, "32FC1", 16, 0)
    np.testing.assert_array_equal(np.frombuffer(bytes(msg.data), "<f4").reshape(3, 4), depth)
    rgb = np.arange(36, dtype=np.uint8).reshape(3, 4, 3)
    msg = ros_messages.rgb_msg(header(), rgb)
    assert (msg.encoding, msg.step) == ("rgb8", 12)
    assert bytes(msg.data) == rgb.tobytes()


def test_cloud_message_matches_the_buffer():
    intr = Intrinsics(fx=10.0, fy=10.0, cx=1.5, cy=1.0, width=4, height=3)
    rays = torch.from_numpy(ray_grid(intr, undistort=False))
    cloud = PointCloudBuilder().build(torch.full((3, 4), 2.0), rays, torch.zeros(3, 4, 3, dtype=torch.uint8))
    msg = ros_messages.cloud_msg(header(), cloud)
    assert (msg.height, msg.width, msg.point_step, msg.row_step, msg.is_dense) == (3, 4, 16, 64, False)
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ("x", 0, PointField.FLOAT32, 1), ("y", 4, PointField.FLOAT32, 1), ("z", 8, PointField.FLOAT32, 1),
        ("rgb", 12, PointField.FLOAT32, 1)]
    assert bytes(msg.data) == bytes(cloud.data) and msg.header.stamp.sec == 12
    assert msg.data is cloud.data  # the builder's array('B') is published as it is, not copied again


def source_info():
    info = CameraInfo(width=640, height=480, distortion_model="plumb_bob")
    info.k = [500.0, 0, 320, 0, 500, 240, 0, 0, 1]
    info.p = [480.0, 0, 318, -48.0, 0, 480, 238, 0, 0, 0, 1, 0]
    info.d = [0.1, -0.05, 0, 0, 0]
    info.r = [1.0, 0, 0, 0, 1, 0, 0, 0, 1]
    return info


def depth_info_msg(info, width, height):
    return ros_messages.camera_info_msg(header(), image_camera(info, width, height)[1])


def test_camera_info_is_copied_for_the_same_size():
    info = source_info()
    info.binning_x, info.roi.do_rectify = 1, True
    msg = depth_info_msg(info, 640, 480)
    np.testing.assert_array_equal(msg.k, info.k)
    np.testing.assert_array_equal(msg.p, info.p)
    np.testing.assert_array_equal(msg.r, info.r)
    assert list(msg.d) == list(info.d) and msg.header.frame_id == "cam_optical_frame"
    assert msg.binning_x == 1 and msg.roi.do_rectify


def test_zero_p_is_published_as_k_with_zero_translation():
    info = source_info()
    info.p = [0.0] * 12
    msg = depth_info_msg(info, 640, 480)
    np.testing.assert_array_equal(msg.p, [500.0, 0, 320, 0, 0, 500, 240, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(msg.k, info.k)


def test_camera_info_is_scaled_for_a_uniform_resize():
    info = source_info()
    msg = depth_info_msg(info, 320, 240)
    assert (msg.width, msg.height) == (320, 240)
    np.testing.assert_allclose(msg.k, [250, 0, 160, 0, 250, 120, 0, 0, 1])
    np.testing.assert_allclose(msg.p, [240, 0, 159, -24, 0, 240, 119, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(msg.r, info.r)
    assert list(msg.d) == list(info.d) and msg.binning_x == 0 and msg.roi.width == 0


def test_camera_info_of_the_fov_fallback_is_an_ideal_pinhole():
    msg = depth_info_msg(CameraInfoFields.from_fov(64, 48, 90.0), 64, 48)
    np.testing.assert_allclose(msg.k, [32, 0, 31.5, 0, 32, 23.5, 0, 0, 1])
    np.testing.assert_allclose(msg.p, [32, 0, 31.5, 0, 0, 32, 23.5, 0, 0, 0, 1, 0])
    np.testing.assert_allclose(msg.r, np.eye(3).reshape(-1))
    assert msg.distortion_model == "plumb_bob" and list(msg.d) == [0.0] * 5


def test_diagnostic_array():
    status = ros_messages.diagnostic_status("n: model", "n", "WARN", "late", {"latency ms": 12.5})
    array = ros_messages.diagnostic_array(header().stamp, [status])
    assert array.status[0].level == status.WARN and array.status[0].values[0].value == "12.5"


def test_parameter_table_descriptors():
    stride = node_params.SPECS["cloud.stride"].descriptor()
    assert (stride.integer_range[0].from_value, stride.integer_range[0].to_value) == (1, 64)
    assert "run time" in stride.description
    scale = node_params.SPECS["depth.scale"].descriptor()
    assert scale.floating_point_range[0].from_value == pytest.approx(0.001)
    assert "reconfigure" in node_params.SPECS["model.checkpoint"].descriptor().description


@pytest.mark.parametrize("values, problem", [
    ({"image_transport": "theora"}, "image_transport"),
    ({"device": "gpu"}, "device"),
    ({"colored.colormap": "rainbow-ish"}, "colormap"),
    ({"cameras": ["a", "a/"]}, "unique"),
    ({"cameras": ["bad name"]}, "namespaces"),
    ({"cloud.min_depth": 3.0, "cloud.max_depth": 2.0}, "smaller"),
    ({"model.compile": "yes"}, "model.compile"),
])
def test_validation_names_the_problem(values, problem):
    assert problem in node_params.validate(values, colormaps=("turbo", "jet"))


def test_defaults_are_valid_and_camera_topics_are_relative():
    assert node_params.validate({s.name: s.default for s in node_params.PARAMS}, ("turbo",)) is None
    assert node_params.validate({"cloud.min_depth": 3.0, "cloud.max_depth": 0.0}) is None  # 0 = no limit
    assert node_params.camera_topic("", "depth") == "depth"
    assert node_params.camera_topic(node_params.camera_namespace(" left/ "), "depth") == "left/depth"


@pytest.mark.parametrize("value, mode", [("auto", "auto"), ("true", True), ("false", False), (True, True),
                                         (False, False)])
def test_model_compile_takes_auto_strings_and_yaml_bools(value, mode):
    assert node_params.SPECS["model.compile"].descriptor().dynamic_typing
    assert node_params.validate({"model.compile": value}) is None
    assert node_params.compile_mode(value) == mode


def test_scan_message_keeps_the_stamp_in_the_scan_frame_and_rep117_values():
    from depth_anything_ros.frame.scan import LaserScanData

    ranges = np.array([1.5, np.inf, -np.inf, np.nan], np.float32)
    scan = LaserScanData("camera_depth_frame", -0.5, 0.4, 0.3, 0.0, 0.033, 0.45, 10.0, ranges)
    msg = ros_messages.scan_msg(header(), scan)
    assert (msg.header.frame_id, msg.header.stamp.sec, msg.header.stamp.nanosec) == ("camera_depth_frame", 12, 345)
    assert (msg.angle_min, msg.angle_max, msg.range_min, msg.range_max) == (
        pytest.approx(-0.5), pytest.approx(0.4), pytest.approx(0.45), 10.0)
    np.testing.assert_array_equal(np.array(msg.ranges, np.float32), ranges)
    assert ros_messages.scan_msg(header(), LaserScanData("", *[0.0] * 7, ranges)).header.frame_id == \
        "cam_optical_frame"  # '' = the image's frame_id


def test_parameter_defaults_are_the_pipelines_defaults():
    from depth_anything_ros.frame.frame_io import FrameOptions

    assert node_params.frame_options({s.name: s.default for s in node_params.PARAMS}) == FrameOptions()
