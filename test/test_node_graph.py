"""depth_anything_node in a real ROS graph: the node in its own process (Fast DDS), this process publishes and checks.

One node process (namespace /dan) serves every camera namespace below, one per test, so the model loads once;
a second one (/dan2) runs the compressed transport with reliable input QoS and ends with SIGINT.
"""

import time

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from graph_harness import (
    BEST_EFFORT,
    CameraIO,
    GraphClient,
    NodeProcess,
    camera_info_msg,
    change_state,
    cloud_arrays,
    compressed_msg,
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
from lifecycle_msgs.srv import GetState
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.srv import GetParameters
from rclpy.parameter import Parameter

pytestmark = pytest.mark.ros

INPUT_SIZE = 70
NS = "/dan"
NODE = f"{NS}/depth_anything"
CAMERAS = ["exact", "scaled", "distorted", "noinfo", "stride", "burst", "bad", "life", "multi_a", "multi_b"]
W, H = 64, 48
K = [52.0, 0.0, 31.5, 0.0, 50.0, 23.5, 0.0, 0.0, 1.0]


@pytest.fixture(scope="module")
def client(ros_env):
    graph = GraphClient("depth_anything_graph_test")
    yield graph
    graph.close()


@pytest.fixture(scope="module")
def node(ros_env, synthetic_vits_checkpoint, tmp_path_factory):
    yield from serving_node(ros_env, NS, synthetic_vits_checkpoint, CAMERAS,
                            tmp_path_factory.mktemp("node") / "node.log", input_size=INPUT_SIZE)


@pytest.fixture(scope="module")
def reference(synthetic_vits_checkpoint):
    from depth_anything_ros.models.v2.estimator import DepthEstimator

    return DepthEstimator(checkpoint=synthetic_vits_checkpoint, encoder="vits", max_depth=20.0, device="cpu",
                          precision="fp32", input_size=INPUT_SIZE)


@pytest.fixture(scope="module")
def diagnostics(client):
    return client.collect(DiagnosticArray, "/diagnostics")


def get_param(client, node_name, name):
    response = client.call(GetParameters, f"{node_name}/get_parameters", GetParameters.Request(names=[name]))
    return Parameter.from_parameter_msg(ParameterMsg(name=name, value=response.values[0])).value


def frame_maker(pixels, frame_id, k=K, p=None, d=(), info_size=None, encoding="rgb8"):
    """make(stamp) for CameraIO.roundtrip: the same picture, a fresh stamp, camera_info with the same header."""

    def make(stamp):
        image = image_msg(stamp, frame_id, pixels, encoding)
        width, height = info_size or (pixels.shape[1], pixels.shape[0])
        return image, camera_info_msg(image.header, width, height, k, p, d)

    return make


def backproject(depth, fx, fy, cx, cy, stride=1):
    v, u = np.mgrid[0:depth.shape[0]:stride, 0:depth.shape[1]:stride].astype(np.float64)
    z = depth[::stride, ::stride].astype(np.float64)
    return np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], -1)


def same_header(a, b):
    return (a.stamp.sec, a.stamp.nanosec, a.frame_id) == (b.stamp.sec, b.stamp.nanosec, b.frame_id)


# ---------------------------------------------------------------- outputs of one frame


def test_outputs_keep_the_header_and_depth_equals_the_estimator(node, client, reference):
    cam = CameraIO(client, f"{NS}/exact")
    pixels = random_image(H, W, seed=1)
    image, info, out = cam.roundtrip(frame_maker(pixels, "exact_optical_frame"),
                                     ("depth", "info", "points", "colored"))
    for msg in out.values():
        assert same_header(msg.header, image.header)
    depth = depth_array(out["depth"])
    assert out["depth"].encoding == "32FC1" and depth.shape == (H, W)
    np.testing.assert_allclose(depth, reference.estimate(pixels, "rgb8"), rtol=1e-5, atol=1e-5)
    assert (out["info"].width, out["info"].height) == (W, H)
    np.testing.assert_array_equal(out["info"].k, info.k)
    np.testing.assert_array_equal(out["info"].p, info.p)
    colored = out["colored"]
    assert (colored.encoding, colored.height, colored.width, colored.step) == ("rgb8", H, W, 3 * W)


def test_points_are_the_backprojection_of_depth_with_the_input_colours(node, client):
    cam = CameraIO(client, f"{NS}/exact")
    pixels = random_image(H, W, seed=2)
    image, info, out = cam.roundtrip(frame_maker(pixels, "exact_optical_frame"), ("depth", "points"))
    cloud = out["points"]
    assert (cloud.height, cloud.width, cloud.is_dense) == (H, W, False)
    xyz, rgb = cloud_arrays(cloud)
    fx, cx, fy, cy = info.p[0], info.p[2], info.p[5], info.p[6]
    np.testing.assert_allclose(xyz, backproject(depth_array(out["depth"]), fx, fy, cx, cy), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(rgb, pixels)


def test_camera_info_of_a_uniformly_resized_image_is_scaled(node, client):
    cam = CameraIO(client, f"{NS}/scaled")
    pixels = random_image(H, W, seed=3)
    big_k = [v * 2 if i in (0, 2, 4, 5) else v for i, v in enumerate(K)]
    image, _, out = cam.roundtrip(frame_maker(pixels, "scaled_frame", k=big_k, info_size=(2 * W, 2 * H)),
                                  ("depth", "info", "points"))
    assert (out["info"].width, out["info"].height) == (W, H)
    np.testing.assert_allclose(out["info"].k, K)
    xyz, _ = cloud_arrays(out["points"])
    np.testing.assert_allclose(xyz, backproject(depth_array(out["depth"]), K[0], K[4], K[2], K[5]),
                               rtol=1e-6, atol=1e-6)


def test_distorted_camera_points_project_back_onto_their_pixels(node, client):
    cam = CameraIO(client, f"{NS}/distorted")
    pixels = random_image(H, W, seed=4)
    d = [-0.25, 0.08, 0.002, -0.001, -0.01]
    p = [45.0, 0.0, 30.0, 0.0, 0.0, 44.0, 22.0, 0.0, 0.0, 0.0, 1.0, 0.0]  # rectified projection differs from K
    _, info, out = cam.roundtrip(frame_maker(pixels, "distorted_frame", p=p, d=d), ("depth", "points"))
    xyz, _ = cloud_arrays(out["points"])
    depth = depth_array(out["depth"])
    finite = np.isfinite(xyz).all(-1)
    assert finite.mean() > 0.9
    np.testing.assert_allclose(xyz[finite][:, 2], depth[finite], rtol=1e-6)
    projected, _ = cv2.projectPoints(xyz[finite].astype(np.float64), np.zeros(3), np.zeros(3),
                                     np.array(info.k).reshape(3, 3), np.array(d))
    v, u = np.nonzero(finite)
    np.testing.assert_allclose(projected.reshape(-1, 2), np.stack([u, v], -1), atol=0.02)
    pinhole = backproject(depth, p[0], p[5], p[2], p[6])
    assert np.nanmax(np.abs(xyz - pinhole)) > 1e-3  # really undistorted, not the rectified formula


def test_without_camera_info_depth_only_then_the_fov_fallback(node, client):
    cam = CameraIO(client, f"{NS}/noinfo")
    pixels = random_image(H, W, seed=14)

    def make(stamp):
        return image_msg(stamp, "noinfo_frame", pixels), None

    warning = "no camera_info on /dan/noinfo/camera_info after 3 s: publishing depth only"
    assert wait_until(lambda: cam.roundtrip(make, ("depth",)) and warning in node.log()), node.log()
    assert node.log().count("no camera_info on /dan/noinfo") == 1
    _, _, out = cam.roundtrip(make, ("depth",))
    time.sleep(1.0)
    assert not cam.points.by_stamp(out["depth"].header.stamp) and not cam.info.by_stamp(out["depth"].header.stamp)
    try:
        assert all(r.successful for r in set_params(client, NODE, camera__fallback_fov_deg=90.0))
        _, _, out = cam.roundtrip(make, ("depth", "info", "points"))
        f = (W / 2) / np.tan(np.radians(45.0))
        np.testing.assert_allclose(out["info"].k, [f, 0, (W - 1) / 2, 0, f, (H - 1) / 2, 0, 0, 1])
        xyz, _ = cloud_arrays(out["points"])
        np.testing.assert_allclose(xyz, backproject(depth_array(out["depth"]), f, f, (W - 1) / 2, (H - 1) / 2),
                                   rtol=1e-6, atol=1e-6)
    finally:
        set_params(client, NODE, camera__fallback_fov_deg=0.0)


# ---------------------------------------------------------------- run-time parameters


def test_cloud_parameters_change_at_run_time_and_invalid_values_are_rejected(node, client):
    cam = CameraIO(client, f"{NS}/stride")
    pixels = random_image(H, W, seed=5)
    make = frame_maker(pixels, "stride_frame")
    _, info, out = cam.roundtrip(make, ("depth", "points"))
    assert (out["points"].height, out["points"].width) == (H, W)
    depth = depth_array(out["depth"])
    try:
        assert all(r.successful for r in set_params(client, NODE, cloud__stride=4))
        _, _, out = cam.roundtrip(make, ("depth", "points"), predicate=lambda o: o["points"].width == W // 4)
        assert out["points"].height == H // 4
        xyz, rgb = cloud_arrays(out["points"])
        np.testing.assert_allclose(xyz, backproject(depth_array(out["depth"]), K[0], K[4], K[2], K[5], stride=4),
                                   rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(rgb, pixels[::4, ::4])

        low, high = (float(v) for v in np.percentile(depth, [30, 70]))
        assert all(r.successful for r in set_params(client, NODE, cloud__stride=1, cloud__min_depth=low,
                                                    cloud__max_depth=high))
        _, _, out = cam.roundtrip(make, ("depth", "points"), predicate=lambda o: o["points"].width == W)
        xyz, _ = cloud_arrays(out["points"])
        z = depth_array(out["depth"])
        inside = (z >= low) & (z <= high)
        assert 0 < inside.sum() < inside.size
        np.testing.assert_array_equal(np.isnan(xyz[..., 2]), ~inside)

        assert all(r.successful for r in set_params(client, NODE, cloud__organized=False, cloud__color=False))
        _, _, out = cam.roundtrip(make, ("depth", "points"), predicate=lambda o: o["points"].height == 1)
        z = depth_array(out["depth"])
        inside = (z >= low) & (z <= high)
        assert out["points"].is_dense and out["points"].width == inside.sum()
        assert [f.name for f in out["points"].fields] == ["x", "y", "z"]
        xyz, _ = cloud_arrays(out["points"])
        np.testing.assert_allclose(xyz[0, :, 2], z[inside], rtol=1e-6)

        assert all(r.successful for r in set_params(client, NODE, depth__scale=2.0, colored__enabled=False))
        _, _, out = cam.roundtrip(make, ("depth",), predicate=lambda o: np.allclose(
            depth_array(o["depth"]), 2 * depth, rtol=1e-5, atol=1e-5))
        time.sleep(1.0)
        assert not cam.colored.by_stamp(out["depth"].header.stamp)

        for bad in ({"cloud__stride": 0}, {"colored__colormap": "no_such_map"}, {"qos__reliability": "sometimes"},
                    {"cloud__min_depth": 5.0, "cloud__max_depth": 2.0}, {"depth__scale": -1.0}):
            results = set_params(client, NODE, **bad)
            assert not all(r.successful for r in results), bad
            assert any(r.reason for r in results), bad
        assert get_param(client, NODE, "colored.colormap") == "turbo"
    finally:
        set_params(client, NODE, cloud__stride=1, cloud__min_depth=0.0, cloud__max_depth=0.0, cloud__organized=True,
                   cloud__color=True, depth__scale=1.0, colored__enabled=True)


# ---------------------------------------------------------------- never fall behind


def test_a_burst_of_frames_is_dropped_not_queued(node, client, diagnostics):
    cam = CameraIO(client, f"{NS}/burst")
    bw, bh = 320, 240
    pixels = random_image(bh, bw, seed=6)
    k = [250.0, 0, 159.5, 0, 250.0, 119.5, 0, 0, 1]
    cam.roundtrip(frame_maker(pixels, "burst_frame", k=k), ("depth",))  # discovery done
    first = client.now()
    stamps = []
    for _ in range(100):
        stamp = client.now()
        image = image_msg(stamp, "burst_frame", pixels)
        cam.info_pub.publish(camera_info_msg(image.header, bw, bh, k))
        cam.image_pub.publish(image)
        stamps.append((stamp.sec, stamp.nanosec))
    index = {s: i for i, s in enumerate(stamps)}

    def burst_outputs():
        return [m for m in cam.depth.snapshot() if (m.header.stamp.sec, m.header.stamp.nanosec) >= (
            first.sec, first.nanosec)]

    count = -1
    while True:  # until outputs stop coming
        time.sleep(3.0)
        outputs = burst_outputs()
        if len(outputs) == count:
            break
        count = len(outputs)
    assert 0 < len(outputs) < 100
    last = index[(outputs[-1].header.stamp.sec, outputs[-1].header.stamp.nanosec)]
    assert last >= 90, f"last processed frame is #{last} of 100"
    processed = [index[(m.header.stamp.sec, m.header.stamp.nanosec)] for m in outputs]
    assert processed == sorted(processed)
    values = wait_until(lambda: (v := status_values(diagnostics.snapshot(), "/burst/image")) and int(
        v["frames dropped"]) > 0 and v)
    assert values, status_values(diagnostics.snapshot(), "/burst/image")
    print("BURST", len(outputs), processed, values)


# ---------------------------------------------------------------- bad input


def test_bad_input_is_reported_and_the_next_good_frame_is_processed(node, client, diagnostics):
    cam = CameraIO(client, f"{NS}/bad")
    pixels = random_image(H, W, seed=7)
    good = frame_maker(pixels, "bad_frame")
    cam.roundtrip(good, ("depth", "points"))
    row = W * 3

    def bad_image(stamp, kind):
        if kind == "encoding":
            return image_msg(stamp, "bad_frame", pixels, encoding="weird16")
        if kind == "truncated":
            return image_msg(stamp, "bad_frame", pixels, data=pixels.tobytes()[: row * H // 2])
        return image_msg(stamp, "bad_frame", pixels, step=row - 3)

    cases = [("encoding", "weird16"), ("truncated", "expected step*height"), ("step", "step 189 is smaller")]
    for kind, expected in cases:
        def make_bad(stamp, kind=kind):
            image = bad_image(stamp, kind)
            return image, camera_info_msg(image.header, W, H, K)

        def reported(expected=expected):
            values = status_values(diagnostics.snapshot(), "/bad/image")
            return values is not None and expected in values["last error"] and values

        deadline = time.monotonic() + 60
        while not reported() and time.monotonic() < deadline:
            image, info = make_bad(client.now())
            cam.info_pub.publish(info)
            cam.image_pub.publish(image)
            time.sleep(0.5)
        values = reported()
        assert values and values["level"] == 1, status_values(diagnostics.snapshot(), "/bad/image")
        assert not cam.depth.by_stamp(image.header.stamp)
        assert expected in node.log()
        cam.roundtrip(good, ("depth", "points"))

    mismatched = frame_maker(pixels, "bad_frame", info_size=(W, 3 * H))  # camera_info of another shape
    _, _, out = cam.roundtrip(mismatched, ("depth",))
    assert wait_until(lambda: "not a uniform resize" in (status_values(diagnostics.snapshot(), "/bad/image") or {
        "last error": ""})["last error"])
    assert not cam.points.by_stamp(out["depth"].header.stamp)
    assert "not a uniform resize" in node.log()
    cam.roundtrip(good, ("depth", "points"))
    assert node.proc.poll() is None


# ---------------------------------------------------------------- lifecycle


def test_lifecycle_deactivate_activate_and_a_missing_checkpoint(node, client, synthetic_vits_checkpoint,
                                                                 diagnostics):
    cam = CameraIO(client, f"{NS}/life")
    make = frame_maker(random_image(H, W, seed=8), "life_frame")
    cam.roundtrip(make, ("depth",))
    assert change_state(client, NODE, Transition.TRANSITION_DEACTIVATE)
    state = client.call(GetState, f"{NODE}/get_state", GetState.Request()).current_state
    assert state.label == "inactive"
    sent = []
    for _ in range(6):
        image, info = make(client.now())
        cam.info_pub.publish(info)
        cam.image_pub.publish(image)
        sent.append(image.header.stamp)
        time.sleep(0.5)
    time.sleep(2.0)
    assert not any(cam.depth.by_stamp(s) for s in sent)
    assert change_state(client, NODE, Transition.TRANSITION_ACTIVATE)
    cam.roundtrip(make, ("depth", "points"))

    # model parameters apply on reconfigure; a missing checkpoint fails activation with the reason
    missing = "/nonexistent/depth_anything_v2_metric_hypersim_vits.pth"
    try:
        assert change_state(client, NODE, Transition.TRANSITION_DEACTIVATE)
        assert change_state(client, NODE, Transition.TRANSITION_CLEANUP)
        assert all(r.successful for r in set_params(client, NODE, model__checkpoint=missing))
        assert change_state(client, NODE, Transition.TRANSITION_CONFIGURE)
        assert not change_state(client, NODE, Transition.TRANSITION_ACTIVATE)
        assert node.wait_for_log(f"cannot load model '{missing}'")
        values = wait_until(lambda: (v := status_values(diagnostics.snapshot(), ": model")) and v["level"] == 2 and v)
        assert values and "model not loaded" in values["message"]
        state = client.call(GetState, f"{NODE}/get_state", GetState.Request()).current_state
        assert state.label == "inactive"
    finally:
        change_state(client, NODE, Transition.TRANSITION_CLEANUP)
        set_params(client, NODE, model__checkpoint=str(synthetic_vits_checkpoint))
        change_state(client, NODE, Transition.TRANSITION_CONFIGURE)
        change_state(client, NODE, Transition.TRANSITION_ACTIVATE)
    cam.roundtrip(make, ("depth", "points"))


# ---------------------------------------------------------------- several cameras on one model


def test_two_cameras_get_their_own_headers_intrinsics_and_depth(node, client, reference):
    cams = {name: CameraIO(client, f"{NS}/{name}") for name in ("multi_a", "multi_b")}
    pixels = {"multi_a": random_image(H, W, seed=9), "multi_b": random_image(H, W, seed=10)}
    ks = {"multi_a": K, "multi_b": [70.0, 0, 30.0, 0, 68.0, 20.0, 0, 0, 1]}
    deadline = time.monotonic() + 60
    done = {}
    while len(done) < 2 and time.monotonic() < deadline:
        stamp = client.now()
        frames = {}
        for name, cam in cams.items():  # both cameras at the same moment: batched into one forward pass
            image = image_msg(stamp, f"{name}_optical_frame", pixels[name])
            info = camera_info_msg(image.header, W, H, ks[name])
            cam.info_pub.publish(info)
            cam.image_pub.publish(image)
            frames[name] = (image, info)
        time.sleep(1.0)
        for name, cam in cams.items():
            out = cam.outputs(stamp, ("depth", "info", "points"))
            if out:
                done[name] = (frames[name], out)
    assert set(done) == set(cams)
    for name, ((image, _), out) in done.items():
        for msg in out.values():
            assert same_header(msg.header, image.header), name
        np.testing.assert_array_equal(out["info"].k, ks[name])
        depth = depth_array(out["depth"])
        np.testing.assert_allclose(depth, reference.estimate(pixels[name], "rgb8"), rtol=1e-5, atol=1e-5)
        k = ks[name]
        xyz, rgb = cloud_arrays(out["points"])
        np.testing.assert_allclose(xyz, backproject(depth, k[0], k[4], k[2], k[5]), rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(rgb, pixels[name])


# ---------------------------------------------------------------- compressed transport, QoS advice, SIGINT


@pytest.fixture(scope="module")
def compressed_node(ros_env, synthetic_vits_checkpoint, tmp_path_factory):
    process = NodeProcess(node_command("/dan2", synthetic_vits_checkpoint, "model.max_depth:=20.0",
                                       f"model.input_size:={INPUT_SIZE}", "device:=cpu", "image_transport:=compressed",
                                       "qos.reliability:=reliable", "cameras:=[jpeg,besteffort]"),
                          ros_env, tmp_path_factory.mktemp("node2") / "node.log")
    assert process.wait_for_log("loaded in"), process.log()
    yield process
    process.stop()


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_compressed_input(compressed_node, client, reference, fmt):
    cam = CameraIO(client, "/dan2/jpeg", compressed=True)
    pixels = random_image(H, W, seed=11)
    ok, encoded = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", pixels[..., ::-1])
    assert ok

    def make(stamp):
        image = compressed_msg(stamp, "jpeg_frame", encoded.tobytes(), f"rgb8; {fmt} compressed bgr8")
        return image, camera_info_msg(image.header, W, H, K)

    image, _, out = cam.roundtrip(make, ("depth", "points"))
    assert same_header(out["depth"].header, image.header)
    decoded_bgr = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    if fmt == "png":
        np.testing.assert_array_equal(decoded_bgr[..., ::-1], pixels)
    np.testing.assert_allclose(depth_array(out["depth"]), reference.estimate(decoded_bgr, "bgr8"), rtol=1e-5,
                               atol=1e-5)
    _, rgb = cloud_arrays(out["points"])
    np.testing.assert_array_equal(rgb, decoded_bgr[..., ::-1])


def test_best_effort_publisher_to_reliable_subscription_gets_the_fix_in_a_warning(compressed_node, client):
    cam = CameraIO(client, "/dan2/besteffort", compressed=True, image_qos=BEST_EFFORT)
    _, encoded = cv2.imencode(".png", random_image(H, W, seed=12))
    deadline = time.monotonic() + 60
    while "qos.reliability: best_effort" not in compressed_node.log() and time.monotonic() < deadline:
        cam.image_pub.publish(compressed_msg(client.now(), "be_frame", encoded.tobytes(), "png"))
        time.sleep(0.5)
    assert "/dan2/besteffort/image/compressed" in compressed_node.log()
    assert "qos.reliability: best_effort" in compressed_node.log()
    assert not cam.depth.snapshot()


def test_sigint_exits_cleanly_without_waiting_for_the_queue(compressed_node, client):
    cam = CameraIO(client, "/dan2/jpeg", compressed=True)
    _, encoded = cv2.imencode(".png", random_image(H, W, seed=13))

    def make(stamp):
        image = compressed_msg(stamp, "jpeg_frame", encoded.tobytes(), "png")
        return image, camera_info_msg(image.header, W, H, K)

    cam.roundtrip(make, ("depth",))
    for _ in range(5):  # keep the worker busy while the signal arrives
        cam.image_pub.publish(make(client.now())[0])
    code, elapsed = compressed_node.interrupt()
    assert code == 0, compressed_node.log()
    print(f"SIGINT to exit: {elapsed:.2f} s")  # the figure; the bound below only catches a hang or a drained queue
    assert elapsed < 15.0, f"exit took {elapsed:.2f} s"
    assert "Traceback" not in compressed_node.log(), compressed_node.log()
