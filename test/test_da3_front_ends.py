"""DA3METRIC-LARGE everywhere V2 works: estimator, focal scaling, sky as invalid, pipeline, estimate, bag process.

One synthetic official-format checkpoint per session (conftest), network input 70 px on the long side.
"""

import numpy as np
import pytest
import torch
from bag_helpers import SMALL, by_topic, read_bag

from depth_anything_ros.bag.process import ProcessOptions, process_bag
from depth_anything_ros.bag.sample import SampleConfig, write_sample_bag
from depth_anything_ros.cli import build_parser, main
from depth_anything_ros.cli_options import make_estimator
from depth_anything_ros.frame.camera import CameraInfo
from depth_anything_ros.frame.geometry import points_from_cloud
from depth_anything_ros.frame.image_codec import decode_image, depth_from_image
from depth_anything_ros.frame.pipeline import FrameInput, FrameOptions, FramePipeline
from depth_anything_ros.models.checkpoint_io import CheckpointError
from depth_anything_ros.models.da3.estimator import DA3Estimator
from depth_anything_ros.models.da3.preprocess import SKY_THRESHOLD
from depth_anything_ros.models.registry import load_estimator

RES = 70
H, W = 120, 160
FX = 120.0


def _image(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:H, 0:W]
    base = np.stack([u * 255 / (W - 1), v * 255 / (H - 1), (u + v) * 127 / (H + W)], -1)
    return np.clip(base + rng.normal(0, 30, (H, W, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def estimator(synthetic_da3_checkpoint):
    est = load_estimator(str(synthetic_da3_checkpoint), device="cpu", input_size=RES)
    assert isinstance(est, DA3Estimator) and est.is_metric and est.needs_focal
    return est


@pytest.fixture(scope="module")
def filling(synthetic_da3_checkpoint):
    return DA3Estimator(synthetic_da3_checkpoint, device="cpu", input_size=RES, sky="official_fill")


def test_doubled_focal_length_doubles_the_depth(estimator):
    image = _image()
    one = estimator.estimate(image, "rgb8", (FX, FX))
    two = estimator.estimate(image, "rgb8", (2 * FX, 2 * FX))
    assert one.shape == (H, W)
    np.testing.assert_array_equal(np.isnan(one), np.isnan(two))
    valid = ~np.isnan(one)
    assert 0.05 < (~valid).mean() < 0.8  # the synthetic weights call some pixels sky
    np.testing.assert_allclose(two[valid], 2 * one[valid], rtol=1e-6)


def test_depth_is_network_output_times_focal_over_300(estimator):
    """The focal length at the network input, worked out by hand.

    160x120 -> 70x52 (52.5 rounds to even) -> 70x56 (nearest multiple of 14), so fx' = 120 x 70 / 160 = 52.5,
    fy' = 120 x 56 / 120 = 56 and the focal is (52.5 + 56) / 2 = 54.25.
    """
    raw = estimator.upload([_image()])
    metric, sky = estimator.network_outputs(raw, "rgb8", [(FX, FX)])
    with torch.no_grad():
        from depth_anything_ros.models.da3.preprocess import network_input

        depth, sky_net = estimator.model(network_input(_image(), RES)[None])
    np.testing.assert_array_equal(sky, sky_net)
    np.testing.assert_allclose(metric, depth * 54.25 / 300, rtol=1e-6)


def test_sky_is_nan_in_depth_and_absent_from_points(estimator):
    image = _image(1)
    pipe = FramePipeline(estimator)
    info = CameraInfo.pinhole(W, H, FX, FX, (W - 1) / 2, (H - 1) / 2)
    result = pipe.run([FrameInput(pixels=image, encoding="rgb8", camera_info=info,
                                  outputs=("depth", "camera_info", "points", "colored"))], FrameOptions())[0]
    assert not result.problems
    _, sky = estimator.network_outputs(estimator.upload([image]), "rgb8", [(FX, FX)])
    sky_up = torch.nn.functional.interpolate(sky[:, None], size=(H, W), mode="nearest")[0, 0].numpy()
    invalid = np.isnan(result.depth)
    assert invalid[sky_up >= SKY_THRESHOLD].all()  # every sky pixel is invalid (and a thin border around it)
    assert invalid.mean() < (sky_up >= SKY_THRESHOLD).mean() + 0.15
    points, _ = points_from_cloud(result.cloud.data, result.cloud.height, result.cloud.width,
                                  result.cloud.point_step, result.cloud.fields)
    assert (result.cloud.height, result.cloud.width) == (H, W)
    np.testing.assert_array_equal(np.isnan(points).all(-1), invalid)
    unorganized = pipe.run([FrameInput(pixels=image, encoding="rgb8", camera_info=info, outputs=("points",))],
                           FrameOptions(cloud_organized=False))[0].cloud
    assert unorganized.width == int((~invalid).sum())
    assert result.colored[invalid].max() == 0  # invalid depth is black


def test_official_fill_gives_sky_one_depth_and_no_nan(filling):
    depth = filling.estimate(_image(1), "rgb8", (FX, FX))
    assert np.isfinite(depth).all()
    metric, sky = filling.network_outputs(filling.upload([_image(1)]), "rgb8", [(FX, FX)])
    sky_values = metric[sky >= SKY_THRESHOLD]
    assert (sky_values == sky_values[0]).all()
    assert sky_values[0] == pytest.approx(float(np.quantile(metric[sky < SKY_THRESHOLD].numpy(), 0.99)), rel=1e-5)


def test_resized_camera_info_gives_the_same_metric_depth(estimator):
    image, pipe = _image(2), FramePipeline(estimator)
    original = CameraInfo.pinhole(W, H, FX, FX * 1.02, (W - 1) / 2, (H - 1) / 2)
    doubled = CameraInfo.pinhole(2 * W, 2 * H, 2 * FX, 2 * FX * 1.02, W - 0.5, H - 0.5)
    a, b = (pipe.run([FrameInput(pixels=image, encoding="rgb8", camera_info=info, outputs=("depth",))],
                     FrameOptions())[0].depth for info in (original, doubled))
    np.testing.assert_array_equal(a, b)


def test_no_camera_info_is_an_intrinsics_problem_and_no_output(estimator):
    result = FramePipeline(estimator).run([FrameInput(pixels=_image(), encoding="rgb8")], FrameOptions())[0]
    assert result.depth is None and [p.kind for p in result.problems] == ["intrinsics"]
    assert "focal length" in result.problems[0].message
    with pytest.raises(ValueError, match="focal length"):
        estimator.estimate(_image(), "rgb8")


def test_a_max_depth_or_another_encoder_is_refused(synthetic_da3_checkpoint):
    with pytest.raises(CheckpointError, match="no max_depth"):
        load_estimator(str(synthetic_da3_checkpoint), max_depth=20.0, device="cpu")
    with pytest.raises(CheckpointError, match="not encoder 'vits'"):
        load_estimator(str(synthetic_da3_checkpoint), encoder="vits", device="cpu")


def test_without_input_size_each_family_runs_at_its_official_size(synthetic_da3_checkpoint,
                                                                  synthetic_vits_checkpoint):
    """No --input-size (node: model.input_size 0): DA3 at process_res 504, V2 at 518 (the official defaults)."""
    for model_args, official in (([str(synthetic_da3_checkpoint)], 504),
                                 ([str(synthetic_vits_checkpoint), "--model-max-depth", "20"], 518)):
        args = build_parser().parse_args(["estimate", "x.png", "--out", "o", "--device", "cpu", "--checkpoint",
                                          *model_args])
        assert make_estimator(args, announce_synthetic=False).input_size == official


def test_estimate_with_fx_and_with_fov(synthetic_da3_checkpoint, tmp_path, capsys):
    import cv2

    image_path = tmp_path / "room.png"
    assert cv2.imwrite(str(image_path), _image(3)[..., ::-1])
    common = ["estimate", str(image_path), "--checkpoint", str(synthetic_da3_checkpoint), "--input-size", str(RES),
              "--device", "cpu"]
    assert main([*common, "--out", str(tmp_path / "fx"), "--fx", str(FX), "--fy", str(FX), "--cx", "79.5",
                 "--cy", "59.5"]) == 0
    # a 60 degree field of view on a 160 px image: fx = 80 / tan(30 deg) = 138.56
    assert main([*common, "--out", str(tmp_path / "fov"), "--fov", "60", "--format", "npy"]) == 0
    assert "SYNTHETIC WEIGHTS" in capsys.readouterr().err
    by_fx = cv2.imread(str(tmp_path / "fx" / "room_depth.tiff"), cv2.IMREAD_UNCHANGED)
    by_fov = np.load(tmp_path / "fov" / "room_depth.npy")
    valid = np.isfinite(by_fx)
    np.testing.assert_array_equal(valid, np.isfinite(by_fov))
    np.testing.assert_allclose(by_fov[valid], by_fx[valid] * (80 / np.tan(np.radians(30)) / FX), rtol=1e-5)
    assert (tmp_path / "fx" / "room.ply").is_file()


def test_bag_process_on_a_da3_checkpoint(estimator, tmp_path):
    sample = tmp_path / "sample"
    write_sample_bag(sample, SampleConfig(**{**SMALL, "frames": 2}))
    summary = process_bag(sample, tmp_path / "out", estimator, ProcessOptions(progress=False))
    assert (summary.frames_done, summary.frames_total) == (2, 2)
    src, out = by_topic(read_bag(sample)), by_topic(read_bag(tmp_path / "out"))
    assert len(out["/camera/depth"]) == len(out["/camera/points"]) == len(out["/camera/depth/camera_info"]) == 2
    info = src["/camera/camera_info"][0].msg
    image, encoding = decode_image(src["/camera/image"][0].msg)
    depth = depth_from_image(out["/camera/depth"][0].msg)
    expected = estimator.estimate(image, encoding, (info.p[0], info.p[5]))
    np.testing.assert_allclose(depth, expected, rtol=1e-6)  # NaN where expected is NaN
    assert np.isnan(depth).any() and np.isfinite(depth).any()


def test_bag_evaluate_runs_da3_with_the_bags_camera_info(estimator, tmp_path):
    from depth_anything_ros.bag.evaluate import EvaluateOptions, evaluate_bag

    sample = tmp_path / "sample"
    topics = write_sample_bag(sample, SampleConfig(**{**SMALL, "frames": 2}))
    result = evaluate_bag(sample, estimator, EvaluateOptions(gt_topic=topics["depth_gt"], align="scale",
                                                             max_depth=80.0, progress=False))
    assert len(result.frames) == 2 and result.source == f"model on {topics['image']}"
    assert all(f.valid_pixels > 0 and np.isfinite(f.metrics["abs_rel"]) for f in result.frames)


def test_provenance_names_the_focal_scale_and_sky_mode(estimator, synthetic_da3_checkpoint):
    from depth_anything_ros.frame.provenance import model_provenance

    model = model_provenance(estimator, "da3metric-large")
    assert (model["encoder"], model["max_depth"], model["sky"], model["input_size"]) == ("vitl", None, "invalid", RES)
    assert model["synthetic"] and model["path"] == str(synthetic_da3_checkpoint)


def test_one_batch_of_two_cameras_keeps_each_frames_focal_length(estimator):
    image = _image(4)
    pair = estimator.estimate_batch([image, image], "rgb8", [(FX, FX), (3 * FX, 3 * FX)])
    single = estimator.estimate(image, "rgb8", (FX, FX))
    valid = np.isfinite(single)
    np.testing.assert_allclose(pair[0][valid], single[valid], rtol=1e-5)
    np.testing.assert_allclose(pair[1][valid], 3 * single[valid], rtol=1e-5)
    with pytest.raises(ValueError, match="one \\(fx, fy\\) per image"):
        estimator.estimate_batch([image, image], "rgb8", [(FX, FX)])


def test_confidence_runs_the_mirrored_frames_with_their_focal_lengths(estimator):
    # two cameras of different focal lengths in one batch, both wanting the confidence: the batch of four (the
    # images, then their mirrors) must give each mirror its own image's focal length
    image = _image(5)
    frames = [FrameInput(camera=k, pixels=image, encoding="rgb8", outputs=("depth", "confidence"),
                         camera_info=CameraInfo.pinhole(W, H, f, f, (W - 1) / 2, (H - 1) / 2))
              for k, f in enumerate((FX, 3 * FX))]
    results = FramePipeline(estimator).run(frames, FrameOptions())
    single = estimator.estimate(image, "rgb8", (FX, FX))
    valid = np.isfinite(single)
    np.testing.assert_allclose(results[0].depth[valid], single[valid], rtol=1e-4)
    np.testing.assert_allclose(results[1].depth[valid], 3 * single[valid], rtol=1e-4)
    # the flip agreement is scale-free: with each mirror at its own image's focal length both cameras agree on the
    # same pixels (a mirror at the other camera's focal length would disagree threefold: no confidence at all)
    agreeing = [r.confidence > 0 for r in results]
    assert agreeing[0].any() and (agreeing[0] != agreeing[1]).mean() < 0.01
    assert (results[0].confidence[np.isnan(results[0].depth)] == 0).all()  # sky: invalid depth, no confidence


def test_demo_offline_runs_da3_on_its_own_synthetic_weights(tmp_path, cli):
    import json
    import os
    import subprocess
    from pathlib import Path

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = tmp_path / "demo"
    result = subprocess.run([*cli, "demo", "--checkpoint", "da3metric-large", "--out", str(out), "--frames", "2",
                             "--width", "64", "--height", "48", "--input-size", str(RES), "--device", "cpu",
                             "--no-progress"], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "SYNTHETIC WEIGHTS" in result.stdout and "da3metric-large not available" in result.stderr
    assert (out / "synthetic_da3metric_large.safetensors").is_file()
    assert json.loads((out / "report" / "metrics.json").read_text())["frames_evaluated"] == 2
    assert len(by_topic(read_bag(out / "processed_bag"))["/camera/depth"]) == 2


def test_distorted_raw_image_takes_k_and_rectified_takes_p(estimator):
    """With undistort on, a raw distorted image's focal is K's (what the network sees); with it off, P's."""
    image, pipe = _image(5), FramePipeline(estimator)
    k = (FX, 0.0, 79.5, 0.0, FX, 59.5, 0.0, 0.0, 1.0)
    p = (1.5 * FX, 0.0, 79.5, 0.0, 0.0, 1.5 * FX, 59.5, 0.0, 0.0, 0.0, 1.0, 0.0)
    info = CameraInfo(width=W, height=H, distortion_model="plumb_bob", d=(-0.1, 0.01, 0.0, 0.0, 0.0), k=k,
                      r=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0), p=p)
    raw, rect = (pipe.run([FrameInput(pixels=image, encoding="rgb8", camera_info=info, outputs=("depth",))],
                          FrameOptions(undistort=undistort))[0].depth for undistort in (True, False))
    expected = estimator.estimate(image, "rgb8", (FX, FX))
    valid = np.isfinite(expected)
    np.testing.assert_allclose(raw[valid], expected[valid], rtol=1e-6)
    np.testing.assert_allclose(rect[valid], 1.5 * expected[valid], rtol=1e-5)
