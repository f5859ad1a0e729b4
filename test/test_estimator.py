"""DepthEstimator: device/precision choice, every input encoding, batching, tensor path, max_depth handling."""

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from depth_anything_ros.models.checkpoint_io import CheckpointError
from depth_anything_ros.models.synthetic_weights import synthetic_state_dict, write_synthetic_checkpoint
from depth_anything_ros.models.v2.estimator import DepthEstimator, resolve_device, resolve_precision

INPUT = 70  # small network input keeps these CPU tests fast


@pytest.fixture(scope="module")
def state():
    return synthetic_state_dict("vits", seed=0)


@pytest.fixture(scope="module")
def est(state):
    return DepthEstimator(state, max_depth=20.0, device="cpu", input_size=INPUT)


@pytest.fixture(scope="module")
def rgb():
    """Smooth colour image with structure, (H, W, 3) uint8, odd non-square size."""
    y, x = np.mgrid[0:61, 0:83]
    r = 128 + 100 * np.sin(x / 9.0)
    g = 128 + 100 * np.cos(y / 7.0)
    b = np.where((x - 50) ** 2 + (y - 30) ** 2 < 300, 220, 30)
    return np.stack([r, g, b], -1).astype(np.uint8)


def test_auto_device_and_precision_on_this_machine(est):
    assert est.device == resolve_device("auto")
    if not torch.cuda.is_available():
        assert est.device.type == "cpu" and est.dtype == torch.float32
    assert next(est.model.parameters()).device.type == est.device.type
    assert not est.model.training and est.encoder == "vits" and est.max_depth == 20.0 and est.is_metric


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_requested_without_cuda(device):
    with pytest.raises(ValueError, match=f"device '{device}' requested but CUDA is not available"):
        resolve_device(device)


@pytest.mark.parametrize("device", ["tpu", "gpu0", "mps"])
def test_unknown_device(device):
    with pytest.raises(ValueError, match="expected 'auto', 'cpu', 'cuda' or 'cuda:N'"):
        resolve_device(device)


def test_precision_choice_on_cpu():
    cpu = torch.device("cpu")
    flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("flags")), [])
    native_bf16 = "avx512_bf16" in flags or "amx_bf16" in flags  # read here, not by the code under test
    assert resolve_precision("auto", cpu) == (torch.bfloat16 if native_bf16 else torch.float32)
    assert resolve_precision("fp32", cpu) == torch.float32
    assert resolve_precision("bf16", cpu) == torch.bfloat16
    with pytest.raises(ValueError, match="'fp16' is not supported on CPU"):
        resolve_precision("fp16", cpu)
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        resolve_precision("half", cpu)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_auto_precision_on_cuda():
    cuda = torch.device("cuda")
    assert resolve_precision("auto", cuda) == (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)


def test_estimate_output(est, rgb):
    depth = est.estimate(rgb, "rgb8")
    assert depth.shape == rgb.shape[:2] and depth.dtype == np.float32
    assert np.isfinite(depth).all() and depth.min() > 0 and depth.max() < 20.0
    assert depth.std() > 0.5  # the synthetic weights give a depth map that varies over the image


def test_colour_encodings_agree(est, rgb):
    ref = est.estimate(rgb, "rgb8")
    alpha = np.full(rgb.shape[:2] + (1,), 255, np.uint8)
    assert np.array_equal(est.estimate(np.ascontiguousarray(rgb[..., ::-1]), "bgr8"), ref)
    assert np.array_equal(est.estimate(np.concatenate([rgb, alpha], -1), "rgba8"), ref)
    assert np.array_equal(est.estimate(np.concatenate([rgb[..., ::-1], alpha], -1), "bgra8"), ref)
    assert np.array_equal(est.estimate(rgb[..., ::-1], "bgr8"), ref)  # non-contiguous views are fine


def test_mono_encodings_equal_a_gray_colour_image(est, rgb):
    gray = rgb[..., 1].copy()
    ref = est.estimate(np.repeat(gray[..., None], 3, axis=-1), "rgb8")
    assert np.array_equal(est.estimate(gray, "mono8"), ref)
    assert np.array_equal(est.estimate(gray[..., None], "mono8"), ref)
    np.testing.assert_allclose(est.estimate(gray.astype(np.uint16) * 257, "mono16"), ref, atol=1e-4)
    assert not np.allclose(ref, est.estimate(rgb, "rgb8"), atol=1e-3)  # colour matters


def test_bad_input_is_a_clear_error(est):
    with pytest.raises(ValueError, match="unsupported encoding 'bayer_rggb8'"):
        est.estimate(np.zeros((8, 8), np.uint8), "bayer_rggb8")
    with pytest.raises(ValueError, match="must be uint8, got float32"):
        est.estimate(np.zeros((8, 8, 3), np.float32), "rgb8")


def test_batch_is_one_forward_and_equals_single_images(est, rgb):
    images = [rgb, np.ascontiguousarray(rgb[::-1]), np.ascontiguousarray(rgb[:, ::-1])]
    calls = []
    handle = est.model.register_forward_hook(lambda module, args, out: calls.append(args[0].shape))
    try:
        batch = est.estimate_batch(images, "rgb8")
    finally:
        handle.remove()
    assert calls == [(3, 3, 70, 98)]
    assert batch.shape == (3,) + rgb.shape[:2] and batch.dtype == np.float32
    for image, depth in zip(images, batch, strict=True):
        np.testing.assert_allclose(depth, est.estimate(image, "rgb8"), atol=2e-4)


def test_batch_errors(est, rgb):
    with pytest.raises(ValueError, match="one size"):
        est.estimate_batch([rgb, rgb[:-1]], "rgb8")
    with pytest.raises(ValueError, match="at least one image"):
        est.estimate_batch([], "rgb8")


def test_estimate_tensor_stays_on_device(est, rgb):
    tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None].to(est.device)
    out = est.estimate_tensor(tensor)
    assert out.device == est.device and out.dtype == torch.float32 and out.shape == (1,) + rgb.shape[:2]
    np.testing.assert_array_equal(out.cpu().numpy()[0], est.estimate(rgb, "rgb8"))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\) uint8"):
        est.estimate_tensor(tensor.float())


def test_max_depth_from_file_name_and_user(tmp_path, state, rgb):
    known = write_synthetic_checkpoint(tmp_path / "depth_anything_v2_metric_vkitti_vits.pth", "vits")
    assert DepthEstimator(known, device="cpu", input_size=INPUT).max_depth == 80.0
    assert DepthEstimator(known, max_depth=40.0, device="cpu", input_size=INPUT).max_depth == 40.0
    unknown = write_synthetic_checkpoint(tmp_path / "mine.safetensors", "vits")
    with pytest.raises(CheckpointError, match="max_depth is not known"):
        DepthEstimator(unknown, device="cpu")
    metric = DepthEstimator(unknown, max_depth=10.0, device="cpu", input_size=INPUT).estimate(rgb)
    assert metric.max() < 10.0
    with pytest.raises(ValueError, match="max_depth must be positive"):
        DepthEstimator(state, max_depth=0.0, device="cpu")


def test_relative_checkpoint(state, rgb):
    est = DepthEstimator(state, max_depth=None, device="cpu", input_size=INPUT)
    assert not est.is_metric and est.model.max_depth is None
    depth = est.estimate(rgb, "rgb8")
    assert depth.shape == rgb.shape[:2] and (depth >= 0).all() and depth.std() > 0


def test_bf16_on_cpu_is_close_to_fp32(state, est, rgb):
    low = DepthEstimator(state, max_depth=20.0, device="cpu", precision="bf16", input_size=INPUT)
    assert low.dtype == torch.bfloat16 and next(low.model.parameters()).dtype == torch.bfloat16
    depth = low.estimate(rgb, "rgb8")
    assert depth.dtype == np.float32
    assert np.abs(depth - est.estimate(rgb, "rgb8")).mean() < 0.5


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (inductor on CPU takes minutes)")
def test_compile_logs_each_new_shape_and_matches_eager(state, rgb, caplog):
    kwargs = {"max_depth": 20.0, "device": "cuda", "precision": "fp32", "input_size": INPUT}
    est = DepthEstimator(state, compile=True, **kwargs)
    with caplog.at_level(logging.INFO, logger="depth_anything_ros.models.v2.estimator"):
        first = est.estimate(rgb)
        est.estimate(rgb)
        est.estimate(np.ascontiguousarray(rgb[:, :40]))
    assert [r.message for r in caplog.records if "compiling" in r.message] == [
        "compiling Depth-Anything-V2 vits for input shape (1, 3, 70, 98)",
        "compiling Depth-Anything-V2 vits for input shape (1, 3, 112, 70)"]
    np.testing.assert_allclose(first, DepthEstimator(state, **kwargs).estimate(rgb), atol=1e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_estimate_matches_cpu(state, est, rgb):
    cuda = DepthEstimator(state, max_depth=20.0, device="cuda", precision="fp32", input_size=INPUT)
    np.testing.assert_allclose(cuda.estimate(rgb), est.estimate(rgb), atol=1e-3)
    low = DepthEstimator(state, max_depth=20.0, device="cuda", input_size=INPUT)
    assert low.dtype in (torch.bfloat16, torch.float16)
    assert np.abs(low.estimate(rgb) - est.estimate(rgb)).mean() < 0.5


def test_compile_auto_is_off_on_cpu_and_upload_estimate_raw_equal_estimate(est, rgb):
    assert est.compiled is False and est.compiled_shapes == []
    raw = est.upload([rgb, rgb], "rgb8")
    assert raw.shape == (2, *rgb.shape) and raw.dtype == torch.uint8
    depth = est.estimate_raw(raw, "rgb8")
    assert depth.shape == (2, *rgb.shape[:2]) and depth.dtype == torch.float32
    np.testing.assert_allclose(depth[0].numpy(), est.estimate(rgb), atol=1e-4)  # batch 2 vs 1: BLAS noise
    est.warmup(*rgb.shape[:2])  # runs a zero frame, uncompiled here
