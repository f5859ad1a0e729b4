"""depth_anything_node with scale.mode reference in a real graph: converges to the reference, keeps it, refuses sizes.

One node process (namespace /scl, synthetic weights on the CPU) serves two cameras: `ref` gets a reference_depth
equal to the node's own unscaled depth x 0.8 at each image's stamp, then none; `wrong` gets a reference of another
size. The tests check what reaches the graph: depth, depth/scale, the log and /diagnostics.
"""

import time
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Vector3Stamped
from graph_harness import (
    CameraIO,
    GraphClient,
    NodeProcess,
    camera_info_msg,
    depth_array,
    image_msg,
    node_command,
    random_image,
    status_values,
    wait_until,
)
from sensor_msgs.msg import Image

pytestmark = pytest.mark.ros

NS = "/scl"
W, H = 64, 48
K = [52.0, 0.0, 31.5, 0.0, 50.0, 23.5, 0.0, 0.0, 1.0]
TRUE_SCALE = 0.8
WARN = 1


@pytest.fixture(scope="module")
def client(ros_env):
    graph = GraphClient("depth_anything_scale_test")
    yield graph
    graph.close()


@pytest.fixture(scope="module")
def diagnostics(client):
    return client.collect(DiagnosticArray, "/diagnostics")


@pytest.fixture(scope="module")
def node(ros_env, synthetic_vits_checkpoint, tmp_path_factory):
    command = node_command(NS, synthetic_vits_checkpoint, "model.max_depth:=20.0", "model.input_size:=70",
                           "device:=cpu", "cameras:=[ref,wrong]", "scale.mode:=reference",
                           "scale.time_constant:=0.5", "scale.timeout:=1.0", "scale.min_pixels:=50",
                           "scale.min_reference_depth:=0.01", "scale.max_reference_depth:=100.0",
                           "scale.max_stamp_diff:=0.001")
    process = NodeProcess(command, ros_env, tmp_path_factory.mktemp("scale_node") / "node.log")
    assert process.wait_for_log("loaded in"), process.log()
    yield process
    process.stop()


def depth_reference(stamp, frame_id: str, depth: np.ndarray) -> Image:
    """32FC1 reference depth message with the image's stamp."""
    return image_msg(stamp, frame_id, depth.astype(np.float32), encoding="32FC1")


def make_frames(pixels, frame_id, reference_pub=None, reference=None):
    """make(stamp) for CameraIO.roundtrip; publishes the reference of the same stamp first when given."""

    def make(stamp):
        image = image_msg(stamp, frame_id, pixels)
        if reference_pub is not None:
            reference_pub.publish(depth_reference(stamp, frame_id, reference))
            time.sleep(0.05)  # the reference is stored before the image is taken
        return image, camera_info_msg(image.header, W, H, K)

    return make


def test_reference_scale_converges_then_is_kept_with_a_warning_when_the_reference_stops(node, client, diagnostics):
    cam = CameraIO(client, f"{NS}/ref")
    scales = client.collect(Vector3Stamped, f"{NS}/ref/depth/scale")
    reference_pub = client.publisher(Image, f"{NS}/ref/reference_depth")
    pixels = random_image(H, W, seed=31)
    _, _, out = cam.roundtrip(make_frames(pixels, "ref_frame"), ("depth",))
    unscaled = depth_array(out["depth"]).copy()  # no fit yet: depth.scale 1.0 applies
    reference = unscaled * TRUE_SCALE

    def converged(found):
        got = scales.by_stamp(found["depth"].header.stamp)
        return got and abs(got[-1].vector.z - TRUE_SCALE) < 1e-3 and abs(got[-1].vector.x / TRUE_SCALE - 1) < 1e-3

    image, _, out = cam.roundtrip(make_frames(pixels, "ref_frame", reference_pub, reference), ("depth",),
                                  predicate=converged)
    depth = depth_array(out["depth"])
    error = float(np.max(np.abs(depth / reference - 1.0)))
    print(f"RECOVERY node graph, reference = unscaled depth x 0.8: largest relative error {100 * error:.4f} %, "
          f"scale {scales.by_stamp(image.header.stamp)[-1].vector.x:.6f}")
    assert error < 0.02
    values = wait_until(lambda: (v := status_values(diagnostics.snapshot(), f"{NS}/ref/image"))
                        and v.get("scale source") == "reference" and v.get("scale last fit") == "ok" and v)
    assert values and abs(float(values["scale"]) - TRUE_SCALE) < 1e-3 and int(values["scale valid pixels"]) == W * H

    # the reference stops: frames keep coming, the last scale is kept, a WARN once, the status goes WARN
    deadline, sent = time.monotonic() + 60, []
    line = f"{NS}/ref/image: scale (reference): no good fit for"
    while time.monotonic() < deadline and not (line in node.log() and len(sent) > 4):
        image, info = make_frames(pixels, "ref_frame")(client.now())
        cam.info_pub.publish(info)
        cam.image_pub.publish(image)
        sent.append(image.header.stamp)
        time.sleep(0.5)
    assert line in node.log(), node.log()
    warn_line = next(x for x in node.log().splitlines() if line in x)
    assert "WARN" in warn_line and "keeping scale 0.8000" in warn_line, warn_line
    assert wait_until(lambda: any(cam.depth.by_stamp(s) for s in sent[-3:]))
    late = next(cam.depth.by_stamp(s)[-1] for s in reversed(sent) if cam.depth.by_stamp(s))
    np.testing.assert_allclose(depth_array(late), reference, rtol=0.02)
    values = wait_until(lambda: (v := status_values(diagnostics.snapshot(), f"{NS}/ref/image"))
                        and v["level"] == WARN and "scale reference" in v["message"] and v)
    assert values, status_values(diagnostics.snapshot(), f"{NS}/ref/image")
    assert node.log().count(line) == 1, "stale is logged once per episode"


def test_a_reference_of_the_wrong_size_is_a_clear_error_and_depth_is_still_served(node, client, diagnostics):
    cam = CameraIO(client, f"{NS}/wrong")
    reference_pub = client.publisher(Image, f"{NS}/wrong/reference_depth")
    pixels = random_image(H, W, seed=32)
    line = (f"{NS}/wrong/image: reference depth unusable: reference depth of 30x10 pixels is neither the image size "
            "64x48 nor a uniform resize of it")
    make = make_frames(pixels, "wrong_frame", reference_pub, np.ones((10, 30)))
    cam.roundtrip(make, ("depth",), predicate=lambda found: line in node.log())
    assert "ERROR" in next(x for x in node.log().splitlines() if line in x)
    values = wait_until(lambda: (v := status_values(diagnostics.snapshot(), f"{NS}/wrong/image"))
                        and "neither the image size" in v["last error"] and v)
    assert values and values["level"] == WARN
    assert node.proc.poll() is None and "Traceback" not in node.log()


def test_the_model_log_line_states_the_precision_auto_chooses_on_this_cpu(node):
    flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("flags")), [])
    expected = "bf16" if {"avx512_bf16", "amx_bf16"} & set(flags) else "fp32"  # read here, not by the node
    line = next(line for line in node.log().splitlines() if "loaded in" in line)
    assert f"(precision auto on the CPU: {expected}, " in line, line
