"""Depth metrics against values worked out by hand."""

import math

import numpy as np
import pytest

from depth_anything_ros.frame.metrics import (
    METRIC_NAMES,
    AlignmentFit,
    compute_metrics,
    evaluate_frame,
    fit_alignment,
    mean_metrics,
    valid_mask,
)


def _gt(seed=0, shape=(12, 16)):
    return np.random.default_rng(seed).uniform(0.5, 8.0, shape).astype(np.float32)


def test_ten_percent_too_far_everywhere():
    gt = _gt()
    m = evaluate_frame(gt * 1.1, gt, 0.1, 20.0)
    g = gt.astype(np.float64)
    assert m["abs_rel"] == pytest.approx(0.1, rel=1e-6)
    assert m["sq_rel"] == pytest.approx(0.01 * g.mean(), rel=1e-5)
    assert m["rmse"] == pytest.approx(0.1 * math.sqrt((g**2).mean()), rel=1e-5)
    assert m["mae"] == pytest.approx(0.1 * g.mean(), rel=1e-5)
    assert m["rmse_log"] == pytest.approx(math.log(1.1), rel=1e-5)
    assert m["silog"] == pytest.approx(math.log(1.1) * math.sqrt(0.5), rel=1e-4)
    assert m["log10"] == pytest.approx(math.log10(1.1), rel=1e-5)
    assert (m["d1"], m["d2"], m["d3"]) == (1.0, 1.0, 1.0)


def test_two_pixel_case_by_hand():
    m = compute_metrics(np.array([1.0, 2.0]), np.array([2.0, 2.0]))
    ln2 = math.log(2.0)
    expected = {
        "abs_rel": 0.25, "sq_rel": 0.25, "rmse": math.sqrt(0.5), "mae": 0.5,
        "rmse_log": ln2 / math.sqrt(2.0), "silog": ln2 * math.sqrt(3.0 / 8.0), "log10": math.log10(2.0) / 2,
        "d1": 0.5, "d2": 0.5, "d3": 0.5,
    }
    assert set(m) == set(METRIC_NAMES)
    for name, value in expected.items():
        assert m[name] == pytest.approx(value, rel=1e-12), name


def test_scale_alignment_recovers_inverse_factor_and_zero_error():
    fit = AlignmentFit()
    frames = [_gt(seed) for seed in range(3)]
    for gt in frames:
        fit.add(gt * 1.1, gt, 0.1, 20.0)
    scale, shift = fit.solve("scale")
    assert scale == pytest.approx(1 / 1.1, rel=1e-6)
    assert shift == 0.0
    for gt in frames:
        m = evaluate_frame(gt * 1.1, gt, 0.1, 20.0, scale=scale)
        assert m["abs_rel"] == pytest.approx(0.0, abs=1e-6)
        assert m["rmse"] == pytest.approx(0.0, abs=1e-5)
        assert m["d1"] == 1.0


def test_scale_shift_alignment():
    gt = _gt(4)
    scale, shift = fit_alignment((gt - 0.5) / 2.0, gt, 0.1, 20.0, "scale_shift")
    assert scale == pytest.approx(2.0, rel=1e-5)
    assert shift == pytest.approx(0.5, abs=1e-5)
    assert fit_alignment(gt, gt, 0.1, 20.0, "none") == (1.0, 0.0)


def test_invalid_and_out_of_range_ground_truth_is_ignored():
    gt = _gt(1)
    pred = gt * 1.1
    reference = evaluate_frame(pred, gt, 0.1, 20.0)
    spoiled_gt, spoiled_pred = gt.copy(), pred.copy()
    spoiled_gt[0, :] = np.nan       # invalid (REP 118 32FC1)
    spoiled_gt[1, :] = np.inf
    spoiled_gt[2, :] = 50.0         # beyond max_depth
    spoiled_gt[3, :] = 0.01         # below min_depth
    spoiled_pred[:4, :] = 1000.0    # garbage where GT does not count
    mask = valid_mask(spoiled_gt, 0.1, 20.0)
    assert not mask[:4].any() and mask[4:].all()
    m = evaluate_frame(spoiled_pred, spoiled_gt, 0.1, 20.0)
    m_rows = evaluate_frame(pred[4:], gt[4:], 0.1, 20.0)
    for name in METRIC_NAMES:
        assert m[name] == pytest.approx(m_rows[name], rel=1e-9)
    assert m["abs_rel"] == pytest.approx(reference["abs_rel"], rel=1e-6)
    fit = AlignmentFit()
    fit.add(spoiled_pred, spoiled_gt, 0.1, 20.0)
    assert fit.solve("scale")[0] == pytest.approx(1 / 1.1, rel=1e-6)


def test_unusable_predictions_are_replaced_and_over_range_ones_count():
    gt = np.full((4, 4), 2.0, np.float32)
    pred = np.full((4, 4), np.nan, np.float32)
    assert evaluate_frame(pred, gt, 1.0, 10.0)["abs_rel"] == pytest.approx(0.5)  # NaN -> min_depth
    pred[:] = -3.0
    assert evaluate_frame(pred, gt, 1.0, 10.0)["abs_rel"] == pytest.approx(0.5)  # <= 0 -> min_depth
    pred[:] = np.inf
    assert evaluate_frame(pred, gt, 1.0, 10.0)["abs_rel"] == pytest.approx(4.0)  # +inf -> max_depth
    pred[:] = 30.0
    assert evaluate_frame(pred, gt, 1.0, 10.0)["abs_rel"] == pytest.approx(14.0)  # not clipped to max_depth


def test_frames_with_too_few_valid_pixels_are_skipped():
    gt = np.full((3, 3), np.nan, np.float32)
    gt[0, 0] = 1.0
    assert evaluate_frame(gt, gt, 0.1, 20.0) is None
    with pytest.raises(ValueError, match="no frame"):
        mean_metrics([])


def test_overall_is_mean_of_frames():
    a = compute_metrics(np.array([1.0, 2.0]), np.array([2.0, 2.0]))
    b = compute_metrics(np.array([2.0, 2.0]), np.array([2.0, 2.0]))
    assert mean_metrics([a, b])["abs_rel"] == pytest.approx(0.125)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="differ in size"):
        evaluate_frame(np.ones((2, 2)), np.ones((3, 3)), 0.1, 20.0)
    with pytest.raises(ValueError, match="unknown alignment"):
        AlignmentFit().solve("affine")
    with pytest.raises(ValueError, match="no valid pixel"):
        AlignmentFit().solve("scale")
    gt = _gt(2)
    with pytest.raises(ValueError, match="constant"):
        fit_alignment(np.ones_like(gt), gt, 0.1, 20.0, "scale_shift")
