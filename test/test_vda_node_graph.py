"""depth_anything_node with a Video Depth Anything metric checkpoint in a real ROS graph (own process, Fast DDS).

Depth and points come out of the temporal model; an image size change mid-stream and model.reset_temporal start
the camera's stream over (the next frame's depth is a first frame's again) without a crash.
"""

import numpy as np
import pytest
from graph_harness import (
    CameraIO,
    GraphClient,
    NodeProcess,
    depth_array,
    node_command,
    random_image,
    set_params,
    wait_until,
)
from test_node_graph import frame_maker, same_header

pytestmark = pytest.mark.ros

INPUT_SIZE = 42
NS = "/vda"
NODE = f"{NS}/depth_anything"
W, H = 48, 36


@pytest.fixture(scope="module")
def client(ros_env):
    graph = GraphClient("vda_graph_test")
    yield graph
    graph.close()


@pytest.fixture(scope="module")
def node(ros_env, synthetic_vda_checkpoint, tmp_path_factory):
    process = NodeProcess(node_command(NS, synthetic_vda_checkpoint, f"model.input_size:={INPUT_SIZE}", "device:=cpu",
                                       "cameras:=[cam]"), ros_env, tmp_path_factory.mktemp("vda") / "node.log")
    assert process.wait_for_log("loaded in"), process.log()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def reference(synthetic_vda_checkpoint):
    from depth_anything_ros.models.vda.estimator import VDAEstimator

    return VDAEstimator(synthetic_vda_checkpoint, device="cpu", precision="fp32", input_size=INPUT_SIZE)


def _first_frame_published(cam: CameraIO, expected: np.ndarray) -> bool:
    """Whether one of the depth images of expected's size equals a stream's first frame (no past frames)."""
    shaped = [depth_array(m) for m in cam.depth.snapshot() if (m.height, m.width) == expected.shape]
    return any(np.allclose(d, expected, rtol=1e-5, atol=1e-5) for d in shaped)


def test_depth_streams_and_starts_over_on_a_size_change_and_on_request(node, client, reference):
    cam = CameraIO(client, f"{NS}/cam")
    pixels = random_image(H, W, seed=1)
    image, _, out = cam.roundtrip(frame_maker(pixels, "cam_optical_frame"), ("depth", "points"))
    assert same_header(out["depth"].header, image.header)
    depth = depth_array(out["depth"])
    assert depth.shape == (H, W) and np.isfinite(depth).all() and depth.max() > 0
    assert _first_frame_published(cam, reference.estimate(pixels, "rgb8"))
    # more frames of the same picture: the stream goes on, its depth moves away from the first frame's
    cam.roundtrip(frame_maker(pixels, "cam_optical_frame"), ("depth",),
                  predicate=lambda found: not np.allclose(depth_array(found["depth"]), depth, atol=1e-4))
    # a larger image mid-stream: warning, stream restarted, depth of the new size, the node keeps running
    big = random_image(48, 64, seed=2)
    cam.roundtrip(frame_maker(big, "cam_optical_frame"), ("depth",),
                  predicate=lambda found: found["depth"].width == 64)
    assert wait_until(lambda: "image size changed from 48x36 to 64x48: temporal state reset" in node.log()), \
        node.log()
    assert _first_frame_published(cam, reference.estimate(big, "rgb8"))
    # on request: model.reset_temporal
    cam.depth.messages.clear()  # only the depth published after the request counts below
    assert all(r.successful for r in set_params(client, NODE, model__reset_temporal=True))
    assert wait_until(lambda: "temporal state of every camera reset" in node.log()), node.log()
    cam.roundtrip(frame_maker(big, "cam_optical_frame"), ("depth",))
    assert _first_frame_published(cam, reference.estimate(big, "rgb8"))
    assert node.proc.poll() is None
