"""Sample bag: topics, stamps, both ground-truth encodings, and depth that lies exactly on the scene's surfaces."""

import numpy as np
import pytest
from bag_helpers import SMALL, by_topic, read_bag

from depth_anything_ros.bag import messages
from depth_anything_ros.bag.bagfile import BagError
from depth_anything_ros.bag.sample import BOXES, ROOM_HI, ROOM_LO, SampleConfig, camera_pose, write_sample_bag
from depth_anything_ros.cli import main
from depth_anything_ros.frame import image_codec
from depth_anything_ros.frame.camera import Intrinsics
from depth_anything_ros.frame.rays import ray_grid


def _surface_distance(points: np.ndarray) -> np.ndarray:
    """Distance (N,) of world points (N,3) to the nearest room wall or box face."""
    dist = np.min(np.abs(np.concatenate([points - ROOM_LO, points - ROOM_HI], axis=1)), axis=1)
    for box in BOXES:
        lo, hi = np.array(box.lo), np.array(box.hi)
        inside = np.all((points >= lo - 1e-3) & (points <= hi + 1e-3), axis=1)
        faces = np.min(np.abs(np.concatenate([points - lo, points - hi], axis=1)), axis=1)
        dist = np.where(inside, np.minimum(dist, faces), dist)
    return dist


@pytest.mark.parametrize("distortion", [False, True])
def test_sample_bag_topics_stamps_and_exact_depth(tmp_path, distortion):
    cfg = SampleConfig(**SMALL, distortion=distortion)
    topics = write_sample_bag(tmp_path / "bag", cfg)
    records = by_topic(read_bag(tmp_path / "bag"))
    assert set(records) == set(topics.values())
    assert {t: records[t][0].msgtype for t in topics.values()} == {
        "/camera/image": messages.IMAGE, "/camera/camera_info": messages.CAMERA_INFO,
        "/camera/depth_gt": messages.IMAGE, "/camera/depth_gt_mm": messages.IMAGE}
    stamps = None
    for topic, recs in records.items():
        assert len(recs) == cfg.frames
        msgs = [r.msg for r in recs]
        assert all(m.header.frame_id == "camera_optical_frame" for m in msgs)
        these = [messages.stamp_ns(m.header) for m in msgs]
        assert [r.log_time for r in recs] == [s + cfg.latency_ns for s in these]
        stamps = stamps or these
        assert these == stamps, topic
    assert np.all(np.diff(stamps) == round(1e9 / cfg.rate))

    info = records["/camera/camera_info"][0].msg
    intr = Intrinsics.from_camera_info(info)
    assert (intr.width, intr.height) == (cfg.width, cfg.height)
    assert info.distortion_model == "plumb_bob"
    assert intr.has_distortion == distortion
    rays = ray_grid(intr, undistort=True).reshape(-1, 3).astype(np.float64)
    for k in range(cfg.frames):
        image = records["/camera/image"][k].msg
        rgb, encoding = image_codec.decode_image(image)
        assert encoding == "rgb8" and rgb.shape == (cfg.height, cfg.width, 3) and rgb.std() > 10
        metres = image_codec.depth_from_image(records["/camera/depth_gt"][k].msg)
        millimetres = image_codec.depth_from_image(records["/camera/depth_gt_mm"][k].msg)
        valid = np.isfinite(metres)
        assert 0.0 < (~valid).mean() < 0.2  # the glass pane has no ground truth ...
        assert np.array_equal(valid, np.isfinite(millimetres))  # ... in both encodings
        assert np.max(np.abs(metres[valid] - millimetres[valid])) <= 0.0005 + 1e-6
        # Back-projected ground truth lies on a wall or a box face: the depth is exact z-depth.
        rotation, position = camera_pose(k, cfg.frames)
        points = position + (rays * metres.reshape(-1, 1).astype(np.float64)) @ rotation.T
        on_surface = _surface_distance(points[valid.reshape(-1)])
        assert on_surface.max() < 1e-4


def test_sample_bag_jpeg_bgr_and_sqlite3(tmp_path):
    topics = write_sample_bag(tmp_path / "jpeg", SampleConfig(**SMALL, encoding="jpeg", storage="sqlite3"))
    assert topics["image"] == "/camera/image/compressed"
    assert (tmp_path / "jpeg" / "jpeg.db3").exists()
    records = by_topic(read_bag(tmp_path / "jpeg"))
    msg = records["/camera/image/compressed"][0].msg
    assert records["/camera/image/compressed"][0].msgtype == messages.COMPRESSED_IMAGE
    pixels, encoding = image_codec.decode_compressed(msg)
    assert encoding == "bgr8" and pixels.shape == (SMALL["height"], SMALL["width"], 3)

    write_sample_bag(tmp_path / "bgr", SampleConfig(**SMALL, encoding="bgr8"))
    bgr, encoding = image_codec.decode_image(by_topic(read_bag(tmp_path / "bgr"))["/camera/image"][0].msg)
    assert encoding == "bgr8"
    write_sample_bag(tmp_path / "rgb", SampleConfig(**SMALL))
    rgb, _ = image_codec.decode_image(by_topic(read_bag(tmp_path / "rgb"))["/camera/image"][0].msg)
    assert np.array_equal(bgr[..., ::-1], rgb)


def test_sample_refuses_existing_output_and_bad_config(tmp_path):
    write_sample_bag(tmp_path / "bag", SampleConfig(**SMALL))
    with pytest.raises(BagError, match="exists already"):
        write_sample_bag(tmp_path / "bag", SampleConfig(**SMALL))
    with pytest.raises(ValueError, match="encoding"):
        write_sample_bag(tmp_path / "other", SampleConfig(**SMALL, encoding="yuv422"))


def test_bag_sample_command(tmp_path, capsys):
    assert main(["bag", "sample", str(tmp_path / "bag"), "--frames", "3", "--width", "64", "--height", "48",
                 "--namespace", "/front", "--storage", "sqlite3"]) == 0
    assert "/front/depth_gt_mm" in capsys.readouterr().out
    assert len(by_topic(read_bag(tmp_path / "bag"))["/front/image"]) == 3
    assert main(["bag", "sample", str(tmp_path / "bag")]) == 2
    assert "exists already" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["sample", "process", "evaluate", "play", "record"])
def test_every_bag_option_is_explained(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bag", command, "--help"])
    assert exit_info.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    options = [i for i, line in enumerate(lines) if line.strip().startswith("--") and "--help" not in line]
    assert options
    for i in options:
        # argparse puts the help text on the option's line, or on the next line when the option is long.
        same_line = len([w for w in lines[i].strip().split("  ") if w.strip()]) > 1
        next_line = i + 1 < len(lines) and lines[i + 1].strip() and not lines[i + 1].strip().startswith("-")
        assert same_line or next_line, f"bag {command}: {lines[i].strip()} has no help text"
