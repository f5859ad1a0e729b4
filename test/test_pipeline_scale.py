"""Scale modes in the shared pipeline (no ROS graph): reference depth, ground plane, relative models."""

from types import SimpleNamespace

import numpy as np
import pytest

from depth_anything_ros.frame.pipeline import FrameInput, FrameOptions, FramePipeline, RelativeModelError
from depth_anything_ros.frame.scale import ScaleOptions
from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint
from depth_anything_ros.models.v2.estimator import DepthEstimator

INPUT_SIZE = 70
W, H = 64, 48
K = (52.0, 0.0, 31.5, 0.0, 50.0, 23.5, 0.0, 0.0, 1.0)
REFERENCE = ScaleOptions(mode="reference", time_constant=0.0, min_reference_depth=0.01, max_reference_depth=100.0,
                         min_pixels=50)


def info() -> SimpleNamespace:
    return SimpleNamespace(width=W, height=H, distortion_model="plumb_bob", d=[0.0] * 5, k=list(K),
                           r=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], p=[52.0, 0, 31.5, 0, 0, 50.0, 23.5, 0, 0, 0, 1.0, 0],
                           binning_x=0, binning_y=0,
                           roi=SimpleNamespace(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))


def pixels(seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:H, 0:W]
    base = np.stack([u * 4.0, v * 5.0, (u + v) * 2.0], -1)
    return np.clip(base + rng.normal(0, 30, (H, W, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def pipeline(synthetic_vits_checkpoint):
    est = DepthEstimator(synthetic_vits_checkpoint, encoder="vits", max_depth=20.0, device="cpu", precision="fp32",
                         input_size=INPUT_SIZE)
    return FramePipeline(est)


def frame(camera, reference=None, stamp=0.0, outputs=("depth", "camera_info", "points")) -> FrameInput:
    return FrameInput(camera=camera, pixels=pixels(), encoding="rgb8", camera_info=info(), outputs=outputs,
                      stamp=stamp, reference=reference)


def test_reference_mode_scales_depth_and_cloud_to_the_reference(pipeline):
    unscaled = pipeline.run([frame("u")], FrameOptions())[0].depth
    out = pipeline.run([frame("r", unscaled * 0.8)], FrameOptions(scale=REFERENCE))[0]
    assert out.problems == [] and out.scale.fit.ok
    assert out.scale.scale == pytest.approx(0.8, rel=1e-4)
    np.testing.assert_allclose(out.depth, unscaled * 0.8, rtol=1e-4)
    half = pipeline.run([frame("half", unscaled[::2, ::2] * 1.3)], FrameOptions(scale=REFERENCE))[0]
    assert half.scale.scale == pytest.approx(1.3, rel=0.02)


def test_frames_without_reference_keep_the_last_scale_and_a_wrong_size_is_a_scale_problem_only(pipeline):
    unscaled = pipeline.run([frame("u")], FrameOptions())[0].depth
    options = FrameOptions(scale=REFERENCE)
    first = pipeline.run([frame("k", unscaled * 0.5, stamp=1.0)], options)[0]
    kept = pipeline.run([frame("k", None, stamp=4.0)], options)[0]
    assert kept.scale.scale == first.scale.scale and kept.scale.fit is None and kept.scale.stale
    assert kept.scale.age == pytest.approx(3.0)
    wrong = pipeline.run([frame("k", np.ones((10, 30)), stamp=4.5)], options)[0]
    assert [p.kind for p in wrong.problems] == ["scale"] and wrong.problems[0].skipped == ()
    assert "reference depth of 30x10 pixels is neither the image size 64x48" in wrong.problems[0].text()
    assert wrong.depth is not None and wrong.cloud is not None and wrong.scale.scale == first.scale.scale


def test_depth_scale_is_the_starting_scale_before_the_first_fit(pipeline):
    unscaled = pipeline.run([frame("u")], FrameOptions())[0].depth
    out = pipeline.run([frame("start")], FrameOptions(depth_scale=2.0, scale=REFERENCE))[0]
    assert not out.scale.estimated and out.scale.scale == 2.0
    np.testing.assert_allclose(out.depth, unscaled * 2.0, rtol=1e-6)


def test_ground_plane_mode_without_a_floor_keeps_the_starting_scale(pipeline):
    options = FrameOptions(scale=ScaleOptions(mode="ground_plane", camera_height=1.0))
    out = pipeline.run([frame("g")], options)[0]
    assert out.scale.source == "ground_plane" and out.depth is not None
    assert out.scale.fit is not None and (out.scale.fit.ok or out.scale.fit.reason)


def test_relative_model_is_aligned_to_the_reference_and_refused_without(tmp_path, pipeline):
    path = write_synthetic_checkpoint(tmp_path / "depth_anything_v2_vits.pth", "vits")
    relative = DepthEstimator(path, device="cpu", precision="fp32", input_size=INPUT_SIZE)
    with pytest.raises(RelativeModelError, match="scale.mode reference"):
        FramePipeline(relative)
    pipe = FramePipeline(relative, allow_relative=True)
    none = pipe.run([frame("rel")], FrameOptions(scale=REFERENCE))[0]
    assert none.depth is None and [p.kind for p in none.problems] == ["scale"]
    fixed = pipe.run([frame("rel")], FrameOptions())[0]
    assert fixed.depth is None and "reference" in fixed.problems[0].text()
    disparity = pipe.estimator.estimate(pixels())  # (H, W) affine-invariant inverse depth
    truth = 1.0 / (0.3 * disparity + 0.05)
    out = pipe.run([frame("rel", truth)], FrameOptions(scale=REFERENCE))[0]
    abs_rel = float(np.nanmean(np.abs(out.depth - truth) / truth))
    print(f"RECOVERY pipeline relative model: AbsRel {100 * abs_rel:.4f} %")
    assert out.problems == [] and abs_rel < 0.02 and out.cloud is not None
