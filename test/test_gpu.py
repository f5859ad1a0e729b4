"""GPU correctness: CUDA against CPU, half precision against fp32, compiled against eager, device-side clouds.

Skipped without CUDA. Differences are printed (run with -s) and attached as junit properties, so a GPU run
documents the measured fp16/bf16 error as well as checking its bound.
"""

import math

import numpy as np
import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="needs a CUDA device (torch.cuda.is_available() is False on this machine)"),
]

MAX_DEPTH = 20.0
HEIGHT, WIDTH = 120, 160  # camera image; network input 140 x 182 at input_size 140
INPUT_SIZE = 140


def make_estimator(checkpoint, device, precision="fp32", compile=False):
    from depth_anything_ros.models.v2.estimator import DepthEstimator

    return DepthEstimator(checkpoint=str(checkpoint), encoder="vits", max_depth=MAX_DEPTH, device=device,
                          precision=precision, input_size=INPUT_SIZE, compile=compile)


def image(seed=0, height=HEIGHT, width=WIDTH) -> np.ndarray:
    """(H, W, 3) uint8 gradient plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 200 // width, yy * 200 // height, (xx + yy) * 100 // (width + height)], -1)
    return (base + rng.integers(0, 55, size=(height, width, 3))).astype(np.uint8)


def report(record_property, name: str, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Max and mean absolute difference of two depth maps, printed and recorded."""
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    max_diff, mean_diff = float(diff.max()), float(diff.mean())
    print(f"\n{name}: max |diff| {max_diff:.3e} m, mean |diff| {mean_diff:.3e} m (depth range 0..{MAX_DEPTH} m)")
    record_property(f"{name}_max_abs_m", max_diff)
    record_property(f"{name}_mean_abs_m", mean_diff)
    return max_diff, mean_diff


@pytest.fixture(scope="module")
def cpu_fp32(synthetic_vits_checkpoint):
    return make_estimator(synthetic_vits_checkpoint, "cpu")


@pytest.fixture(scope="module")
def cuda_fp32(synthetic_vits_checkpoint):
    return make_estimator(synthetic_vits_checkpoint, "cuda")


@pytest.fixture
def no_tf32():
    """Run fp32 convolutions and matmuls in true fp32 (no TF32) for the duration of a test."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_fp32_cuda_equals_cpu_without_tf32(cpu_fp32, cuda_fp32, no_tf32, record_property):
    img = image()
    max_diff, mean_diff = report(record_property, "fp32_cuda_vs_cpu_no_tf32", cuda_fp32.estimate(img),
                                 cpu_fp32.estimate(img))
    assert max_diff <= 1e-3 and mean_diff <= 1e-4


def test_fp32_cuda_close_to_cpu_with_default_tf32(cpu_fp32, cuda_fp32, record_property):
    """With torch's defaults cuDNN may run fp32 convolutions in TF32 (10-bit mantissa) on Ampere and newer."""
    img = image()
    max_diff, mean_diff = report(record_property, "fp32_cuda_vs_cpu_default", cuda_fp32.estimate(img),
                                 cpu_fp32.estimate(img))
    assert max_diff <= 0.05 and mean_diff <= 5e-3


@pytest.mark.parametrize("precision", ["fp16", "bf16", "auto"])
def test_half_precision_difference_bounded(synthetic_vits_checkpoint, cuda_fp32, no_tf32, precision,
                                           record_property):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("bf16 is not supported on this GPU")
    est = make_estimator(synthetic_vits_checkpoint, "cuda", precision)
    expected = {"fp16": torch.float16, "bf16": torch.bfloat16,
                "auto": torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16}[precision]
    assert est.dtype == expected
    img = image(1)
    reference = cuda_fp32.estimate(img)
    depth = est.estimate(img)
    assert depth.dtype == np.float32 and np.isfinite(depth).all()
    max_diff, mean_diff = report(record_property, f"{precision}_vs_fp32", depth, reference)
    # bounds: 1 % of the depth range on average, 10 % at worst (bf16 keeps 8 bits of mantissa)
    assert mean_diff <= 0.01 * MAX_DEPTH and max_diff <= 0.1 * MAX_DEPTH


def test_compiled_equals_eager_and_survives_a_resolution_change(synthetic_vits_checkpoint, cuda_fp32, no_tf32,
                                                                  record_property):
    compiled = make_estimator(synthetic_vits_checkpoint, "cuda", compile=True)
    for size in ((HEIGHT, WIDTH), (96, 128), (HEIGHT, WIDTH)):
        img = image(2, *size)
        depth = compiled.estimate(img)
        assert depth.shape == size
        max_diff, mean_diff = report(record_property, f"compiled_vs_eager_{size[1]}x{size[0]}", depth,
                                     cuda_fp32.estimate(img))
        assert max_diff <= 1e-3 and mean_diff <= 1e-4


def test_upload_path_matches_device_tensor_path(cuda_fp32, no_tf32):
    """estimate() (pinned staging buffer, non-blocking copy) equals estimate_tensor on an uploaded tensor."""
    rgb = image(3)
    rgb_tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous().cuda()
    on_device = cuda_fp32.estimate_tensor(rgb_tensor)
    assert on_device.device == cuda_fp32.device and on_device.dtype == torch.float32
    expected = on_device[0].cpu().numpy()
    for _ in range(3):  # the staging buffer is reused between calls
        np.testing.assert_array_equal(cuda_fp32.estimate(rgb, "rgb8"), expected)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    np.testing.assert_array_equal(cuda_fp32.estimate(bgr, "bgr8"), expected)
    padded = np.zeros((HEIGHT, WIDTH + 8, 3), np.uint8)
    padded[:, :WIDTH] = rgb
    np.testing.assert_array_equal(cuda_fp32.estimate(padded[:, :WIDTH], "rgb8"), expected)  # strided view
    rgba = np.concatenate([rgb, np.full((HEIGHT, WIDTH, 1), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(cuda_fp32.estimate(rgba, "rgba8"), expected)


def test_alternating_frames_through_the_reused_staging_buffer(cuda_fp32, cpu_fp32, no_tf32):
    """Back-to-back different frames must not see each other's pixels (pinned buffer reuse is ordered)."""
    frames = [image(10 + i) for i in range(4)]
    expected = [cpu_fp32.estimate(f) for f in frames]
    for _ in range(2):
        for frame, ref in zip(frames, expected, strict=True):
            np.testing.assert_allclose(cuda_fp32.estimate(frame), ref, atol=1e-3)


def test_batch_on_cuda_equals_single_frames(cuda_fp32, no_tf32):
    frames = [image(20 + i) for i in range(3)]
    batch = cuda_fp32.estimate_batch(frames)
    for i, frame in enumerate(frames):
        np.testing.assert_allclose(batch[i], cuda_fp32.estimate(frame), atol=1e-4)


@pytest.mark.parametrize("organized", [True, False])
def test_cloud_on_device_equals_cloud_on_cpu(organized):
    from depth_anything_ros.frame.camera import Intrinsics
    from depth_anything_ros.frame.geometry import PointCloudBuilder
    from depth_anything_ros.frame.rays import ray_grid

    intr = Intrinsics(fx=120.0, fy=118.0, cx=79.5, cy=60.2, width=WIDTH, height=HEIGHT,
                      distortion_model="plumb_bob", d=(0.05, -0.02, 0.001, 0.0005, 0.0))
    rays = torch.from_numpy(ray_grid(intr, undistort=True))
    gen = torch.Generator().manual_seed(0)
    depth = torch.rand(HEIGHT, WIDTH, generator=gen) * 12.0
    depth[::7, ::5] = math.nan
    depth[3::11] = 0.0
    rgb = torch.from_numpy(image(4))
    kwargs = dict(stride=2, min_depth=0.5, max_depth=10.0, organized=organized)
    cpu = PointCloudBuilder().build(depth, rays, rgb, **kwargs)
    gpu = PointCloudBuilder().build(depth.cuda(), rays.cuda(), rgb.cuda(), **kwargs)
    assert (gpu.height, gpu.width, gpu.point_step, gpu.row_step, gpu.fields, gpu.is_dense) == \
        (cpu.height, cpu.width, cpu.point_step, cpu.row_step, cpu.fields, cpu.is_dense)
    a = np.frombuffer(cpu.data, np.float32).reshape(-1, 4)
    b = np.frombuffer(gpu.data, np.float32).reshape(-1, 4)
    np.testing.assert_allclose(b[:, :3], a[:, :3], rtol=1e-6, atol=0, equal_nan=True)
    assert np.frombuffer(gpu.data, np.uint8).reshape(-1, 16)[:, 12:].tobytes() == \
        np.frombuffer(cpu.data, np.uint8).reshape(-1, 16)[:, 12:].tobytes()


def test_colorize_on_device_equals_cpu():
    from depth_anything_ros.frame.colorize import colorize, colormap_lut

    lut = colormap_lut("turbo")
    depth = torch.linspace(-1.0, 25.0, HEIGHT * WIDTH).reshape(HEIGHT, WIDTH)
    depth[0, :10] = math.nan
    cpu = colorize(depth, 0.0, MAX_DEPTH, lut)
    gpu = colorize(depth.cuda(), 0.0, MAX_DEPTH, lut)
    assert gpu.device.type == "cuda"
    assert torch.equal(gpu.cpu(), cpu)
