"""LaserScan from depth (frame/scan.py) against depthimage_to_laserscan's formulas, written out here.

depthimage_to_laserscan (DepthImageToLaserScan.cpp / .hpp): angle_max = angle(ray(0, cy), ray(cx, cy)),
angle_min = -angle(ray(cx, cy), ray(W - 1, cy)), increment = (max - min) / (W - 1), W ranges; rows from
int(cy - h / 2); a pixel of ray x (= (u - cx) / fx for a pinhole) and depth z has bearing -atan2(x, 1), range
hypot(x z, z) and bin int((bearing - angle_min) / increment); each bin keeps its smallest range in
[range_min, range_max]. Our REP 117 rule: otherwise -inf if a pixel was too close, +inf if one was too far, NaN.
Rays are the float32 grid our clouds use, so the expected bearings start from float32 x.
"""

import math
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from depth_anything_ros.frame.camera import Intrinsics
from depth_anything_ros.frame.rays import ray_grid
from depth_anything_ros.frame.scan import ScanError, ScanOptions, laser_scan

W, H = 64, 48
PINHOLE = Intrinsics(fx=50.0, fy=52.0, cx=30.3, cy=22.6, width=W, height=H)
K = (60.0, 0.0, 32.3, 0.0, 61.0, 23.6, 0.0, 0.0, 1.0)
D = (-0.28, 0.09, 0.0008, -0.0005, -0.01)
DISTORTED = Intrinsics(fx=55.0, fy=56.0, cx=33.0, cy=24.0, width=W, height=H, distortion_model="plumb_bob", d=D, k=K)


def depth_image(seed=0) -> np.ndarray:
    """(H, W) float32 depth: a slanted wall 1.5 .. 4.5 m with noise, so rows and columns differ."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:H, 0:W]
    return (1.5 + 3.0 * u / (W - 1) + 0.2 * v / (H - 1) + rng.uniform(0, 0.3, (H, W))).astype(np.float32)


def expected_scan(depth, x, rows, angle_min, angle_max, range_min, range_max):
    """Return the ranges by the formulas above, pixel by pixel: depth (H, W), x (H, W) float32 ray x / z."""
    width = depth.shape[1]
    increment = (angle_max - angle_min) / (width - 1)
    nearest = [math.inf] * width
    close, far = [False] * width, [False] * width
    for v in rows:
        for u in range(width):
            z, xu = float(depth[v, u]), float(x[v, u])
            if not (math.isfinite(z) and z > 0 and math.isfinite(xu)):
                continue
            index = int((-math.atan2(xu, 1.0) - angle_min) / increment)
            if not 0 <= index <= width - 1:
                continue
            r = math.sqrt((xu * z) ** 2 + z ** 2)
            if r < range_min:
                close[index] = True
            elif r > range_max:
                far[index] = True
            else:
                nearest[index] = min(nearest[index], r)
    return np.array([n if n < math.inf else -math.inf if c else math.inf if f else math.nan
                     for n, c, f in zip(nearest, close, far, strict=True)])


def run_scan(depth, intr, options, undistort=True):
    rays = torch.from_numpy(ray_grid(intr, undistort))
    return laser_scan(torch.from_numpy(depth), rays, intr, undistort, options), rays.numpy()


@pytest.mark.parametrize("height", [1, 5])
def test_pinhole_scan_is_depthimage_to_laserscan(height):
    depth = depth_image()
    options = ScanOptions(height=height, range_min=0.45, range_max=10.0, time=0.05, output_frame="base_scan")
    scan, rays = run_scan(depth, PINHOLE, options)
    angle_max = math.atan(PINHOLE.cx / PINHOLE.fx)  # angle between ((0 - cx) / fx, 0, 1) and (0, 0, 1)
    angle_min = -math.atan((W - 1 - PINHOLE.cx) / PINHOLE.fx)
    assert scan.angle_max == pytest.approx(angle_max, abs=1e-12)
    assert scan.angle_min == pytest.approx(angle_min, abs=1e-12)
    assert scan.angle_increment == pytest.approx((angle_max - angle_min) / (W - 1), abs=1e-12)
    assert (scan.time_increment, scan.scan_time, scan.range_min, scan.range_max, scan.frame_id) == \
        (0.0, 0.05, 0.45, 10.0, "base_scan")
    first = int(PINHOLE.cy - height / 2)  # 22 for 1 row, 20 for 5
    x = np.broadcast_to(np.float32((np.arange(W) - PINHOLE.cx) / PINHOLE.fx), (H, W))
    expected = expected_scan(depth, x, range(first, first + height), angle_min, angle_max, 0.45, 10.0)
    assert scan.ranges.dtype == np.float32 and scan.ranges.shape == (W,)
    np.testing.assert_allclose(scan.ranges, expected, rtol=1e-6)
    assert np.isfinite(scan.ranges).sum() >= W - 8  # a pinhole's bins are nearly all hit


def test_rep117_too_close_too_far_and_invalid():
    depth = np.full((H, W), 5.0, np.float32)
    depth[:, :10] = 0.2  # closer than range_min: -inf
    depth[:, 10:20] = 30.0  # farther than range_max: +inf
    depth[:, 20:30] = np.nan  # invalid: NaN
    scan, _ = run_scan(depth, PINHOLE, ScanOptions(range_min=0.45, range_max=10.0))
    angle_max, angle_min = math.atan(PINHOLE.cx / PINHOLE.fx), -math.atan((W - 1 - PINHOLE.cx) / PINHOLE.fx)
    x = np.broadcast_to(np.float32((np.arange(W) - PINHOLE.cx) / PINHOLE.fx), (H, W))
    expected = expected_scan(depth, x, [22], angle_min, angle_max, 0.45, 10.0)
    np.testing.assert_allclose(scan.ranges, expected, rtol=1e-6)
    # columns 0..9 are the leftmost pixels, so the highest bins (the scan turns the other way round)
    assert np.isneginf(scan.ranges[-9:]).all() and np.isposinf(expected).sum() >= 8 and np.isnan(expected).sum() >= 9


def test_distorted_scan_uses_the_undistorted_rays():
    depth = depth_image(1)
    scan, rays = run_scan(depth, DISTORTED, ScanOptions(height=3))
    k = np.array(K).reshape(3, 3)
    cx, cy = K[2], K[5]  # raw image undistorted through K: the optical centre is K's

    def ray(u, v):
        criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)  # converged, not 5 iterations
        x, y = cv2.undistortPoints(np.array([[[u, v]]], np.float64), k, np.array(D),
                                   criteria=criteria).reshape(2)
        return np.array([x, y, 1.0])

    def angle(a, b):
        return math.acos(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    angle_max, angle_min = angle(ray(0, cy), ray(cx, cy)), -angle(ray(cx, cy), ray(W - 1, cy))
    assert scan.angle_max == pytest.approx(angle_max, abs=1e-6)
    assert scan.angle_min == pytest.approx(angle_min, abs=1e-6)
    first = int(cy - 3 / 2)  # 22
    expected = expected_scan(depth, rays[..., 0], range(first, first + 3), angle_min, angle_max, 0.45, 10.0)
    np.testing.assert_allclose(scan.ranges, expected, rtol=1e-6)
    # the pinhole formula on raw columns (depthimage_to_laserscan's) would differ: distortion matters here
    pinhole_x = np.broadcast_to(np.float32((np.arange(W) - cx) / K[0]), (H, W))
    naive = expected_scan(depth, pinhole_x, range(first, first + 3), angle_min, angle_max, 0.45, 10.0)
    assert not np.allclose(np.nan_to_num(naive), np.nan_to_num(expected), rtol=1e-3)


def test_binned_roi_camera_info():
    # sensor 256x192, roi x 40 y 20 128x96, binning 2: a 64x48 image with fx' = fx / 2, cx' = (cx - 40) / 2
    info = SimpleNamespace(width=256, height=192, distortion_model="plumb_bob", d=[0.0] * 5,
                           k=[100.0, 0.0, 101.0, 0.0, 104.0, 70.0, 0.0, 0.0, 1.0], r=[1, 0, 0, 0, 1, 0, 0, 0, 1],
                           p=[100.0, 0.0, 101.0, 0.0, 0.0, 104.0, 70.0, 0.0, 0.0, 0.0, 1.0, 0.0],
                           binning_x=2, binning_y=2,
                           roi=SimpleNamespace(x_offset=40, y_offset=20, height=96, width=128, do_rectify=False))
    intr = Intrinsics.from_camera_info(info)
    fx, cx, cy = 100.0 / 2, (101.0 - 40) / 2, (70.0 - 20) / 2  # 50, 30.5, 25
    depth = depth_image(2)
    scan, _ = run_scan(depth, intr, ScanOptions(height=2))
    angle_max, angle_min = math.atan(cx / fx), -math.atan((W - 1 - cx) / fx)
    assert (scan.angle_min, scan.angle_max) == (pytest.approx(angle_min), pytest.approx(angle_max))
    x = np.broadcast_to(np.float32((np.arange(W) - cx) / fx), (H, W))
    expected = expected_scan(depth, x, [int(cy - 1), int(cy)], angle_min, angle_max, 0.45, 10.0)
    np.testing.assert_allclose(scan.ranges, expected, rtol=1e-6)


def test_scan_height_too_large_is_refused():
    with pytest.raises(ScanError, match=r"scan height 47 rows is too large for the 48-row image"):
        run_scan(depth_image(), PINHOLE, ScanOptions(height=47))  # 47 / 2 = 23.5 rows above cy = 22.6


def test_scan_options_are_checked():
    assert ScanOptions(range_min=2.0, range_max=1.0).problems() == [
        "scan ranges need 0 <= range_min < range_max, got 2.0, 1.0"]
    assert ScanOptions(height=0, min_confidence=2.0).problems() == [
        "scan height must be an integer >= 1, got 0", "scan min confidence must be in [0, 1], got 2.0"]
