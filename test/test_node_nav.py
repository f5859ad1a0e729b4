"""The node's navigation outputs over a real graph: scan and depth/confidence topics, their run-time parameters."""

import math

import numpy as np
import pytest
from bag_helpers import by_topic, read_bag
from graph_harness import CameraIO, GraphClient, camera_info_msg, depth_array, image_msg, random_image, serving_node
from graph_harness import set_params as set_node_params
from sensor_msgs.msg import Image, LaserScan
from test_front_ends import P_OF_K, frame_pixels, model_args, write_frame_bag
from test_scan import expected_scan

from depth_anything_ros.cli import main

pytestmark = pytest.mark.ros

NS = "/nav"
NODE = f"{NS}/depth_anything"
W, H = 64, 48
K = [52.0, 0.0, 31.5, 0.0, 50.0, 23.5, 0.0, 0.0, 1.0]


@pytest.fixture(scope="module")
def client(ros_env):
    graph = GraphClient("depth_anything_nav_test")
    yield graph
    graph.close()


@pytest.fixture(scope="module")
def node(ros_env, synthetic_vits_checkpoint, tmp_path_factory):
    yield from serving_node(ros_env, NS, synthetic_vits_checkpoint, ["front"],
                            tmp_path_factory.mktemp("node") / "node.log")


def camera(client) -> CameraIO:
    cam = CameraIO(client, f"{NS}/front")
    cam.scan = client.collect(LaserScan, f"{NS}/front/scan")
    cam.confidence = client.collect(Image, f"{NS}/front/depth/confidence")
    return cam


def frames(pixels):
    def make(stamp):
        image = image_msg(stamp, "front_optical_frame", pixels)
        return image, camera_info_msg(image.header, W, H, K)
    return make


def test_scan_and_confidence_topics(node, client):
    cam = camera(client)
    try:
        assert all(r.successful for r in set_node_params(client, NODE, scan__enabled=True, confidence__enabled=True,
                                                         scan__range_min=0.0, scan__range_max=100.0,
                                                         scan__height=3))
        image, _, out = cam.roundtrip(frames(random_image(H, W, seed=7)), ("depth", "scan", "confidence"))
        scan, confidence = out["scan"], out["confidence"]
        stamp = image.header.stamp
        assert (scan.header.stamp.sec, scan.header.stamp.nanosec) == (stamp.sec, stamp.nanosec)
        assert scan.header.frame_id == "camera_depth_frame"
        fx, cx, cy = K[0], K[2], K[5]  # P = [K | 0]
        angle_max, angle_min = math.atan(cx / fx), -math.atan((W - 1 - cx) / fx)
        assert scan.angle_max == pytest.approx(angle_max, rel=1e-6)
        assert scan.angle_min == pytest.approx(angle_min, rel=1e-6)
        assert (scan.range_min, scan.range_max, len(scan.ranges)) == (0.0, 100.0, W)
        x = np.broadcast_to(np.float32((np.arange(W) - cx) / fx), (H, W))
        first = int(cy - 3 / 2)
        expected = expected_scan(depth_array(out["depth"]), x, range(first, first + 3), angle_min, angle_max,
                                 0.0, 100.0)
        np.testing.assert_allclose(np.array(scan.ranges), expected, rtol=1e-6)
        assert confidence.header.frame_id == "front_optical_frame"
        values = depth_array(confidence)
        assert values.shape == (H, W) and (values >= 0).all() and (values <= 1).all()
    finally:
        set_node_params(client, NODE, scan__enabled=False, confidence__enabled=False, scan__range_min=0.45,
                        scan__range_max=10.0, scan__height=1)


def test_voxel_grid_needs_an_unorganised_cloud_and_bad_scan_ranges_are_refused(node, client):
    cam = camera(client)
    try:
        results = set_node_params(client, NODE, cloud__voxel_size=0.05)
        assert not results[0].successful and "needs an unorganised cloud" in results[0].reason
        results = set_node_params(client, NODE, scan__range_min=5.0, scan__range_max=2.0)  # set one by one
        assert results[0].successful and not results[1].successful
        assert "range_min < range_max" in results[1].reason
        assert all(r.successful for r in set_node_params(client, NODE, cloud__organized=False, cloud__voxel_size=0.5,
                                                         cloud__edge_filter=True))
        _, _, out = cam.roundtrip(frames(random_image(H, W, seed=8)), ("depth", "points"),
                                  predicate=lambda o: o["points"].height == 1)
        valid = np.isfinite(depth_array(out["depth"])).sum()
        assert out["points"].is_dense and 0 < out["points"].width < valid  # one point per 0.5 m voxel
    finally:
        set_node_params(client, NODE, cloud__voxel_size=0.0, cloud__organized=True, cloud__edge_filter=False,
                        scan__range_min=0.45)


def test_node_and_bag_process_give_the_same_navigation_bytes(node, client, synthetic_vits_checkpoint, tmp_path):
    cam = camera(client)
    pixels = frame_pixels()
    settings = dict(scan__enabled=True, confidence__enabled=True, cloud__edge_filter=True, cloud__organized=False,
                    cloud__voxel_size=0.5, scan__height=3, scan__range_min=0.0, scan__range_max=100.0)
    try:
        assert all(r.successful for r in set_node_params(client, NODE, **settings))
        _, _, out = cam.roundtrip(frames(pixels), ("depth", "scan", "confidence", "points"),
                                  predicate=lambda o: o["points"].height == 1)
    finally:
        set_node_params(client, NODE, scan__enabled=False, confidence__enabled=False, cloud__edge_filter=False,
                        cloud__voxel_size=0.0, cloud__organized=True, scan__height=1, scan__range_min=0.45,
                        scan__range_max=10.0)
    write_frame_bag(tmp_path / "in", pixels, P_OF_K)
    assert main(["bag", "process", str(tmp_path / "in"), str(tmp_path / "out"), *model_args(synthetic_vits_checkpoint),
                 "--topics", "depth,scan,confidence,points", "--edge-filter", "--unorganized", "--voxel-size", "0.5",
                 "--scan-height", "3", "--scan-range-min", "0", "--scan-range-max", "100", "--no-progress"]) == 0
    bag = {topic: records[0].msg for topic, records in by_topic(read_bag(tmp_path / "out")).items()}
    assert bag["/cam/depth"].data.tobytes() == bytes(out["depth"].data)
    scan = bag["/cam/scan"]
    assert np.array(scan.ranges, np.float32).tobytes() == np.array(out["scan"].ranges, np.float32).tobytes()
    assert (scan.angle_min, scan.angle_max, scan.header.frame_id) == (
        out["scan"].angle_min, out["scan"].angle_max, out["scan"].header.frame_id)
    assert bag["/cam/depth/confidence"].data.tobytes() == bytes(out["confidence"].data)
    assert bag["/cam/points"].data.tobytes() == bytes(out["points"].data)
