"""depth_anything_node with a DA3 metric checkpoint in a real ROS graph (own process, Fast DDS).

camera_info fx in; depth, points and depth/camera_info out, sky invalid; no camera_info: nothing until the FOV
fallback is set.
"""

import time

import numpy as np
import pytest
from graph_harness import (
    CameraIO,
    GraphClient,
    NodeProcess,
    cloud_arrays,
    depth_array,
    image_msg,
    node_command,
    random_image,
    set_params,
    wait_until,
)
from test_node_graph import K, backproject, frame_maker, same_header

pytestmark = pytest.mark.ros

INPUT_SIZE = 70
NS = "/da3"
NODE = f"{NS}/depth_anything"
W, H = 64, 48


@pytest.fixture(scope="module")
def client(ros_env):
    graph = GraphClient("da3_graph_test")
    yield graph
    graph.close()


@pytest.fixture(scope="module")
def node(ros_env, synthetic_da3_checkpoint, tmp_path_factory):
    process = NodeProcess(node_command(NS, synthetic_da3_checkpoint, f"model.input_size:={INPUT_SIZE}", "device:=cpu",
                                       "cameras:=[cam,noinfo]"), ros_env, tmp_path_factory.mktemp("da3") / "node.log")
    assert process.wait_for_log("loaded in"), process.log()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def reference(synthetic_da3_checkpoint):
    from depth_anything_ros.models.da3.estimator import DA3Estimator

    return DA3Estimator(synthetic_da3_checkpoint, device="cpu", precision="fp32", input_size=INPUT_SIZE)


def test_depth_uses_the_camera_info_focal_length_and_sky_is_invalid(node, client, reference):
    cam = CameraIO(client, f"{NS}/cam")
    pixels = random_image(H, W, seed=1)
    image, info, out = cam.roundtrip(frame_maker(pixels, "cam_optical_frame"), ("depth", "info", "points"))
    for msg in out.values():
        assert same_header(msg.header, image.header)
    depth = depth_array(out["depth"])
    expected = reference.estimate(pixels, "rgb8", (K[0], K[4]))
    np.testing.assert_allclose(depth, expected, rtol=1e-5, atol=1e-5)  # NaN exactly where the estimator's are
    assert 0 < np.isnan(depth).mean() < 0.9
    np.testing.assert_array_equal(out["info"].k, info.k)
    xyz, _ = cloud_arrays(out["points"])
    assert (out["points"].height, out["points"].width) == (H, W)
    np.testing.assert_array_equal(np.isnan(xyz).all(-1), np.isnan(depth))
    np.testing.assert_allclose(xyz, backproject(depth, K[0], K[4], K[2], K[5]), rtol=1e-6, atol=1e-6)


def test_without_camera_info_nothing_is_published_until_the_fov_fallback(node, client, reference):
    cam = CameraIO(client, f"{NS}/noinfo")
    pixels = random_image(H, W, seed=2)

    def make(stamp):
        return image_msg(stamp, "noinfo_frame", pixels), None

    warning = "no camera_info on /da3/noinfo/camera_info after 3 s: publishing nothing"
    start = time.monotonic()
    while time.monotonic() - start < 6.0:
        cam.image_pub.publish(make(client.now())[0])
        time.sleep(0.3)
    assert wait_until(lambda: warning in node.log()), node.log()
    assert not cam.depth.messages and "the model's metric depth needs the focal length" in node.log()
    try:
        assert all(r.successful for r in set_params(client, NODE, camera__fallback_fov_deg=90.0))
        _, _, out = cam.roundtrip(make, ("depth", "info", "points"))
        f = (W / 2) / np.tan(np.radians(45.0))
        np.testing.assert_allclose(out["info"].k, [f, 0, (W - 1) / 2, 0, f, (H - 1) / 2, 0, 0, 1])
        np.testing.assert_allclose(depth_array(out["depth"]), reference.estimate(pixels, "rgb8", (f, f)),
                                   rtol=1e-5, atol=1e-5)
    finally:
        set_params(client, NODE, camera__fallback_fov_deg=0.0)
