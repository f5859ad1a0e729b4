"""bag evaluate: hand-checked metrics on constructed bags, both GT encodings, the model path and the report."""

import csv
import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from bag_helpers import INPUT_SIZE, SMALL, by_topic, depth_fields, read_bag, write_bag

from depth_anything_ros.bag import messages
from depth_anything_ros.bag.bagfile import BagError
from depth_anything_ros.bag.evaluate import EvaluateOptions, evaluate_bag
from depth_anything_ros.bag.ground_truth import pair_stamps
from depth_anything_ros.bag.sample import SampleConfig, write_sample_bag
from depth_anything_ros.cli import main
from depth_anything_ros.frame import image_codec
from depth_anything_ros.models.v2.estimator import DepthEstimator

MAX_DEPTH = 5.0  # part of the sample room is farther: those pixels must be ignored


@pytest.fixture(scope="module")
def sample_bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("sample") / "bag"
    write_sample_bag(path, SampleConfig(**SMALL))
    return path


def _constructed_bag(path, sample_bag, gt_encoding, factor=1.1, pred_offset_ns=0):
    """Ground truth from the sample bag in gt_encoding, and /pred = GT x factor, garbage where GT does not count."""
    records = []
    for r in read_bag(sample_bag):
        if r.topic != "/camera/depth_gt":
            continue
        gt_msg = messages.image(r.msg.header, depth_fields(image_codec.depth_from_image(r.msg), gt_encoding))
        gt = image_codec.depth_from_image(gt_msg)  # what evaluate reads (millimetre-rounded for 16UC1)
        counted = np.isfinite(gt) & (gt <= MAX_DEPTH)
        pred = np.where(counted, gt * np.float32(factor), np.float32(1000.0)).astype(np.float32)
        pred_header = messages.header(messages.stamp_ns(r.msg.header) + pred_offset_ns, r.msg.header.frame_id)
        records.append(("/gt", messages.IMAGE, r.log_time, gt_msg))
        records.append(("/pred", messages.IMAGE, r.log_time, messages.image(pred_header, depth_fields(pred, "32FC1"))))
    return write_bag(path, records)


@pytest.mark.parametrize("gt_encoding", ["16UC1", "32FC1"])
def test_ten_percent_too_far_and_scale_alignment(tmp_path, sample_bag, gt_encoding):
    bag = _constructed_bag(tmp_path / "bag", sample_bag, gt_encoding)
    result = evaluate_bag(bag, None, EvaluateOptions(gt_topic="/gt", pred_topic="/pred", align="scale",
                                                     min_depth=0.1, max_depth=MAX_DEPTH, progress=False))
    assert len(result.frames) == SMALL["frames"] and result.skipped == 0
    assert result.overall["abs_rel"] == pytest.approx(0.1, rel=1e-5)
    assert result.overall["rmse_log"] == pytest.approx(math.log(1.1), rel=1e-5)
    assert result.overall["silog"] == pytest.approx(math.log(1.1) * math.sqrt(0.5), rel=1e-4)
    assert (result.overall["d1"], result.overall["d2"], result.overall["d3"]) == (1.0, 1.0, 1.0)
    assert result.depth_scale == pytest.approx(1 / 1.1, rel=1e-6)
    assert result.scale == result.depth_scale and result.shift == 0.0
    assert result.overall_aligned["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert result.overall_aligned["rmse"] == pytest.approx(0.0, abs=1e-5)
    assert result.overall_aligned["d1"] == 1.0
    assert all(f.frame_scale == pytest.approx(1 / 1.1, rel=1e-6) for f in result.frames)
    assert "set depth.scale to 0.909091" in result.text()


def test_both_ground_truth_encodings_agree(tmp_path, sample_bag):
    options = EvaluateOptions(gt_topic="/camera/depth_gt", pred_topic="/pred", progress=False)
    bag = _constructed_bag(tmp_path / "bag", sample_bag, "32FC1", factor=1.3)
    records = [(r.topic, r.msgtype, r.log_time, r.msg) for r in read_bag(bag) if r.topic == "/pred"]
    for topic in ("/camera/depth_gt", "/camera/depth_gt_mm"):
        records += [(r.topic, r.msgtype, r.log_time, r.msg) for r in read_bag(sample_bag) if r.topic == topic]
    both = write_bag(tmp_path / "both", records, storage="sqlite3")
    metres = evaluate_bag(both, None, options)
    millimetres = evaluate_bag(both, None, EvaluateOptions(gt_topic="/camera/depth_gt_mm", pred_topic="/pred",
                                                           progress=False))
    assert [f.valid_pixels for f in metres.frames] == [f.valid_pixels for f in millimetres.frames]
    for name, value in metres.overall.items():
        assert millimetres.overall[name] == pytest.approx(value, rel=1e-3, abs=2e-4), name


def test_stamp_pairing_and_tolerance(tmp_path, sample_bag):
    bag = _constructed_bag(tmp_path / "bag", sample_bag, "32FC1", pred_offset_ns=2_000_000)
    with pytest.raises(BagError, match="same stamp.*--stamp-tolerance"):
        evaluate_bag(bag, None, EvaluateOptions(gt_topic="/gt", pred_topic="/pred", progress=False))
    result = evaluate_bag(bag, None, EvaluateOptions(gt_topic="/gt", pred_topic="/pred", stamp_tolerance=0.003,
                                                     min_depth=0.1, max_depth=MAX_DEPTH, progress=False))
    assert len(result.frames) == SMALL["frames"]
    assert all(f.stamp - f.gt_stamp == 2_000_000 for f in result.frames)
    assert result.overall["abs_rel"] == pytest.approx(0.1, rel=1e-5)
    assert pair_stamps([10, 20, 35], [11, 19, 30], 2) == {10: 11, 20: 19}


def test_scale_shift_alignment(tmp_path, sample_bag):
    records = []
    for r in read_bag(sample_bag):
        if r.topic == "/camera/depth_gt":
            gt = image_codec.depth_from_image(r.msg)
            pred = np.where(np.isfinite(gt), (gt - 0.3) / 2.0, np.nan).astype(np.float32)
            records.append(("/pred", messages.IMAGE, r.log_time, messages.image(r.msg.header, depth_fields(pred,
                                                                                                           "32FC1"))))
            records.append(("/gt", messages.IMAGE, r.log_time, r.msg))
    bag = write_bag(tmp_path / "bag", records)
    result = evaluate_bag(bag, None, EvaluateOptions(gt_topic="/gt", pred_topic="/pred", align="scale_shift",
                                                     progress=False))
    assert result.scale == pytest.approx(2.0, rel=1e-5) and result.shift == pytest.approx(0.3, abs=1e-4)
    assert result.overall_aligned["abs_rel"] == pytest.approx(0.0, abs=1e-5)


def test_model_on_sample_bag_writes_report(tmp_path, sample_bag, synthetic_vits_checkpoint):
    est = DepthEstimator(synthetic_vits_checkpoint, encoder="vits", max_depth=20.0, device="cpu",
                         input_size=INPUT_SIZE)
    report = tmp_path / "report"
    result = evaluate_bag(sample_bag, est, EvaluateOptions(gt_topic="/camera/depth_gt_mm", align="scale", batch=2,
                                                           report=report, progress=False))
    assert result.source == "model on /camera/image" and len(result.frames) == SMALL["frames"]
    data = json.loads((report / "metrics.json").read_text())
    assert data["frames_evaluated"] == SMALL["frames"] and data["align"] == "scale"
    assert data["overall"] == pytest.approx(result.overall) and data["alignment"]["scale"] == result.scale
    rows = list(csv.DictReader((report / "per_frame.csv").open()))
    assert len(rows) == SMALL["frames"] and float(rows[0]["abs_rel"]) == pytest.approx(result.frames[0].metrics[
        "abs_rel"], rel=1e-5)
    assert "aligned_abs_rel" in rows[0]
    for name in ("abs_rel_over_time.png", "error_histogram.png", "pred_vs_gt.png", "best_worst_frames.png"):
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The same prediction through `bag process` then --pred-topic gives the same numbers.
    from depth_anything_ros.bag.process import ProcessOptions, process_bag

    process_bag(sample_bag, tmp_path / "processed", est, ProcessOptions(outputs=("depth",), batch=2, progress=False))
    recorded = evaluate_bag(tmp_path / "processed", None, EvaluateOptions(
        gt_topic="/camera/depth_gt_mm", pred_topic="/camera/depth", align="scale", progress=False))
    assert recorded.overall == pytest.approx(result.overall, rel=1e-5, abs=1e-4)
    assert recorded.depth_scale == pytest.approx(result.depth_scale, rel=1e-5)


def test_bad_ground_truth_is_a_clear_error(tmp_path, sample_bag):
    with pytest.raises(BagError, match="unsupported depth encoding 'rgb8'"):
        evaluate_bag(sample_bag, None, EvaluateOptions(gt_topic="/camera/image", pred_topic="/camera/depth_gt",
                                                       progress=False))
    with pytest.raises(BagError, match="ground-truth depth topic /nope is not in bag"):
        evaluate_bag(sample_bag, None, EvaluateOptions(gt_topic="/nope", pred_topic="/camera/depth_gt",
                                                       progress=False))
    with pytest.raises(BagError, match="expected sensor_msgs/msg/Image"):
        evaluate_bag(sample_bag, None, EvaluateOptions(gt_topic="/camera/camera_info",
                                                       pred_topic="/camera/depth_gt", progress=False))


def test_evaluate_command(tmp_path, sample_bag, capsys):
    bag = _constructed_bag(tmp_path / "bag", sample_bag, "16UC1")
    assert main(["bag", "evaluate", str(bag), "--gt-topic", "/gt", "--pred-topic", "/pred", "--align", "scale",
                 "--gt-min-depth", "0.1", "--gt-max-depth", str(MAX_DEPTH), "--report", str(tmp_path / "r"),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "abs_rel 0.1000" in out and "set depth.scale to 0.909091" in out
    assert (tmp_path / "r" / "metrics.json").exists()
    assert by_topic(read_bag(bag))  # input untouched and readable


def test_demo_without_weights_runs_on_synthetic_weights_and_says_so(tmp_path, cli):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = tmp_path / "demo"
    command = [*cli, "demo", "--out", str(out), "--frames", "3", "--width", "64", "--height", "48",
               "--input-size", str(INPUT_SIZE), "--device", "cpu", "--no-progress"]
    for _ in range(2):  # a second run replaces the first one's results
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
    assert "SYNTHETIC WEIGHTS" in result.stdout and "MEANINGLESS" in result.stdout
    assert "SYNTHETIC WEIGHTS" in result.stderr  # before the run too
    assert "set depth.scale to" in result.stdout
    data = json.loads((out / "report" / "metrics.json").read_text())
    assert data["frames_evaluated"] == 3 and data["align"] == "scale"
    assert len(by_topic(read_bag(out / "processed_bag"))["/camera/depth"]) == 3
    assert (out / "report" / "best_worst_frames.png").exists()
    result = subprocess.run([*command, "--checkpoint", str(tmp_path / "missing.pth"), "--encoder", "vits"],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2 and "missing.pth" in result.stderr and "SYNTHETIC" not in result.stdout
