"""The shared frame pipeline and the camera rules it follows, without a ROS graph (tiny images, synthetic weights).

Expected values are written out here from image_geometry's rules (PinholeCameraModel.fromCameraInfo: P before K,
binning divides, roi subtracts its offset), never taken from the code under test.
"""

import math
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from depth_anything_ros.frame.camera import IDENTITY_R, CameraInfo, Intrinsics, IntrinsicsError, image_camera
from depth_anything_ros.frame.colorize import colorize, colormap_lut
from depth_anything_ros.frame.geometry import points_from_cloud
from depth_anything_ros.frame.pipeline import FrameInput, FrameOptions, FramePipeline, RelativeModelError
from depth_anything_ros.frame.rays import ray_grid
from depth_anything_ros.frame.stamped import StampedHistory
from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint
from depth_anything_ros.models.v2.estimator import DepthEstimator

INPUT_SIZE = 70
W, H = 64, 48
MAX_DEPTH = 20.0
ALL = ("depth", "camera_info", "points", "colored")
# A 64x48 camera: K of the raw image, P of the rectified one (different, so a test sees which one is used).
K = (52.0, 0.0, 31.5, 0.0, 50.0, 23.5, 0.0, 0.0, 1.0)
P = (51.0, 0.0, 31.0, 0.0, 0.0, 49.5, 23.0, 0.0, 0.0, 0.0, 1.0, 0.0)
D0 = (0.0,) * 5
R_TILT = (1.0, 0.0, 0.0, 0.0, 0.8, -0.6, 0.0, 0.6, 0.8)  # a rectification rotation, kept as it is


def info_of(width=W, height=H, k=K, p=P, d=D0, r=IDENTITY_R, binning=(0, 0), roi=(0, 0, 0, 0), model="plumb_bob"):
    """Return a CameraInfo-like object as rclpy and rosbags messages look (lower-case fields, roi with names)."""
    x0, y0, roi_h, roi_w = roi
    return SimpleNamespace(width=width, height=height, distortion_model=model, d=list(d), k=list(k), r=list(r),
                           p=list(p), binning_x=binning[0], binning_y=binning[1],
                           roi=SimpleNamespace(x_offset=x0, y_offset=y0, height=roi_h, width=roi_w, do_rectify=False))


def texture(height=H, width=W, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:height, 0:width]
    base = np.stack([u * 255 / max(width - 1, 1), v * 255 / max(height - 1, 1), (u + v) * 2.0], -1)
    return np.clip(base + rng.normal(0, 30, (height, width, 3)), 0, 255).astype(np.uint8)


def image_like(pixels: np.ndarray, encoding: str = "rgb8") -> SimpleNamespace:
    """Return an Image-like message (what decode_image reads) of (H, W, 3) uint8 pixels."""
    height, width = pixels.shape[:2]
    return SimpleNamespace(height=height, width=width, encoding=encoding, is_bigendian=0, step=width * 3,
                           data=pixels.tobytes())


def rays_expected(width, height, fx, fy, cx, cy) -> np.ndarray:
    """image_geometry's projectPixelTo3dRay for every pixel (Tx = Ty = 0): ((u - cx) / fx, (v - cy) / fy, 1)."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    return np.stack([(u - cx) / fx, (v - cy) / fy, np.ones_like(u)], -1)


@pytest.fixture(scope="module")
def estimator(synthetic_vits_checkpoint):
    return DepthEstimator(synthetic_vits_checkpoint, encoder="vits", max_depth=MAX_DEPTH, device="cpu",
                          precision="fp32", input_size=INPUT_SIZE)


@pytest.fixture(scope="module")
def pipeline(estimator):
    return FramePipeline(estimator)


# ---------------------------------------------------------------- roi and binning (image_geometry rules)


def test_binning_2_halves_focal_lengths_and_principal_point():
    # sensor 128x96 binned 2x2 -> a 64x48 image; K/P given for the full sensor
    k = (104.0, 0.0, 63.0, 0.0, 100.0, 47.0, 0.0, 0.0, 1.0)
    p = (102.0, 0.0, 62.0, 0.0, 0.0, 99.0, 46.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    intr = Intrinsics.from_camera_info(info_of(128, 96, k, p, binning=(2, 2)))
    assert (intr.width, intr.height) == (64, 48)
    assert (intr.fx, intr.fy, intr.cx, intr.cy) == (51.0, 49.5, 31.0, 23.0)
    assert intr.k == (52.0, 0.0, 31.5, 0.0, 50.0, 23.5, 0.0, 0.0, 1.0)
    np.testing.assert_allclose(ray_grid(intr, undistort=True), rays_expected(64, 48, 51.0, 49.5, 31.0, 23.0),
                               rtol=0, atol=1e-6)


def test_roi_subtracts_its_offset_and_is_not_a_resize():
    # a 64x48 crop at (16, 8) of a 128x96 sensor: same aspect ratio as the sensor, but a crop, not a 0.5 resize
    k = (104.0, 0.0, 63.0, 0.0, 100.0, 47.0, 0.0, 0.0, 1.0)
    p = (102.0, 0.0, 62.0, 0.0, 0.0, 99.0, 46.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    info = info_of(128, 96, k, p, roi=(16, 8, 48, 64))
    intr = Intrinsics.from_camera_info(info)
    assert (intr.width, intr.height) == (64, 48)
    assert (intr.fx, intr.fy, intr.cx, intr.cy) == (102.0, 99.0, 62.0 - 16, 46.0 - 8)
    np.testing.assert_allclose(ray_grid(intr, undistort=True), rays_expected(64, 48, 102.0, 99.0, 46.0, 38.0),
                               rtol=0, atol=1e-6)
    described, published = image_camera(info, 64, 48)
    assert (described.fx, described.cx) == (102.0, 46.0)  # a resize would give fx 51, cx 31
    assert published.roi[:4] == (16, 8, 48, 64) and (published.width, published.height) == (128, 96)
    assert published.k == k and published.p == p  # the camera_info of a cropped image is published as it came


def test_roi_and_binning_combined():
    # a 128x96 roi at (32, 16) of a 256x192 sensor, binned 2 -> a 64x48 image: c' = (c - offset) / b
    k = (200.0, 0.0, 130.0, 0.0, 196.0, 98.0, 0.0, 0.0, 1.0)
    p = (198.0, 0.0, 126.0, 0.0, 0.0, 194.0, 94.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    intr = Intrinsics.from_camera_info(info_of(256, 192, k, p, binning=(2, 2), roi=(32, 16, 96, 128)))
    assert (intr.width, intr.height) == (64, 48)
    assert (intr.fx, intr.fy, intr.cx, intr.cy) == (99.0, 97.0, (126.0 - 32) / 2, (94.0 - 16) / 2)
    assert intr.k == (100.0, 0.0, (130.0 - 32) / 2, 0.0, 98.0, (98.0 - 16) / 2, 0.0, 0.0, 1.0)
    np.testing.assert_allclose(ray_grid(intr, undistort=True), rays_expected(64, 48, 99.0, 97.0, 47.0, 39.0),
                               rtol=0, atol=1e-6)


def test_cloud_of_a_cropped_image_uses_the_roi_intrinsics(pipeline):
    k = (104.0, 0.0, 63.0, 0.0, 100.0, 47.0, 0.0, 0.0, 1.0)
    p = (102.0, 0.0, 62.0, 0.0, 0.0, 99.0, 46.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    [result] = pipeline.run([FrameInput(pixels=texture(), encoding="rgb8", camera="crop",
                                        camera_info=info_of(128, 96, k, p, roi=(16, 8, 48, 64)))], FrameOptions())
    assert result.problems == []
    cloud = result.cloud
    xyz, _ = points_from_cloud(cloud.data, cloud.height, cloud.width, cloud.point_step, cloud.fields)
    z = result.depth.astype(np.float64)
    np.testing.assert_allclose(xyz, rays_expected(64, 48, 102.0, 99.0, 46.0, 38.0) * z[..., None],
                               rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- non-finite and non-positive calibrations


BAD_VALUES = [
    ("k", 2, math.nan, "K[2]"),
    ("k", 4, math.inf, "K[4]"),
    ("p", 2, math.nan, "P[2]"),
    ("p", 0, -math.inf, "P[0]"),
    ("d", 0, math.nan, "D[0]"),
    ("d", 4, math.inf, "D[4]"),
    ("r", 8, math.nan, "R[8]"),
]


@pytest.mark.parametrize("field, index, value, named", BAD_VALUES)
def test_non_finite_calibration_is_an_error_naming_the_field(field, index, value, named):
    values = {"k": list(K), "p": list(P), "d": list(D0), "r": list(IDENTITY_R)}
    values[field][index] = value
    with pytest.raises(IntrinsicsError, match=re.escape(named)):
        Intrinsics.from_camera_info(info_of(**values))


@pytest.mark.parametrize("p, k, named", [
    ((-51.0, 0, 31, 0, 0, 49.5, 23, 0, 0, 0, 1, 0), K, "P has non-positive focal lengths fx=-51.0"),
    ((51.0, 0, 31, 0, 0, 0.0, 23, 0, 0, 0, 1, 0), K, "P has non-positive focal lengths fx=51.0, fy=0.0"),
    ((0.0,) * 12, (52.0, 0, 31.5, 0, -50.0, 23.5, 0, 0, 1), "K has non-positive focal lengths fx=52.0, fy=-50.0"),
])
def test_non_positive_focal_lengths_are_an_error_naming_the_matrix(p, k, named):
    with pytest.raises(IntrinsicsError, match=re.escape(named)):
        Intrinsics.from_camera_info(info_of(k=k, p=p))


@pytest.mark.parametrize("field, index, value, named", BAD_VALUES[::2])
def test_frame_with_non_finite_calibration_keeps_depth_and_colour(pipeline, field, index, value, named):
    values = {"k": list(K), "p": list(P), "d": list(D0), "r": list(IDENTITY_R)}
    values[field][index] = value
    [result] = pipeline.run([FrameInput(pixels=texture(), encoding="rgb8", camera_info=info_of(**values))],
                            FrameOptions())
    assert result.depth is not None and result.depth.shape == (H, W) and np.isfinite(result.depth).all()
    assert result.colored is not None and result.colored.shape == (H, W, 3)
    assert result.camera_info is None and result.cloud is None
    [problem] = result.problems
    assert problem.kind == "intrinsics" and problem.skipped == ("camera_info", "points")
    assert named in problem.message


def test_no_nan_reaches_a_published_camera_info(pipeline):
    # every variant that is accepted publishes finite numbers only; every non-finite one publishes nothing
    for field, index, value, _ in BAD_VALUES:
        values = {"k": list(K), "p": list(P), "d": list(D0), "r": list(IDENTITY_R)}
        values[field][index] = value
        [result] = pipeline.run([FrameInput(pixels=texture(), encoding="rgb8", camera_info=info_of(**values))],
                                FrameOptions())
        assert result.camera_info is None, field
    [good] = pipeline.run([FrameInput(pixels=texture(), encoding="rgb8", camera_info=info_of(p=(0.0,) * 12))],
                          FrameOptions())
    info = good.camera_info
    assert all(math.isfinite(v) for v in (*info.k, *info.p, *info.r, *info.d))


# ---------------------------------------------------------------- the depth image's camera_info


def test_p_all_zero_is_published_as_k_with_a_zero_column():
    _, info = image_camera(info_of(p=(0.0,) * 12), W, H)
    assert info.p == (52.0, 0.0, 31.5, 0.0, 0.0, 50.0, 23.5, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert info.k == K and info.r == IDENTITY_R and info.d == D0


def test_resized_image_scales_k_p_and_tx_keeps_r_and_clears_binning_and_roi():
    # 256x192 sensor binned 2 (128x96), image published resized to 64x48: everything of the 128x96 image halved
    k = (200.0, 0.0, 130.0, 0.0, 196.0, 98.0, 0.0, 0.0, 1.0)
    p = (198.0, 0.0, 126.0, -11.0, 0.0, 194.0, 94.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    d = (-0.1, 0.01, 0.0, 0.0, 0.0)
    intr, info = image_camera(info_of(256, 192, k, p, d=d, r=R_TILT, binning=(2, 2)), 64, 48)
    assert (info.width, info.height) == (64, 48)
    assert info.k == (50.0, 0.0, 32.5, 0.0, 49.0, 24.5, 0.0, 0.0, 1.0)
    assert info.p == (49.5, 0.0, 31.5, -2.75, 0.0, 48.5, 23.5, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert info.r == R_TILT and info.d == d and info.distortion_model == "plumb_bob"
    assert (info.binning_x, info.binning_y) == (0, 0) and info.roi[:4] == (0, 0, 0, 0)
    assert (intr.fx, intr.fy, intr.cx, intr.cy, intr.tx) == (49.5, 48.5, 31.5, 23.5, -2.75)


def test_resized_crop_subtracts_the_offset_then_scales():
    k = (200.0, 0.0, 130.0, 0.0, 196.0, 98.0, 0.0, 0.0, 1.0)
    p = (198.0, 0.0, 126.0, 0.0, 0.0, 194.0, 94.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    _, info = image_camera(info_of(256, 192, k, p, roi=(32, 16, 96, 128)), 64, 48)
    assert info.p == (99.0, 0.0, (126.0 - 32) / 2, 0.0, 0.0, 97.0, (94.0 - 16) / 2, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert info.roi[:4] == (0, 0, 0, 0)


def test_fov_fallback_is_an_ideal_plumb_bob_pinhole(pipeline):
    fallback = CameraInfo.from_fov(W, H, 60.0)
    [result] = pipeline.run([FrameInput(pixels=texture(), encoding="rgb8", camera_info=fallback)], FrameOptions())
    info = result.camera_info
    f = 32.0 / math.tan(math.radians(30.0))
    assert info.distortion_model == "plumb_bob" and info.d == (0.0,) * 5 and info.r == IDENTITY_R
    np.testing.assert_allclose(info.k, (f, 0, 31.5, 0, f, 23.5, 0, 0, 1), rtol=1e-12)
    np.testing.assert_allclose(info.p, (f, 0, 31.5, 0, 0, f, 23.5, 0, 0, 0, 1, 0), rtol=1e-12)


# ---------------------------------------------------------------- one colour rule


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_colour_spans_zero_to_max_depth_times_scale(pipeline, scale):
    [result] = pipeline.run([FrameInput(pixels=texture(), encoding="rgb8", camera_info=info_of())],
                            FrameOptions(depth_scale=scale))
    expected = colorize(torch.from_numpy(result.depth), 0.0, MAX_DEPTH * scale, colormap_lut("turbo")).numpy()
    assert result.colored.dtype == np.uint8 and result.colored.tobytes() == expected.tobytes()


def test_depth_scale_multiplies_the_depth(pipeline):
    frame = FrameInput(pixels=texture(), encoding="rgb8", camera_info=info_of())
    [one], [two] = pipeline.run([frame], FrameOptions()), pipeline.run([frame], FrameOptions(depth_scale=2.0))
    np.testing.assert_array_equal(two.depth, one.depth * np.float32(2.0))


def test_colormap_name_is_case_insensitive(pipeline):
    frame = FrameInput(pixels=texture(), encoding="rgb8", camera_info=info_of())
    [upper] = pipeline.run([frame], FrameOptions(colormap="TURBO"))
    [lower] = pipeline.run([frame], FrameOptions(colormap="turbo"))
    [other] = pipeline.run([frame], FrameOptions(colormap="Viridis"))
    assert upper.colored.tobytes() == lower.colored.tobytes()
    assert other.colored.tobytes() != lower.colored.tobytes()


# ---------------------------------------------------------------- one bad frame costs only itself


@pytest.mark.parametrize("height, width", [(384, 1), (1, 384), (4000, 2), (2, 4000), (1, 1)])
@pytest.mark.parametrize("as_message", [False, True])
def test_degenerate_image_is_an_image_problem_and_the_other_frame_is_whole(pipeline, height, width, as_message):
    bad = np.full((height, width, 3), 128, np.uint8)
    bad_frame = (FrameInput(camera="bad", message=image_like(bad), camera_info=info_of(width, height))
                 if as_message else FrameInput(camera="bad", pixels=bad, encoding="rgb8",
                                               camera_info=info_of(width, height)))
    good_frame = FrameInput(camera="good", pixels=texture(), encoding="rgb8", camera_info=info_of())
    bad_result, good_result = pipeline.run([bad_frame, good_frame], FrameOptions())
    [problem] = bad_result.problems
    assert problem.kind == "image" and problem.skipped == ALL
    assert f"{width}x{height}" in problem.message
    assert (bad_result.depth, bad_result.camera_info, bad_result.cloud, bad_result.colored) == (None,) * 4
    assert good_result.problems == []
    assert good_result.depth.shape == (H, W) and good_result.colored.shape == (H, W, 3)
    assert good_result.camera_info is not None and good_result.cloud is not None


MALFORMED = {
    "no p field": lambda: _without(info_of(), "p"),
    "k of 4 values": lambda: _with(info_of(), k=[52.0, 0.0, 31.5, 0.0]),
    "no width field": lambda: _without(info_of(), "width"),
    "k not numbers": lambda: _with(info_of(), k=["a"] * 9),
    "roi without offsets": lambda: _with(info_of(), roi=SimpleNamespace(height=0, width=0)),
    "width None": lambda: _with(info_of(), width=None),
}


def _without(info, name):
    delattr(info, name)
    return info


def _with(info, **values):
    for name, value in values.items():
        setattr(info, name, value)
    return info


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_camera_info_costs_only_its_frame_and_its_intrinsic_outputs(pipeline, case):
    frames = [FrameInput(camera="left", pixels=texture(seed=1), encoding="rgb8", camera_info=MALFORMED[case]()),
              FrameInput(camera="right", pixels=texture(seed=2), encoding="rgb8", camera_info=info_of())]
    bad, good = pipeline.run(frames, FrameOptions())
    [problem] = bad.problems
    assert problem.kind == "intrinsics" and problem.skipped == ("camera_info", "points")
    assert bad.depth is not None and bad.colored is not None
    assert bad.camera_info is None and bad.cloud is None
    assert good.problems == []
    assert all(out is not None for out in (good.depth, good.camera_info, good.cloud, good.colored))


def test_malformed_camera_info_names_the_field():
    with pytest.raises(IntrinsicsError, match=r"P must hold 12 values, got 0"):
        Intrinsics.from_camera_info(MALFORMED["no p field"]())
    with pytest.raises(IntrinsicsError, match=r"K must hold 9 values, got 4"):
        Intrinsics.from_camera_info(MALFORMED["k of 4 values"]())
    with pytest.raises(IntrinsicsError, match=r"width"):
        Intrinsics.from_camera_info(MALFORMED["no width field"]())
    with pytest.raises(IntrinsicsError, match=r"\bk\b|\bK\b"):
        Intrinsics.from_camera_info(MALFORMED["k not numbers"]())


# ---------------------------------------------------------------- relative checkpoints


def test_relative_checkpoint_is_refused_naming_metric_variants(tmp_path):
    path = write_synthetic_checkpoint(tmp_path / "depth_anything_v2_vits.pth", "vits", seed=0)
    relative = DepthEstimator(path, device="cpu", input_size=INPUT_SIZE)
    assert relative.is_metric is False
    with pytest.raises(RelativeModelError) as caught:
        FramePipeline(relative)
    message = str(caught.value)
    assert "depth_anything_v2_vits.pth" in message and "relative" in message
    assert "hypersim-vits" in message and "vkitti-vitl" in message


# ---------------------------------------------------------------- camera_info pairing by stamp


def test_camera_info_pairing_by_stamp():
    history = StampedHistory()
    assert history.latest_at(5) is None
    for stamp in (30, 10, 20):
        history.add(stamp, f"info{stamp}")
    assert history.latest_at(20) == "info20"  # same stamp
    assert history.latest_at(25) == "info20"  # latest before
    assert history.latest_at(1000) == "info30"
    assert history.latest_at(3) == "info10"  # image before all: the earliest
    history.add(20, "info20b")  # same stamp again replaces
    assert history.latest_at(20) == "info20b" and len(history) == 3


def test_history_capacity_drops_the_oldest():
    history = StampedHistory(capacity=2)
    for stamp in (10, 20, 30):
        history.add(stamp, f"info{stamp}")
    assert len(history) == 2
    assert history.latest_at(15) == "info20"  # 10 was dropped: 20 is now the earliest
    assert history.latest_at(30) == "info30"
