"""Metric scale in the bag tools: process with a reference depth topic, and evaluate's scale stability over time."""

import json

import numpy as np
import pytest
from bag_helpers import INPUT_SIZE, by_topic, depth_fields, read_bag, write_bag

from depth_anything_ros.bag import messages
from depth_anything_ros.bag.evaluate import EvaluateOptions, evaluate_bag
from depth_anything_ros.bag.process import ProcessOptions, process_bag
from depth_anything_ros.bag.sample import SampleConfig, write_sample_bag
from depth_anything_ros.cli import main
from depth_anything_ros.frame import image_codec
from depth_anything_ros.models.v2.estimator import DepthEstimator

FRAMES = 6


@pytest.fixture(scope="module")
def sample_bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("sample") / "bag"
    write_sample_bag(path, SampleConfig(width=160, height=120, frames=FRAMES))
    return path


def test_evaluate_reports_a_scale_that_changes_halfway(tmp_path, sample_bag):
    """Predictions = ground truth for the first half, x 1.25 for the second: per-frame scales 1.0 then 0.8."""
    records = []
    for k, r in enumerate(x for x in read_bag(sample_bag) if x.topic == "/camera/depth_gt"):
        gt = image_codec.depth_from_image(r.msg)
        pred = np.where(np.isfinite(gt), gt * np.float32(1.0 if k < FRAMES // 2 else 1.25), np.nan).astype(np.float32)
        records.append(("/gt", messages.IMAGE, r.log_time, r.msg))
        records.append(("/pred", messages.IMAGE, r.log_time, messages.image(r.msg.header, depth_fields(pred, "32FC1"))))
    bag = write_bag(tmp_path / "bag", records)
    result = evaluate_bag(bag, None, EvaluateOptions(gt_topic="/gt", pred_topic="/pred", align="scale",
                                                     report=tmp_path / "report", progress=False))
    stability = result.scale_stability
    assert [round(f.frame_scale, 5) for f in result.frames] == [1.0] * (FRAMES // 2) + [0.8] * (FRAMES // 2)
    assert stability["mean"] == pytest.approx(0.9, abs=1e-5) and stability["std"] == pytest.approx(0.1, abs=1e-5)
    assert stability["max_jump"] == pytest.approx(0.2, abs=1e-5)
    assert stability["max_jump_relative"] == pytest.approx(0.2, abs=1e-5)
    assert json.loads((tmp_path / "report" / "metrics.json").read_text())["scale_stability"] == stability
    assert (tmp_path / "report" / "scale_over_time.png").stat().st_size > 0
    assert "largest frame-to-frame change 0.2000 (20.0%)" in result.text()


def test_process_with_a_reference_depth_scales_to_it(tmp_path, sample_bag, synthetic_vits_checkpoint, capsys):
    """Reference = the model's own unscaled depth x 0.8 (16UC1 mm): the written depth is the reference's scale."""
    est = DepthEstimator(synthetic_vits_checkpoint, max_depth=20.0, device="cpu", input_size=INPUT_SIZE)
    process_bag(sample_bag, tmp_path / "plain", est, ProcessOptions(progress=False, outputs=("depth",)))
    plain = by_topic(read_bag(tmp_path / "plain"))
    unscaled = [image_codec.depth_from_image(r.msg) for r in plain["/camera/depth"]]
    records = [(r.topic, r.msgtype, r.log_time, r.msg) for r in read_bag(sample_bag)]
    for r, depth in zip(plain["/camera/image"], unscaled, strict=True):
        fields = depth_fields((depth * np.float32(0.8)).astype(np.float32), "16UC1")
        records.append(("/camera/reference", messages.IMAGE, r.log_time + 3_000_000,  # logged after its image
                        messages.image(r.msg.header, fields)))
    write_bag(tmp_path / "in", records)
    code = main(["bag", "process", str(tmp_path / "in"), str(tmp_path / "out"), "--checkpoint",
                 str(synthetic_vits_checkpoint), "--model-max-depth", "20", "--input-size", str(INPUT_SIZE),
                 "--device", "cpu", "--topics", "depth", "--scale-reference", "/camera/reference", "--no-progress"])
    assert code == 0
    assert f"metric scale: {FRAMES} of {FRAMES} frames had a fit of their own" in capsys.readouterr().out
    out = by_topic(read_bag(tmp_path / "out"))["/camera/depth"]
    assert len(out) == FRAMES
    for r, depth in zip(out, unscaled, strict=True):
        scaled = image_codec.depth_from_image(r.msg)
        ratio = scaled[np.isfinite(scaled)] / depth[np.isfinite(scaled)]
        assert np.median(ratio) == pytest.approx(0.8, rel=0.01)  # millimetre rounding of the reference only


def test_process_with_a_camera_height_says_how_many_frames_had_a_floor(tmp_path, sample_bag,
                                                                       synthetic_vits_checkpoint, capsys):
    """Random weights see no floor: every frame keeps the initial scale, and the summary says so."""
    code = main(["bag", "process", str(sample_bag), str(tmp_path / "out"), "--checkpoint",
                 str(synthetic_vits_checkpoint), "--model-max-depth", "20", "--input-size", str(INPUT_SIZE),
                 "--device", "cpu", "--topics", "depth", "--camera-height", "1.2", "--no-progress"])
    assert code == 0
    text = capsys.readouterr().out
    assert f"of {FRAMES} frames had a fit of their own" in text and "last scale applied" in text
    assert len(by_topic(read_bag(tmp_path / "out"))["/camera/depth"]) == FRAMES
