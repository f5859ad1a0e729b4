"""Reports carry what made them: model, its sha256, synthetic weights, package version; another camera's GT warns."""

import hashlib
import json
from importlib import metadata

import numpy as np
import pytest
from bag_helpers import INPUT_SIZE, SMALL, by_topic, read_bag, write_bag

from depth_anything_ros.bag import messages
from depth_anything_ros.bag.evaluate import EvaluateOptions, evaluate_bag
from depth_anything_ros.bag.process import ProcessOptions, process_bag
from depth_anything_ros.bag.sample import SampleConfig, write_sample_bag
from depth_anything_ros.frame import image_codec
from depth_anything_ros.frame.camera import CameraInfo
from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint
from depth_anything_ros.models.v2.estimator import DepthEstimator


@pytest.fixture(scope="module")
def marked_checkpoint(tmp_path_factory):
    return write_synthetic_checkpoint(tmp_path_factory.mktemp("ckpt") / "random_vits.safetensors", "vits", seed=1)


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_processed_bag_records_the_model_and_evaluate_reports_it(tmp_path, marked_checkpoint):
    write_sample_bag(tmp_path / "in", SampleConfig(**SMALL))
    est = DepthEstimator(marked_checkpoint, max_depth=20.0, device="cpu", input_size=INPUT_SIZE)
    process_bag(tmp_path / "in", tmp_path / "out", est, ProcessOptions(progress=False, outputs=("depth",)))
    result = evaluate_bag(tmp_path / "out", None, EvaluateOptions(
        gt_topic="/camera/depth_gt", pred_topic="/camera/depth", report=tmp_path / "report", progress=False))
    report = json.loads((tmp_path / "report" / "metrics.json").read_text())
    model = report["provenance"]["model"]
    assert model["sha256"] == sha256(marked_checkpoint) and model["synthetic"] is True
    assert (model["encoder"], model["input_size"], model["precision"], model["max_depth"]) == (
        "vits", INPUT_SIZE, "float32", 20.0)
    assert report["provenance"]["model_origin"].startswith("recorded by bag process")
    assert report["provenance"]["package_version"] == metadata.version("depth_anything_ros")
    assert report["provenance"]["prediction_topic"] == "/camera/depth"
    assert "SYNTHETIC WEIGHTS: random_vits.safetensors (vits, input 70" in result.text()


def test_model_run_by_evaluate_is_named_and_real_weights_are_not_called_synthetic(tmp_path,
                                                                                   synthetic_vits_checkpoint):
    write_sample_bag(tmp_path / "in", SampleConfig(**SMALL))
    est = DepthEstimator(synthetic_vits_checkpoint, max_depth=20.0, device="cpu", input_size=INPUT_SIZE)
    result = evaluate_bag(tmp_path / "in", est, EvaluateOptions(gt_topic="/camera/depth_gt", progress=False))
    model = result.to_json()["provenance"]["model"]
    assert model["path"] == str(synthetic_vits_checkpoint) and model["sha256"] == sha256(synthetic_vits_checkpoint)
    assert model["synthetic"] is False  # a plain .pth says nothing about its weights
    assert result.to_json()["provenance"]["model_origin"] == "run by bag evaluate"
    assert result.warnings == []  # the sample bag's ground truth is the image's own camera


def test_ground_truth_of_another_camera_warns(tmp_path):
    """RealSense layout: colour and depth have their own frame_id and intrinsics (depth not aligned to colour)."""
    write_sample_bag(tmp_path / "in", SampleConfig(**SMALL))
    color_info = CameraInfo.pinhole(160, 120, 120.0, 120.0, 79.5, 59.5)
    depth_info = CameraInfo.pinhole(160, 120, 95.0, 95.0, 82.0, 61.0)
    records = []
    for r in read_bag(tmp_path / "in"):
        stamp = messages.stamp_ns(r.msg.header)
        if r.topic == "/camera/image":
            hdr = messages.header(stamp, "camera_color_optical_frame")
            records.append(("/camera/color/image_raw", r.msgtype, r.log_time, messages.image(hdr, {
                "height": r.msg.height, "width": r.msg.width, "encoding": r.msg.encoding, "is_bigendian": 0,
                "step": r.msg.step, "data": r.msg.data})))
            records.append(("/camera/color/camera_info", messages.CAMERA_INFO, r.log_time,
                            messages.camera_info(hdr, color_info)))
        elif r.topic == "/camera/depth_gt":
            hdr = messages.header(stamp, "camera_depth_optical_frame")
            depth = image_codec.depth_from_image(r.msg)
            records.append(("/camera/depth/image_rect_raw", r.msgtype, r.log_time,
                            messages.image(hdr, image_codec.depth_image_fields(np.ascontiguousarray(depth)))))
            records.append(("/camera/depth/camera_info", messages.CAMERA_INFO, r.log_time,
                            messages.camera_info(hdr, depth_info)))
    write_bag(tmp_path / "rs", records)
    assert set(by_topic(read_bag(tmp_path / "rs"))) == {"/camera/color/image_raw", "/camera/color/camera_info",
                                                        "/camera/depth/image_rect_raw", "/camera/depth/camera_info"}
    result = evaluate_bag(tmp_path / "rs", None, EvaluateOptions(
        gt_topic="/camera/depth/image_rect_raw", pred_topic="/camera/depth/image_rect_raw",
        image_topic="/camera/color/image_raw", progress=False))
    text = " ".join(result.warnings)
    assert "'camera_depth_optical_frame' but the images are in 'camera_color_optical_frame'" in text, text
    assert "fx 95.0" in text and "fx 120.0" in text, text
    assert result.to_json()["warnings"] == result.warnings
