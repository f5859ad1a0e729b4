"""depth_anything_node fed bad calibrations, degenerate images, odd stamps, a relative model and bad parameters.

The node runs in its own process (Fast DDS) exactly as launch would run it; the tests check what reaches the graph:
the outputs a problem must cost, the ones it must not, the log line and the /diagnostics status. One node process
(namespace /rob) serves the camera namespaces of the frame tests; the relative checkpoint and the invalid startup
parameters get a process each. Expected intrinsics are written out from the image_geometry formulas.
"""

import time

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from graph_harness import (
    CameraIO,
    GraphClient,
    NodeProcess,
    camera_info_msg,
    change_state,
    cloud_arrays,
    depth_array,
    image_msg,
    node_command,
    random_image,
    serving_node,
    set_params,
    status_values,
    wait_until,
)
from lifecycle_msgs.msg import Transition

pytestmark = pytest.mark.ros

INPUT_SIZE = 70
NS = "/rob"
# camera names are YAML scalars on the command line: a name like "nan" or "1" would not be a string
CAMERAS = ["pzero", "badcal", "binning", "roi", "degenerate", "stamp_zero", "stamp_future", "left", "right"]
W, H = 64, 48
K = [52.0, 0.0, 31.5, 0.0, 50.0, 23.5, 0.0, 0.0, 1.0]  # fx 52, fy 50, cx 31.5, cy 23.5
P_ZERO = [0.0] * 12
NAN = float("nan")
WARN, ERROR = 1, 2


@pytest.fixture(scope="module")
def client(ros_env):
    graph = GraphClient("depth_anything_robustness_test")
    yield graph
    graph.close()


@pytest.fixture(scope="module")
def diagnostics(client):
    return client.collect(DiagnosticArray, "/diagnostics")


@pytest.fixture(scope="module")
def node(ros_env, synthetic_vits_checkpoint, tmp_path_factory):
    yield from serving_node(ros_env, NS, synthetic_vits_checkpoint, CAMERAS,
                            tmp_path_factory.mktemp("robust_node") / "node.log", input_size=INPUT_SIZE)


def frame_maker(pixels, frame_id, k=K, p=None, d=(), info_size=None, binning=0, roi=None):
    """make(stamp) for CameraIO.roundtrip: the same picture, a fresh stamp, camera_info with the same header.

    roi: (x_offset, y_offset, width, height) of the camera_info, None for the full sensor.
    """

    def make(stamp):
        image = image_msg(stamp, frame_id, pixels)
        width, height = info_size or (pixels.shape[1], pixels.shape[0])
        info = camera_info_msg(image.header, width, height, k, p, d)
        info.binning_x = info.binning_y = binning
        if roi is not None:
            info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = roi
        return image, info

    return make


def backproject(depth, fx, fy, cx, cy):
    """(H, W, 3) float64 x = (u - cx) z / fx, y = (v - cy) z / fy, z of a depth image (pinhole, no distortion)."""
    v, u = np.mgrid[0:depth.shape[0], 0:depth.shape[1]].astype(np.float64)
    z = depth.astype(np.float64)
    return np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], -1)


def publish(cam, image, info=None):
    if info is not None:
        cam.info_pub.publish(info)
    cam.image_pub.publish(image)


def camera_status(diagnostics, camera):
    return status_values(diagnostics.snapshot(), f"{NS}/{camera}/image")


# ---------------------------------------------------------------- camera_info: P zero, NaN, binning, roi


def test_zero_projection_is_published_as_k_and_zero_and_points_use_k(node, client):
    cam = CameraIO(client, f"{NS}/pzero")
    pixels = random_image(H, W, seed=21)
    _, info, out = cam.roundtrip(frame_maker(pixels, "pzero_frame", p=P_ZERO), ("depth", "info", "points"))
    assert list(info.p) == P_ZERO
    np.testing.assert_array_equal(out["info"].p, [52.0, 0.0, 31.5, 0.0, 0.0, 50.0, 23.5, 0.0, 0.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(out["info"].k, K)
    xyz, _ = cloud_arrays(out["points"])
    np.testing.assert_allclose(xyz, backproject(depth_array(out["depth"]), 52.0, 50.0, 31.5, 23.5),
                               rtol=1e-6, atol=1e-6)


NAN_CASES = [
    # (what, K, P, D, field the error must name)
    ("K cx with P zero", [52.0, 0.0, NAN, 0.0, 50.0, 23.5, 0.0, 0.0, 1.0], P_ZERO, (), "K[2]"),
    ("P cx with P set", K, [52.0, 0.0, NAN, 0.0, 0.0, 50.0, 23.5, 0.0, 0.0, 0.0, 1.0, 0.0], (), "P[2]"),
    ("K fy with D and P set", [52.0, 0.0, 31.5, 0.0, NAN, 23.5, 0.0, 0.0, 1.0],
     [45.0, 0.0, 30.0, 0.0, 0.0, 44.0, 22.0, 0.0, 0.0, 0.0, 1.0, 0.0], (-0.2, 0.05, 0.001, -0.001, 0.0), "K[4]"),
]


def test_nan_calibration_costs_points_and_camera_info_only_and_the_next_good_frame_recovers(node, client,
                                                                                           diagnostics):
    cam = CameraIO(client, f"{NS}/badcal")
    pixels = random_image(H, W, seed=22)
    good = frame_maker(pixels, "badcal_frame")
    cam.roundtrip(good, ("depth", "info", "points"))
    for what, k, p, d, field in NAN_CASES:
        bad = frame_maker(pixels, "badcal_frame", k=k, p=p, d=d)
        cam.info_pub.publish(bad(client.now())[1])  # an image whose own camera_info is late pairs with this one
        time.sleep(0.3)

        def reported(field=field):
            values = camera_status(diagnostics, "badcal")
            return values is not None and values["level"] == WARN and field in values["message"] and values

        sent = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (reported() and any(cam.depth.by_stamp(s) for s in sent)):
            image, info = bad(client.now())
            publish(cam, image, info)
            sent.append(image.header.stamp)
            time.sleep(0.5)
        values = reported()
        assert values, (what, camera_status(diagnostics, "badcal"))
        assert f"camera_info {field} is nan" in values["message"], (what, values)
        served = [s for s in sent if cam.depth.by_stamp(s)]
        assert served, what
        time.sleep(1.0)  # anything still on its way arrives
        assert not any(cam.points.by_stamp(s) or cam.info.by_stamp(s) for s in sent), what
        line = f"{NS}/badcal/image: camera_info unusable for the 64x48 image: camera_info {field} is nan"
        assert line in node.log(), (what, node.log())
        _, _, out = cam.roundtrip(good, ("depth", "info", "points"))
        np.testing.assert_array_equal(out["info"].k, K)
    assert node.proc.poll() is None


def test_binning_and_roi_follow_image_geometry(node, client):
    # 128x96 sensor: fx 104, fy 100, cx 63.5, cy 47.5; P = [K | 0]
    sensor_k = [104.0, 0.0, 63.5, 0.0, 100.0, 47.5, 0.0, 0.0, 1.0]
    pixels = random_image(H, W, seed=23)

    cam = CameraIO(client, f"{NS}/binning")
    _, info, out = cam.roundtrip(frame_maker(pixels, "binning_frame", k=sensor_k, info_size=(128, 96), binning=2),
                                 ("depth", "info", "points"))
    xyz, _ = cloud_arrays(out["points"])
    # fx' = fx / 2 = 52, fy' = fy / 2 = 50, cx' = cx / 2 = 31.75, cy' = cy / 2 = 23.75
    np.testing.assert_allclose(xyz, backproject(depth_array(out["depth"]), 52.0, 50.0, 31.75, 23.75),
                               rtol=1e-6, atol=1e-6)
    # the depth image has the input's pixel grid, so its camera_info is the input's (binning included)
    assert (out["info"].width, out["info"].height, out["info"].binning_x, out["info"].binning_y) == (128, 96, 2, 2)
    np.testing.assert_array_equal(out["info"].k, sensor_k)

    cam = CameraIO(client, f"{NS}/roi")
    _, _, out = cam.roundtrip(frame_maker(pixels, "roi_frame", k=sensor_k, info_size=(128, 96), roi=(16, 8, W, H)),
                              ("depth", "info", "points"))
    xyz, _ = cloud_arrays(out["points"])
    # fx' = fx = 104, fy' = fy = 100, cx' = cx - 16 = 47.5, cy' = cy - 8 = 39.5
    np.testing.assert_allclose(xyz, backproject(depth_array(out["depth"]), 104.0, 100.0, 47.5, 39.5),
                               rtol=1e-6, atol=1e-6)
    roi = out["info"].roi
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height) == (16, 8, W, H)


# ---------------------------------------------------------------- degenerate images


DEGENERATE = [
    # (width, height, what the log line says)
    (384, 1, "image rejected: image of 384x1 pixels is too small: both sides must be at least 2 pixels"),
    (4000, 2, "image rejected: image of 4000x2 pixels has an aspect ratio of 2000.0, more than 8"),
]


def test_degenerate_images_are_refused_before_inference_and_the_next_frame_is_served(node, client, diagnostics):
    cam = CameraIO(client, f"{NS}/degenerate")
    good = frame_maker(random_image(H, W, seed=24), "degenerate_frame")
    cam.roundtrip(good, ("depth", "points"))
    for width, height, expected in DEGENERATE:
        pixels = random_image(height, width, seed=width)
        line = f"{NS}/degenerate/image: {expected}"
        sent = []
        start = time.monotonic()
        elapsed = None
        while elapsed is None and time.monotonic() - start < 60:  # repeated only if a frame was lost
            image = image_msg(client.now(), "degenerate_frame", pixels)
            cam.image_pub.publish(image)
            sent.append(image.header.stamp)
            if node.wait_for_log(line, timeout=2.0):
                elapsed = time.monotonic() - start
        assert elapsed is not None, node.log()
        print(f"REJECTED {width}x{height}: log line {elapsed:.3f} s after the first publish ({len(sent)} sent)")
        values = wait_until(lambda e=expected: (v := camera_status(diagnostics, "degenerate")) and e in v[
            "last error"] and v)
        assert values, camera_status(diagnostics, "degenerate")
        cam.roundtrip(good, ("depth", "points"))
        assert not any(cam.depth.by_stamp(s) for s in sent), (width, height)
    assert node.proc.poll() is None


# ---------------------------------------------------------------- several cameras: one's problem is its own


def test_one_cameras_bad_calibration_or_image_never_costs_the_other_its_outputs(node, client):
    left, right = CameraIO(client, f"{NS}/left"), CameraIO(client, f"{NS}/right")
    left_pixels, right_pixels = random_image(H, W, seed=25), random_image(H, W, seed=26)
    nan_k = [52.0, 0.0, NAN, 0.0, 50.0, 23.5, 0.0, 0.0, 1.0]
    right_k = [70.0, 0.0, 30.0, 0.0, 68.0, 20.0, 0.0, 0.0, 1.0]
    left.roundtrip(frame_maker(left_pixels, "left_frame"), ("depth", "points"))  # discovery of both
    right.roundtrip(frame_maker(right_pixels, "right_frame", k=right_k), ("depth", "points"))
    left.info_pub.publish(frame_maker(left_pixels, "left_frame", k=nan_k)(client.now())[1])
    time.sleep(0.3)

    def rounds(left_make, want_left):
        """Both cameras at the same stamp every 0.5 s until 3 stamps have right's outputs and left's `want_left`."""
        stamps, complete = [], []
        deadline = time.monotonic() + 60
        while len(complete) < 3 and time.monotonic() < deadline:
            stamp = client.now()
            image, info = frame_maker(right_pixels, "right_frame", k=right_k)(stamp)
            publish(left, *left_make(stamp))
            publish(right, image, info)
            stamps.append(stamp)
            time.sleep(0.5)
            complete = [s for s in stamps if right.outputs(s, ("depth", "info", "points")) and want_left(s)]
        assert len(complete) >= 3, f"{len(complete)} of {len(stamps)} frames complete"
        time.sleep(1.0)  # anything still on its way arrives
        return stamps, complete

    stamps, complete = rounds(frame_maker(left_pixels, "left_frame", k=nan_k),
                              lambda s: left.depth.by_stamp(s))
    assert not any(left.points.by_stamp(s) or left.info.by_stamp(s) for s in stamps)
    for s in complete:
        out = right.outputs(s, ("depth", "info", "points"))
        np.testing.assert_array_equal(out["info"].k, right_k)
        xyz, _ = cloud_arrays(out["points"])
        np.testing.assert_allclose(xyz, backproject(depth_array(out["depth"]), 70.0, 68.0, 30.0, 20.0),
                                   rtol=1e-6, atol=1e-6)
    assert f"{NS}/left/image: camera_info unusable for the 64x48 image: camera_info K[2] is nan" in node.log()

    thin = random_image(1, 384, seed=27)
    stamps, complete = rounds(lambda stamp: (image_msg(stamp, "left_frame", thin), None),
                              lambda s: f"{NS}/left/image: image rejected: image of 384x1" in node.log())
    assert not any(left.depth.by_stamp(s) for s in stamps)
    assert node.proc.poll() is None


# ---------------------------------------------------------------- stamps that cannot give a latency


def test_zero_and_future_stamps_are_served_and_reported_as_unknown_latency(node, client, diagnostics):
    cases = [
        ("stamp_zero", lambda: Time(sec=0, nanosec=0), "header stamps are zero"),
        ("stamp_future", lambda: Time(sec=client.now().sec + 86400, nanosec=0), "s in the future of the node's clock"),
    ]
    for camera, make_stamp, expected in cases:
        cam = CameraIO(client, f"{NS}/{camera}")
        pixels = random_image(H, W, seed=28)
        sent = []

        def reported(expected=expected, camera=camera):
            values = camera_status(diagnostics, camera)
            return values is not None and values["level"] == WARN and expected in values["message"] and values

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (reported() and len([s for s in sent if cam.depth.by_stamp(s)]) >= 3):
            image, info = frame_maker(pixels, f"{camera}_frame")(make_stamp())
            publish(cam, image, info)
            sent.append(image.header.stamp)
            time.sleep(0.5)
        values = reported()
        assert values, camera_status(diagnostics, camera)
        assert values["message"].startswith("latency unknown: "), values
        assert values["latency ms"].startswith("unknown: ") and expected in values["latency ms"], values
        assert any(cam.depth.by_stamp(s) for s in sent)
        lines = [line for line in node.log().splitlines() if f"{NS}/{camera}/image: header stamps are" in line]
        assert len(lines) == 1, lines
        assert "WARN" in lines[0] and expected in lines[0] and "latency is not reported" in lines[0], lines


# ---------------------------------------------------------------- a relative checkpoint


@pytest.fixture(scope="module")
def relative_checkpoint(tmp_path_factory):
    """Write a synthetic vits state_dict under the official relative file name; check it loads as relative."""
    from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint
    from depth_anything_ros.models.v2.estimator import DepthEstimator

    path = write_synthetic_checkpoint(tmp_path_factory.mktemp("relative") / "depth_anything_v2_vits.pth", "vits")
    est = DepthEstimator(checkpoint=path, device="cpu", precision="fp32", input_size=INPUT_SIZE)
    assert est.is_metric is False and est.max_depth is None
    return path


def test_relative_checkpoint_is_refused_at_activate_with_the_metric_variants(ros_env, client, diagnostics,
                                                                             relative_checkpoint, tmp_path):
    process = NodeProcess(node_command("/rel", relative_checkpoint, f"model.input_size:={INPUT_SIZE}", "device:=cpu"),
                          ros_env, tmp_path / "node.log")
    try:
        assert process.wait_for_log("is a relative model"), process.log()
        values = wait_until(lambda: (v := status_values(diagnostics.snapshot(), "/rel/depth_anything: model"))
                            and v["level"] == ERROR and v)
        assert values, status_values(diagnostics.snapshot(), "/rel/depth_anything: model")
        assert "activate failed" in values["message"] and "relative" in values["message"], values
        assert "hypersim-vits" in values["message"] and "vkitti-vitl" in values["message"], values
        time.sleep(2.0)
        assert process.proc.poll() is None, process.log()
        line = next(x for x in process.log().splitlines() if "is a relative model" in x)
        assert "ERROR" in line and str(relative_checkpoint) in line and "hypersim-vits" in line, line
        assert "Traceback" not in process.log(), process.log()
    finally:
        process.stop()


# ---------------------------------------------------------------- invalid startup parameters


# rcl merges the params file and the -p rules before the node exists and silently keeps the file's 518 for
# -p model.input_size:=abc; the node reads its own command line so that case is refused like the others.
INVALID_STARTUP = [
    # (namespace, params file used, overrides, log lines naming parameter and value, valid values set afterwards)
    pytest.param("/inv_range", True, ("model.input_size:=13", "cloud.stride:=0"),
                 ("invalid parameter model.input_size = 13: must be 0 (auto) or a multiple of 14 from 14 to 4088",
                  "invalid parameter cloud.stride = 0: must be an integer in [1, 64]"),
                 {"model__input_size": INPUT_SIZE, "cloud__stride": 1}, id="out_of_range"),
    pytest.param("/inv_type", False, ("model.input_size:=abc",),
                 ("invalid parameter model.input_size = 'abc': must be 0 (auto) or a multiple of 14 from 14 to 4088",),
                 {"model__input_size": INPUT_SIZE}, id="wrong_type"),
    pytest.param("/inv_type_file", True, ("model.input_size:=abc",),
                 ("invalid parameter model.input_size = 'abc': must be 0 (auto) or a multiple of 14 from 14 to 4088",),
                 {"model__input_size": INPUT_SIZE}, id="wrong_type_after_params_file"),
]


def without_params_file(command: list[str]) -> list[str]:
    """Drop `--params-file FILE` from a graph_harness.node_command (the declared defaults apply)."""
    index = command.index("--params-file")
    return command[:index] + command[index + 2:]


@pytest.mark.parametrize(("ns", "params_file", "overrides", "lines", "fixes"), INVALID_STARTUP)
def test_invalid_startup_parameters_fail_configure_until_set_then_the_node_serves(
        ros_env, client, diagnostics, synthetic_vits_checkpoint, tmp_path, ns, params_file, overrides, lines, fixes):
    node_name = f"{ns}/depth_anything"
    start = time.monotonic()
    command = node_command(ns, synthetic_vits_checkpoint, "model.max_depth:=20.0", "device:=cpu", *overrides)
    process = NodeProcess(command if params_file else without_params_file(command), ros_env, tmp_path / "node.log")
    try:
        assert wait_until(lambda: process.proc.poll() is not None or any(
            text in process.log() for text in ("configure failed", "loaded in")), period=0.1), process.log()
        for line in lines:
            assert line in process.log(), process.log()
        assert "configure failed" in process.log(), process.log()
        values = wait_until(lambda: (v := status_values(diagnostics.snapshot(), f"{node_name}: model"))
                            and v["level"] == ERROR and v)
        assert values, status_values(diagnostics.snapshot(), f"{node_name}: model")
        for line in lines:
            assert line in values["message"], values
        time.sleep(max(0.0, 3.0 - (time.monotonic() - start)))
        assert process.proc.poll() is None, process.log()
        assert "Traceback" not in process.log(), process.log()

        results = set_params(client, node_name, **fixes)
        assert all(r.successful for r in results), [r.reason for r in results]
        assert change_state(client, node_name, Transition.TRANSITION_CONFIGURE), process.log()
        assert change_state(client, node_name, Transition.TRANSITION_ACTIVATE), process.log()
        cam = CameraIO(client, ns)
        _, _, out = cam.roundtrip(frame_maker(random_image(H, W, seed=29), "inv_frame"), ("depth", "points"))
        assert depth_array(out["depth"]).shape == (H, W)
        assert np.isfinite(depth_array(out["depth"])).all()
        values = wait_until(lambda: (v := status_values(diagnostics.snapshot(), f"{node_name}: model"))
                            and v["level"] == 0 and v)
        assert values and values["input size"] == str(INPUT_SIZE), values
    finally:
        process.stop()

