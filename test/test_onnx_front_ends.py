"""The exported-file backends in the three front-ends: the node (real graph, Fast DDS), `bag process` and `estimate`.

One exported file, one frame, one backend (onnxruntime, openvino): the depth is the same bytes from each front-end
(only the network call is the runtime's; the frame pipeline is the torch path's). A copy of the export with one
initializer changed fails the node's startup self-check: activation is refused with an ERROR in the log and in
/diagnostics naming the difference.
"""

import numpy as np
import pytest
from bag_helpers import by_topic, read_bag
from diagnostic_msgs.msg import DiagnosticArray
from graph_harness import (
    CameraIO,
    GraphClient,
    NodeProcess,
    camera_info_msg,
    image_msg,
    node_command,
    status_values,
    wait_until,
)
from lifecycle_msgs.srv import GetState
from onnx_helpers import IMAGE_SIZE, damaged_copy, export_small
from test_front_ends import D0, K, P, frame_pixels, write_frame_bag, write_png

from depth_anything_ros.cli import main
from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint

W, H = IMAGE_SIZE
NS = "/onnx_front_ends"
pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("onnx")
    checkpoint = write_synthetic_checkpoint(tmp / "weights.pth", "vits", seed=0)
    return export_small(checkpoint, tmp / "vits.onnx")


@pytest.fixture(scope="module")
def client(ros_env):
    graph = GraphClient("onnx_front_ends_test")
    yield graph
    graph.close()


def start_node(ros_env, namespace: str, onnx_path, log_path, backend: str = "onnxruntime") -> NodeProcess:
    return NodeProcess(node_command(namespace, onnx_path, f"model.backend:={backend}", "device:=cpu"), ros_env,
                       log_path)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_the_same_frame_gives_the_same_depth_bytes_from_node_bag_and_estimate(ros_env, client, exported, tmp_path,
                                                                               backend):
    cli_backend = ["--backend", backend, "--device", "cpu"]
    pixels = frame_pixels()
    node = start_node(ros_env, f"{NS}/good_{backend}", exported, tmp_path / "node.log", backend)
    try:
        assert node.wait_for_log("loaded in", timeout=180), node.log()
        assert "self-check against PyTorch fp32: max |diff|" in node.log()
        cam = CameraIO(client, f"{NS}/good_{backend}")

        def make(stamp):
            image = image_msg(stamp, "cam_optical_frame", pixels)
            return image, camera_info_msg(image.header, W, H, K, P, D0)

        _, _, found = cam.roundtrip(make, ("depth",))
        node_bytes = bytes(found["depth"].data)
    finally:
        node.stop()

    write_frame_bag(tmp_path / "in", pixels, P)
    assert main(["bag", "process", str(tmp_path / "in"), str(tmp_path / "out"), "--checkpoint", str(exported),
                 *cli_backend, "--no-progress"]) == 0
    bag_depth = by_topic(read_bag(tmp_path / "out"))["/cam/depth"]
    assert len(bag_depth) == 1 and bag_depth[0].msg.data.tobytes() == node_bytes

    png = write_png(tmp_path / "frame.png", pixels)
    assert main(["estimate", str(png), "--checkpoint", str(exported), *cli_backend, "--fx", str(P[0]), "--fy",
                 str(P[5]), "--cx", str(P[2]), "--cy", str(P[6]), "--format", "npy", "--out",
                 str(tmp_path / "est")]) == 0
    estimate = np.load(tmp_path / "est" / "frame_depth.npy")
    assert estimate.dtype == np.dtype("<f4") and estimate.tobytes() == node_bytes
    depth = np.frombuffer(node_bytes, "<f4")
    assert np.isfinite(depth).all() and depth.std() > 0


def test_the_node_refuses_to_activate_a_damaged_export(ros_env, client, exported, tmp_path):
    damaged = damaged_copy(exported, tmp_path / "damaged.onnx")
    diagnostics = client.collect(DiagnosticArray, "/diagnostics")
    node = start_node(ros_env, f"{NS}/damaged", damaged, tmp_path / "node.log")
    try:
        assert node.wait_for_log("FAILED the self-check", timeout=180), node.log()
        error = next(line for line in node.log().splitlines() if "FAILED the self-check" in line)
        assert "[ERROR]" in error and "max |diff|" in error and "likely causes" in error
        values = wait_until(lambda: (v := status_values(
            [d for d in diagnostics.snapshot() if any("/damaged" in s.name for s in d.status)], ": model"))
            and v["level"] == 2 and v)
        assert values and "FAILED the self-check" in values["message"], values
        state = client.call(GetState, f"{NS}/damaged/depth_anything/get_state", GetState.Request()).current_state
        assert state.label == "inactive"
    finally:
        node.stop()
