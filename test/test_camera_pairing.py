"""bag process: the CameraInfo topic an image topic gets (RealSense layout, resizes, ambiguity); --output-namespace."""

import numpy as np
import pytest
from bag_helpers import INPUT_SIZE, by_topic, read_bag, write_bag

from depth_anything_ros.bag import bagfile, messages
from depth_anything_ros.bag.bagfile import BagError
from depth_anything_ros.bag.process import ProcessOptions, output_topics, pick_camera_info_topic, process_bag
from depth_anything_ros.bag.bagfile import check_namespace
from depth_anything_ros.cli import main
from depth_anything_ros.frame import image_codec
from depth_anything_ros.frame.camera import CameraInfo
from depth_anything_ros.models.v2.estimator import DepthEstimator

W, H, FRAMES = 64, 48, 2
COLOR = "/device_0/sensor_1/Color_0"
DEPTH = "/device_0/sensor_0/Depth_0"
COLOR_IMAGE, COLOR_INFO = f"{COLOR}/image/data", f"{COLOR}/info/camera_info"
DEPTH_IMAGE, DEPTH_INFO = f"{DEPTH}/image/data", f"{DEPTH}/info/camera_info"
COLOR_FRAME, DEPTH_FRAME = "camera_color_optical_frame", "camera_depth_optical_frame"
STAMP0 = 1_700_000_000_000_000_000


def _rgb(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8)


def _records(infos: dict[str, tuple[int, int, str]], image_frame: str = COLOR_FRAME) -> list[tuple]:
    """Colour images on COLOR_IMAGE, 16UC1 depth on DEPTH_IMAGE, and CameraInfo topic -> (width, height, frame_id)."""
    records = []
    for k in range(FRAMES):
        stamp = STAMP0 + k * 100_000_000
        image = {"height": H, "width": W, "encoding": "rgb8", "is_bigendian": 0, "step": W * 3,
                 "data": _rgb(k).tobytes()}
        records.append((COLOR_IMAGE, messages.IMAGE, stamp, messages.image(messages.header(stamp, image_frame),
                                                                           image)))
        depth = image_codec.depth_image_fields(np.full((H, W), 2.0, np.float32))
        records.append((DEPTH_IMAGE, messages.IMAGE, stamp, messages.image(messages.header(stamp, DEPTH_FRAME),
                                                                           depth)))
        for topic, (width, height, frame_id) in infos.items():
            info = CameraInfo.pinhole(width, height, 0.8 * width, 0.8 * width, width / 2, height / 2)
            records.append((topic, messages.CAMERA_INFO, stamp, messages.camera_info(
                messages.header(stamp, frame_id), info)))
    return records


def _realsense_bag(path, extra: dict[str, tuple[int, int, str]] | None = None, image_frame: str = COLOR_FRAME):
    infos = {COLOR_INFO: (W, H, COLOR_FRAME), DEPTH_INFO: (W // 2, H // 2, DEPTH_FRAME), **(extra or {})}
    return write_bag(path, _records(infos, image_frame))


def _pick(path, requested=None, image_topic=COLOR_IMAGE, **kwargs):
    reader = bagfile.open_reader(path)
    try:
        return pick_camera_info_topic(reader, requested, image_topic, **kwargs)
    finally:
        reader.close()


@pytest.fixture(scope="module")
def estimator(synthetic_vits_checkpoint):
    return DepthEstimator(synthetic_vits_checkpoint, encoder="vits", max_depth=20.0, device="cpu",
                          input_size=INPUT_SIZE)


def test_realsense_layout_pairs_by_frame_id_and_size(tmp_path, capsys):
    bag = _realsense_bag(tmp_path / "rs")
    assert _pick(bag) == COLOR_INFO
    err = capsys.readouterr().err
    assert f"camera_info of {COLOR_IMAGE} from {COLOR_INFO}" in err and "--camera-info-topic" in err
    assert _pick(bag, requested=DEPTH_INFO) == DEPTH_INFO  # an explicit choice is taken as it is
    assert capsys.readouterr().err == ""


def test_uniform_resize_matches_and_other_sizes_do_not(tmp_path):
    resized = write_bag(tmp_path / "resized", _records({COLOR_INFO: (2 * W, 2 * H, COLOR_FRAME),
                                                        DEPTH_INFO: (W, H, DEPTH_FRAME)}))
    assert _pick(resized) == COLOR_INFO  # the image is the camera_info's size halved
    stretched = write_bag(tmp_path / "stretched", _records({COLOR_INFO: (W, 2 * H, COLOR_FRAME)}))
    with pytest.raises(BagError, match=rf"no CameraInfo topic matches {COLOR_IMAGE} \({W}x{H}, frame_id "
                                       rf"'{COLOR_FRAME}'\): {COLOR_INFO} \({W}x{2 * H}, .*size is not the "
                                       r"image's.*--camera-info-topic"):
        _pick(stretched)


def test_ambiguous_candidates_are_listed(tmp_path):
    bag = _realsense_bag(tmp_path / "two", extra={"/backup/info/camera_info": (W, H, COLOR_FRAME)})
    with pytest.raises(BagError) as info:
        _pick(bag)
    text = str(info.value)
    assert f"several CameraInfo topics match {COLOR_IMAGE}" in text
    assert f"/backup/info/camera_info, {COLOR_INFO}" in text and "--camera-info-topic" in text
    assert DEPTH_INFO not in text  # only the matching ones are candidates
    assert _pick(bag, required=False) is None  # e.g. with --fov: a note instead, no camera_info


def test_no_match_lists_every_candidate_with_the_reason(tmp_path, capsys):
    bag = _realsense_bag(tmp_path / "other", image_frame="some_other_frame")
    with pytest.raises(BagError) as info:
        _pick(bag)
    text = str(info.value)
    assert f"{COLOR_INFO} ({W}x{H}, frame_id '{COLOR_FRAME}': other frame_id)" in text
    assert f"{DEPTH_INFO} ({W // 2}x{H // 2}, frame_id '{DEPTH_FRAME}': other frame_id)" in text
    assert "--camera-info-topic" in text and "--fov" in text
    assert _pick(bag, required=False) is None
    assert "note: no camera_info used" in capsys.readouterr().err


def test_sibling_camera_info_wins(tmp_path):
    bag = _realsense_bag(tmp_path / "sibling", extra={f"{COLOR}/image/camera_info": (W, 2 * H, "elsewhere")})
    assert _pick(bag) == f"{COLOR}/image/camera_info"  # <ns>/camera_info is taken without checks, as before


def test_namespace_rules():
    assert check_namespace("cam") == "/cam" and check_namespace("/robot/front/") == "/robot/front"
    assert check_namespace("/") == check_namespace("") == ""  # the root namespace: /depth, /points, ...
    for bad in ("1cam", "a b", "a//b", "cam-1"):
        with pytest.raises(BagError, match="invalid --output-namespace"):
            check_namespace(bad)
    assert output_topics(COLOR_IMAGE) == {"depth": f"{COLOR}/image/depth", "points": f"{COLOR}/image/points",
                                          "camera_info": f"{COLOR}/image/depth/camera_info",
                                          "colored": f"{COLOR}/image/depth/colored",
                                          "scan": f"{COLOR}/image/scan",
                                          "confidence": f"{COLOR}/image/depth/confidence"}
    assert output_topics(COLOR_IMAGE, "/") == {"depth": "/depth", "camera_info": "/depth/camera_info",
                                               "points": "/points", "colored": "/depth/colored",
                                               "scan": "/scan", "confidence": "/depth/confidence"}


def test_process_realsense_bag_into_output_namespace(tmp_path, estimator, capsys):
    bag = _realsense_bag(tmp_path / "rs")
    summary = process_bag(bag, tmp_path / "out", estimator, ProcessOptions(output_namespace="/camera",
                                                                           progress=False))
    assert summary.frames_done == FRAMES and "/camera/depth: 2 messages" in summary.text()
    assert f"from {COLOR_INFO}" in capsys.readouterr().err
    out = by_topic(read_bag(tmp_path / "out"))
    for topic in ("/camera/depth", "/camera/depth/camera_info", "/camera/points", "/camera/depth/colored"):
        assert len(out[topic]) == FRAMES
        assert [r.msg.header.frame_id for r in out[topic]] == [COLOR_FRAME] * FRAMES
    assert set(out) == {COLOR_IMAGE, COLOR_INFO, DEPTH_IMAGE, DEPTH_INFO, "/camera/depth", "/camera/depth/camera_info",
                        "/camera/points", "/camera/depth/colored"}
    depth_info = out["/camera/depth/camera_info"][0].msg
    assert np.array_equal(depth_info.k, out[COLOR_INFO][0].msg.k)  # the colour camera's intrinsics, not depth's


def test_cli_output_namespace_and_clash_hint(tmp_path, synthetic_vits_checkpoint, capsys):
    bag = _realsense_bag(tmp_path / "rs")
    model = ["--checkpoint", str(synthetic_vits_checkpoint), "--model-max-depth", "20", "--input-size",
             str(INPUT_SIZE), "--device", "cpu", "--no-progress"]
    assert main(["bag", "process", str(bag), str(tmp_path / "a"), "--output-namespace", "front", "--topics",
                 "depth", *model]) == 0
    assert len(by_topic(read_bag(tmp_path / "a"))["/front/depth"]) == FRAMES
    capsys.readouterr()
    assert main(["bag", "process", str(tmp_path / "a"), str(tmp_path / "b"), "--image-topic", COLOR_IMAGE,
                 "--output-namespace", "/front", "--topics", "depth", *model]) == 2
    err = capsys.readouterr().err
    assert "already has /front/depth" in err and "--output-namespace" in err
    assert not (tmp_path / "b").exists()
