"""bag process: output bags readable by rosbags with the node's topics, stamps and types; errors; Ctrl-C."""

import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from bag_helpers import INPUT_SIZE, SMALL, by_topic, read_bag, write_bag

from depth_anything_ros.bag import messages
from depth_anything_ros.bag.bagfile import BagError
from depth_anything_ros.bag.process import ProcessOptions, process_bag
from depth_anything_ros.bag.sample import SampleConfig, write_sample_bag
from depth_anything_ros.cli import main
from depth_anything_ros.frame import image_codec
from depth_anything_ros.frame.camera import Intrinsics
from depth_anything_ros.frame.geometry import points_from_cloud
from depth_anything_ros.frame.pipeline import FrameOptions
from depth_anything_ros.frame.rays import ray_grid
from depth_anything_ros.models.v2.estimator import DepthEstimator

OUT_TYPES = {"/camera/depth": messages.IMAGE, "/camera/depth/camera_info": messages.CAMERA_INFO,
             "/camera/points": messages.POINT_CLOUD2, "/camera/depth/colored": messages.IMAGE}


@pytest.fixture(scope="module")
def estimator(synthetic_vits_checkpoint):
    return DepthEstimator(synthetic_vits_checkpoint, encoder="vits", max_depth=20.0, device="cpu",
                          input_size=INPUT_SIZE)


@pytest.fixture(scope="module")
def sample_bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("sample") / "bag"
    write_sample_bag(path, SampleConfig(**SMALL, distortion=True))
    return path


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_process_writes_node_outputs_with_input_stamps(tmp_path, estimator, sample_bag, storage):
    summary = process_bag(sample_bag, tmp_path / "out", estimator,
                          ProcessOptions(storage=storage, batch=2, progress=False))
    assert (summary.frames_done, summary.frames_total, summary.interrupted) == (5, 5, False)
    assert (tmp_path / "out" / f"out.{'mcap' if storage == 'mcap' else 'db3'}").exists()
    src = by_topic(read_bag(sample_bag))
    out = by_topic(read_bag(tmp_path / "out"))
    assert set(out) == set(src) | set(OUT_TYPES)
    for topic, recs in src.items():  # input topics copied unchanged, at their log times
        assert [(r.raw, r.log_time) for r in out[topic]] == [(r.raw, r.log_time) for r in recs]
    images = src["/camera/image"]
    info = src["/camera/camera_info"][0].msg
    rays = ray_grid(Intrinsics.from_camera_info(info), undistort=True)
    for topic, msgtype in OUT_TYPES.items():
        recs = out[topic]
        assert len(recs) == len(images) and {r.msgtype for r in recs} == {msgtype}
        assert [r.log_time for r in recs] == [r.log_time for r in images]
        assert [r.msg.header for r in recs] == [r.msg.header for r in images]
    for k in range(len(images)):
        depth_msg = out["/camera/depth"][k].msg
        assert depth_msg.encoding == "32FC1"
        depth = image_codec.depth_from_image(depth_msg)
        assert depth.shape == (SMALL["height"], SMALL["width"])
        assert np.all(np.isfinite(depth)) and np.all((depth > 0) & (depth < 20.0))
        depth_info = out["/camera/depth/camera_info"][k].msg
        assert np.array_equal(depth_info.k, info.k) and np.array_equal(depth_info.d, info.d)
        assert np.array_equal(depth_info.p, info.p) and depth_info.distortion_model == "plumb_bob"
        cloud = out["/camera/points"][k].msg
        assert (cloud.height, cloud.width, cloud.point_step, cloud.is_dense) == (120, 160, 16, False)
        assert [f.name for f in cloud.fields] == ["x", "y", "z", "rgb"]
        xyz, colour = points_from_cloud(cloud.data.tobytes(), cloud.height, cloud.width, cloud.point_step,
                                        cloud.fields)
        ok = np.isfinite(rays[..., 0])
        np.testing.assert_allclose(xyz[ok], rays[ok] * depth[ok][:, None], rtol=1e-6)  # the node's geometry
        rgb, _ = image_codec.decode_image(images[k].msg)
        assert np.array_equal(colour, rgb)
        colored = out["/camera/depth/colored"][k].msg
        assert (colored.encoding, colored.height, colored.width) == ("rgb8", 120, 160)


def test_process_selected_outputs_scale_compressed_input_and_cli(tmp_path, estimator, synthetic_vits_checkpoint):
    write_sample_bag(tmp_path / "in", SampleConfig(**SMALL, encoding="jpeg", namespace="/front"))
    process_bag(tmp_path / "in", tmp_path / "plain", estimator, ProcessOptions(progress=False, outputs=("depth",)))
    process_bag(tmp_path / "in", tmp_path / "scaled", estimator,
                ProcessOptions(progress=False, outputs=("depth", "points"),
                               frame=FrameOptions(depth_scale=0.5, cloud_stride=4, cloud_organized=False,
                                                  cloud_color=False)))
    plain, scaled = by_topic(read_bag(tmp_path / "plain")), by_topic(read_bag(tmp_path / "scaled"))
    assert "/front/points" not in plain and "/front/depth/colored" not in scaled
    d1 = image_codec.depth_from_image(plain["/front/depth"][0].msg)
    d2 = image_codec.depth_from_image(scaled["/front/depth"][0].msg)
    np.testing.assert_allclose(d2, d1 * 0.5, rtol=1e-6)
    cloud = scaled["/front/points"][0].msg
    assert cloud.height == 1 and cloud.is_dense and [f.name for f in cloud.fields] == ["x", "y", "z"]
    assert cloud.width == 30 * 40

    code = main(["bag", "process", str(tmp_path / "in"), str(tmp_path / "cli"), "--checkpoint",
                 str(synthetic_vits_checkpoint), "--encoder", "vits", "--model-max-depth", "20", "--input-size",
                 str(INPUT_SIZE), "--device", "cpu", "--batch", "3", "--topics", "depth,colored", "--no-progress"])
    assert code == 0
    out = by_topic(read_bag(tmp_path / "cli"))
    assert len(out["/front/depth"]) == len(out["/front/depth/colored"]) == SMALL["frames"]
    assert "/front/points" not in out


def test_image_topic_must_be_unambiguous(tmp_path, estimator, sample_bag):
    process_bag(sample_bag, tmp_path / "once", estimator, ProcessOptions(progress=False))
    with pytest.raises(BagError, match="several image topics.*--image-topic.*/camera/depth/colored.*/camera/image"):
        process_bag(tmp_path / "once", tmp_path / "twice", estimator, ProcessOptions(progress=False))
    with pytest.raises(BagError, match="already has /camera/depth"):
        process_bag(tmp_path / "once", tmp_path / "twice", estimator,
                    ProcessOptions(progress=False, image_topic="/camera/image"))
    with pytest.raises(BagError, match="/nope is not in bag"):
        process_bag(sample_bag, tmp_path / "x", estimator, ProcessOptions(progress=False, image_topic="/nope"))
    with pytest.raises(BagError, match="exists already"):
        process_bag(sample_bag, tmp_path / "once", estimator, ProcessOptions(progress=False))
    assert not (tmp_path / "twice").exists() and not (tmp_path / "x").exists()


def test_bag_without_camera_info_needs_fov(tmp_path, estimator, sample_bag):
    images = [(r.topic, r.msgtype, r.log_time, r.msg) for r in read_bag(sample_bag) if r.topic == "/camera/image"]
    write_bag(tmp_path / "in", images)
    with pytest.raises(BagError, match="no sensor_msgs/msg/CameraInfo topic.*--fov"):
        process_bag(tmp_path / "in", tmp_path / "out", estimator, ProcessOptions(progress=False))
    process_bag(tmp_path / "in", tmp_path / "depth_only", estimator,
                ProcessOptions(progress=False, outputs=("depth", "colored")))
    process_bag(tmp_path / "in", tmp_path / "fov", estimator, ProcessOptions(progress=False, fov_deg=70.0))
    info = by_topic(read_bag(tmp_path / "fov"))["/camera/depth/camera_info"][0].msg
    got, expected = Intrinsics.from_camera_info(info), Intrinsics.from_fov(160, 120, 70.0)
    assert (got.fx, got.fy, got.cx, got.cy, got.width, got.height) == (
        expected.fx, expected.fy, expected.cx, expected.cy, 160, 120)
    assert info.distortion_model == "plumb_bob" and not got.has_distortion


def test_unknown_encoding_is_a_clear_error(tmp_path, estimator, sample_bag):
    records = []
    for r in read_bag(sample_bag):
        msg = r.msg
        if r.topic == "/camera/image":
            msg = messages.image(msg.header, {"height": msg.height, "width": msg.width, "encoding": "yuv420_weird",
                                              "is_bigendian": 0, "step": msg.step, "data": msg.data})
        records.append((r.topic, r.msgtype, r.log_time, msg))
    write_bag(tmp_path / "in", records, storage="sqlite3")
    with pytest.raises(BagError, match=r"/camera/image message at stamp 1700000000\.0+ s: image rejected: "
                                       r"unsupported image encoding 'yuv420_weird'.*--strict"):
        process_bag(tmp_path / "in", tmp_path / "out", estimator, ProcessOptions(progress=False, strict=True))
    assert by_topic(read_bag(tmp_path / "out")) is not None  # the partial output is still a valid bag
    summary = process_bag(tmp_path / "in", tmp_path / "lenient", estimator, ProcessOptions(progress=False))
    frames = SMALL["frames"]
    assert summary.frames_done == frames and summary.skipped == dict.fromkeys(
        ("depth", "camera_info", "points", "colored"), frames)
    assert f"skipped: depth of {frames} frame(s)" in summary.text()
    assert "/camera/depth" not in by_topic(read_bag(tmp_path / "lenient"))


def test_ctrl_c_leaves_a_readable_bag(tmp_path, synthetic_vits_checkpoint, ros_env, cli):
    frames = 40
    write_sample_bag(tmp_path / "in", SampleConfig(width=160, height=120, frames=frames))
    command = [*cli, "bag", "process", str(tmp_path / "in"), str(tmp_path / "out"), "--checkpoint",
               str(synthetic_vits_checkpoint), "--encoder", "vits", "--model-max-depth", "20", "--device", "cpu",
               "--input-size", "518"]
    proc = subprocess.Popen(command, env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.extend(iter(lambda: proc.stderr.read(1), "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 300
    while not re.search(rf"\b[1-9]\d*/{frames}\b", "".join(stderr)):
        assert proc.poll() is None, "".join(stderr)
        assert time.monotonic() < deadline, "no frame processed in time"
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout = proc.communicate(timeout=300)[0]
    reader.join(timeout=5)
    assert proc.returncode == 130, "".join(stderr)
    assert "INTERRUPTED" in stdout
    out = by_topic(read_bag(tmp_path / "out"))
    done = len(out["/camera/depth"])
    assert 1 <= done < frames
    for topic in OUT_TYPES:
        assert len(out[topic]) == done
    assert {messages.stamp_ns(r.msg.header) for r in out["/camera/points"]} <= {
        messages.stamp_ns(r.msg.header) for r in out["/camera/image"]}


def test_benchmark_script_runs(tmp_path, ros_env):
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "bag_process_fps.py"
    result = subprocess.run([sys.executable, str(script), "--quick", "--device", "cpu", "--json",
                             str(tmp_path / "out.json")], env=ros_env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "frames/s" in result.stdout
    rows = json.loads((tmp_path / "out.json").read_text())["results"]
    assert rows[0]["frames"] == 3 and rows[0]["fps"] > 0
