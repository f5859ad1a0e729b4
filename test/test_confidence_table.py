"""The error-by-confidence table of `bag evaluate --confidence`: its arithmetic, and a run on the sample bag."""

import numpy as np
import pytest
from bag_helpers import INPUT_SIZE, SMALL

from depth_anything_ros.bag.bagfile import BagError
from depth_anything_ros.bag.evaluate import CONFIDENCE_PIXELS, EvaluateOptions, evaluate_bag
from depth_anything_ros.bag.sample import SampleConfig, write_sample_bag
from depth_anything_ros.frame.metrics import confidence_deciles, confidence_sample
from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint
from depth_anything_ros.models.v2.estimator import DepthEstimator


def test_deciles_are_equal_count_bins_of_rising_confidence():
    confidence = np.arange(100, dtype=np.float64)[::-1] / 100  # 0.99 .. 0.00
    error = 1.0 - confidence  # low confidence, large error
    rows = confidence_deciles(confidence, error)
    assert [r["pixels"] for r in rows] == [10] * 10
    assert rows[0]["confidence_min"] == 0.0 and rows[0]["confidence_max"] == pytest.approx(0.09)
    assert rows[0]["abs_rel"] == pytest.approx(1 - 0.045)  # mean of 1 - (0.00 .. 0.09)
    assert rows[9]["abs_rel"] == pytest.approx(1 - 0.945)


def test_sample_is_absrel_of_valid_pixels():
    gt = np.array([[1.0, 2.0], [np.nan, 30.0]], np.float32)  # NaN and 30 m (over max 20) do not count
    pred = np.array([[1.5, 1.0], [5.0, 5.0]], np.float32)
    conf = np.array([[0.2, 0.9], [0.5, 0.5]], np.float32)
    c, e = confidence_sample(pred, gt, conf, 0.001, 20.0, 10, np.random.default_rng(0))
    assert sorted(zip(c.tolist(), e.tolist(), strict=True)) == [(pytest.approx(0.2), 0.5), (pytest.approx(0.9), 0.5)]


@pytest.fixture(scope="module")
def sample_bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("sample") / "bag"
    write_sample_bag(path, SampleConfig(**SMALL))
    return path


def test_evaluate_reports_the_table_and_says_synthetic(sample_bag, tmp_path):
    checkpoint = write_synthetic_checkpoint(tmp_path / "synthetic.safetensors", "vits", seed=0)  # marked synthetic
    est = DepthEstimator(checkpoint, encoder="vits", max_depth=20.0, device="cpu", input_size=INPUT_SIZE)
    result = evaluate_bag(sample_bag, est, EvaluateOptions(gt_topic="/camera/depth_gt", confidence=True,
                                                           progress=False))
    rows = result.to_json()["confidence_deciles"]
    assert len(rows) == 10 and [r["bin"] for r in rows] == list(range(1, 11))
    total = sum(min(CONFIDENCE_PIXELS, f.valid_pixels) for f in result.frames)
    assert sum(r["pixels"] for r in rows) == total
    assert all(rows[k]["confidence_max"] <= rows[k + 1]["confidence_min"] for k in range(9))
    text = result.text()
    assert "AbsRel by depth/confidence decile" in text
    assert "SYNTHETIC WEIGHTS: this table shows nothing about real accuracy" in text
    with pytest.raises(BagError, match="--confidence needs the model run by bag evaluate"):
        evaluate_bag(sample_bag, None, EvaluateOptions(gt_topic="/camera/depth_gt", pred_topic="/camera/depth_gt",
                                                       confidence=True, progress=False))
