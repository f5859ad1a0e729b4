"""Ray grids (with OpenCV undistortion) and PointCloud2 buffers from depth."""

import math

import cv2
import numpy as np
import pytest
import torch

from depth_anything_ros.frame.camera import Intrinsics
from depth_anything_ros.frame.geometry import FLOAT32, POINT_STEP, CloudBuffer, PointCloudBuilder, points_from_cloud
from depth_anything_ros.frame.rays import ray_grid

sensor_msgs = pytest.importorskip('sensor_msgs.msg')

PINHOLE = Intrinsics(fx=91.5, fy=93.25, cx=31.7, cy=22.4, width=64, height=48)
DISTORTED = {
    'plumb_bob': (-0.28, 0.09, 0.0008, -0.0005, -0.01),
    'rational_polynomial': (0.4, -0.1, 0.0005, 0.0003, 0.01, 0.7, -0.05, 0.02),
    'equidistant': (0.05, -0.01, 0.003, -0.001),
}


def distorted(model):
    k = (60.0, 0.0, 32.3, 0.0, 61.0, 23.6, 0.0, 0.0, 1.0)
    return Intrinsics(fx=55.0, fy=56.0, cx=33.0, cy=24.0, width=64, height=48, distortion_model=model,
                      d=DISTORTED[model], k=k)


KERNELS = ('opencv', 'torch')


def scene(height, width, seed=0):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.3, 12.0, size=(height, width)).astype(np.float32)
    rgb = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return depth, rgb


def test_ray_grid_without_distortion_is_exact():
    rays = ray_grid(PINHOLE, undistort=True)
    assert rays.shape == (48, 64, 3) and rays.dtype == np.float32
    u, v = np.meshgrid(np.arange(64), np.arange(48))
    np.testing.assert_array_equal(rays[..., 0], ((u - PINHOLE.cx) / PINHOLE.fx).astype(np.float32))
    np.testing.assert_array_equal(rays[..., 1], ((v - PINHOLE.cy) / PINHOLE.fy).astype(np.float32))
    np.testing.assert_array_equal(rays[..., 2], 1.0)


def test_undistort_false_uses_the_rectified_projection():
    intr = distorted('plumb_bob')
    u, v = np.meshgrid(np.arange(64), np.arange(48))
    rays = ray_grid(intr, undistort=False)
    np.testing.assert_array_equal(rays[..., 0], ((u - intr.cx) / intr.fx).astype(np.float32))
    np.testing.assert_array_equal(rays[..., 1], ((v - intr.cy) / intr.fy).astype(np.float32))


@pytest.mark.parametrize('kernel', KERNELS)
@pytest.mark.parametrize('organized', [True, False])
@pytest.mark.parametrize('stride', [1, 4])
def test_rectified_cloud_is_the_pinhole_back_projection(stride, organized, kernel):
    depth, _ = scene(48, 64)
    cloud = PointCloudBuilder(kernel).build(torch.from_numpy(depth), torch.from_numpy(ray_grid(PINHOLE, True)),
                                      stride=stride, organized=organized)
    height, width = len(range(0, 48, stride)), len(range(0, 64, stride))
    assert cloud.point_step == POINT_STEP == 16 and cloud.fields == (('x', 0, FLOAT32, 1), ('y', 4, FLOAT32, 1),
                                                                     ('z', 8, FLOAT32, 1))
    if organized:
        assert (cloud.height, cloud.width, cloud.is_dense) == (height, width, False)
    else:
        assert (cloud.height, cloud.width, cloud.is_dense) == (1, height * width, True)
    assert cloud.row_step == cloud.width * 16 and len(cloud.data) == cloud.height * cloud.row_step
    xyz, rgb = points_from_cloud(cloud.data, cloud.height, cloud.width, cloud.point_step, cloud.fields)
    assert rgb is None
    xyz = xyz.reshape(height, width, 3)
    u, v = np.meshgrid(np.arange(0, 64, stride), np.arange(0, 48, stride))
    z = depth[::stride, ::stride].astype(np.float64)
    np.testing.assert_array_equal(xyz[..., 2], depth[::stride, ::stride])
    np.testing.assert_allclose(xyz[..., 0], (u - PINHOLE.cx) * z / PINHOLE.fx, rtol=3e-7, atol=1e-7)
    np.testing.assert_allclose(xyz[..., 1], (v - PINHOLE.cy) * z / PINHOLE.fy, rtol=3e-7, atol=1e-7)
    padding = np.frombuffer(cloud.data, np.uint8).reshape(-1, 16)[:, 12:]
    assert not padding.any()


@pytest.mark.parametrize('kernel', KERNELS)
@pytest.mark.parametrize('stride', [1, 4])
def test_invalid_and_out_of_range_points(stride, kernel):
    depth, rgb = scene(48, 64, seed=2)
    depth[0, :8] = [np.nan, np.inf, -np.inf, 0.0, -1.0, 0.5, 11.9, 12.5]
    depth[4, 4] = np.nan
    min_depth, max_depth = 0.6, 11.0
    builder = PointCloudBuilder(kernel)
    args = (torch.from_numpy(depth), torch.from_numpy(ray_grid(PINHOLE, True)), torch.from_numpy(rgb))
    sub = depth[::stride, ::stride]
    expected_valid = np.isfinite(sub) & (sub >= min_depth) & (sub <= max_depth)
    assert not expected_valid.all()

    organised = builder.build(*args, stride=stride, min_depth=min_depth, max_depth=max_depth, organized=True)
    xyz, colours = points_from_cloud(organised.data, organised.height, organised.width, 16, organised.fields)
    assert xyz.shape == (*sub.shape, 3) and organised.is_dense is False
    assert np.array_equal(np.isfinite(xyz).all(-1), expected_valid)
    assert np.isnan(xyz[~expected_valid]).all()
    np.testing.assert_array_equal(colours, rgb[::stride, ::stride])

    dense = builder.build(*args, stride=stride, min_depth=min_depth, max_depth=max_depth, organized=False)
    dense_xyz, dense_colours = points_from_cloud(dense.data, dense.height, dense.width, 16, dense.fields)
    assert dense.is_dense is True and dense.height == 1 and dense.width == expected_valid.sum()
    np.testing.assert_array_equal(dense_xyz[0], xyz[expected_valid])
    np.testing.assert_array_equal(dense_colours[0], rgb[::stride, ::stride][expected_valid])


@pytest.mark.parametrize('kernel', KERNELS)
def test_colour_layout_is_packed_bgr_float(kernel):
    depth, rgb = scene(4, 5)
    cloud = PointCloudBuilder(kernel).build(torch.from_numpy(depth), torch.from_numpy(ray_grid(
        Intrinsics(fx=5.0, fy=5.0, cx=2.0, cy=1.5, width=5, height=4), True)), torch.from_numpy(rgb))
    assert cloud.fields[3] == ('rgb', 12, FLOAT32, 1)
    raw = np.frombuffer(cloud.data, np.uint8).reshape(4, 5, 16)
    np.testing.assert_array_equal(raw[..., 12], rgb[..., 2])  # b
    np.testing.assert_array_equal(raw[..., 13], rgb[..., 1])  # g
    np.testing.assert_array_equal(raw[..., 14], rgb[..., 0])  # r
    assert not raw[..., 15].any()
    packed = np.frombuffer(cloud.data, '<u4').reshape(4, 5, 4)[..., 3]  # the 0x00RRGGBB uint32 of PCL
    expected = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    np.testing.assert_array_equal(packed, expected)


def test_fields_build_real_pointcloud2_messages():
    depth, rgb = scene(8, 8)
    intr = Intrinsics(fx=8.0, fy=8.0, cx=3.5, cy=3.5, width=8, height=8)
    cloud = PointCloudBuilder().build(torch.from_numpy(depth), torch.from_numpy(ray_grid(intr, True)),
                                      torch.from_numpy(rgb), stride=2)
    fields = [sensor_msgs.PointField(name=n, offset=o, datatype=t, count=c) for n, o, t, c in cloud.fields]
    assert fields[0].datatype == sensor_msgs.PointField.FLOAT32
    msg = sensor_msgs.PointCloud2(height=cloud.height, width=cloud.width, fields=fields, is_bigendian=False,
                                  point_step=cloud.point_step, row_step=cloud.row_step, data=cloud.data,
                                  is_dense=cloud.is_dense)
    xyz, colours = points_from_cloud(bytes(msg.data), msg.height, msg.width, msg.point_step, msg.fields)
    np.testing.assert_array_equal(xyz[..., 2], depth[::2, ::2])
    np.testing.assert_array_equal(colours, rgb[::2, ::2])


@pytest.mark.parametrize('model', sorted(DISTORTED))
def test_distorted_points_project_onto_their_pixels(model):
    intr = distorted(model)
    rays = ray_grid(intr, undistort=True)
    assert np.isfinite(rays).all(), 'moderate distortion must be invertible everywhere'
    depth, _ = scene(48, 64, seed=5)
    cloud = PointCloudBuilder().build(torch.from_numpy(depth), torch.from_numpy(rays))
    xyz, _ = points_from_cloud(cloud.data, cloud.height, cloud.width, cloud.point_step, cloud.fields)
    np.testing.assert_array_equal(xyz[..., 2], depth)
    points = xyz.reshape(-1, 1, 3).astype(np.float64)
    k_matrix, coefficients, zero = intr.camera_matrix(), np.array(intr.d), np.zeros(3)
    if model == 'equidistant':
        projected = cv2.fisheye.projectPoints(points, zero, zero, k_matrix, coefficients)[0]
    else:
        projected = cv2.projectPoints(points, zero, zero, k_matrix, coefficients)[0]
    u, v = np.meshgrid(np.arange(64), np.arange(48))
    error = np.hypot(projected[:, 0, 0] - u.ravel(), projected[:, 0, 1] - v.ravel())
    assert error.max() < 0.01, error.max()


def test_non_invertible_distortion_gives_nan_rays():
    # k1 strongly negative: beyond some radius the model folds back, no ray reaches the image corners
    intr = Intrinsics(fx=40.0, fy=40.0, cx=32.0, cy=24.0, width=64, height=48, distortion_model='plumb_bob',
                      d=(-0.9, 0.0, 0.0, 0.0, 0.0))
    rays = ray_grid(intr, undistort=True)
    invalid = np.isnan(rays).any(-1)
    assert invalid[0, 0] and not invalid[24, 32]
    depth = torch.full((48, 64), 2.0)
    for kernel in KERNELS:
        dense = PointCloudBuilder(kernel).build(depth, torch.from_numpy(rays), organized=False)
        assert dense.width == (~invalid).sum()
        organised = PointCloudBuilder(kernel).build(depth, torch.from_numpy(rays))
        xyz, _ = points_from_cloud(organised.data, 48, 64, 16, organised.fields)
        assert np.array_equal(np.isnan(xyz).all(-1), invalid)


@pytest.mark.parametrize('organized', [True, False])
@pytest.mark.parametrize('stride', [1, 3])
@pytest.mark.parametrize('with_rgb', [True, False])
@pytest.mark.parametrize(('min_depth', 'max_depth'), [(0.3, 11.5), (0.0, math.inf)])
def test_opencv_and_torch_kernels_give_identical_bytes(organized, stride, with_rgb, min_depth, max_depth):
    depth, rgb = scene(48, 64, seed=7)
    depth[::5, ::3] = np.nan
    depth[1, :4] = [0.0, -1.0, np.inf, 0.25]
    # the range ends in float32 and their neighbours, the smallest positive (denormal) and the largest float32
    ends = [np.float32(0.3), np.float32(11.5), np.nextafter(np.float32(0.3), np.float32(0)),
            np.nextafter(np.float32(11.5), np.float32(20)), np.nextafter(np.float32(0), np.float32(1)),
            np.finfo(np.float32).max]
    depth[3, :6] = ends
    depth[6, :6] = ends  # a row that stride 3 keeps
    rays = ray_grid(distorted('plumb_bob'), True)
    rays[0, :10] = np.nan
    args = (torch.from_numpy(depth), torch.from_numpy(rays), torch.from_numpy(rgb) if with_rgb else None)
    kwargs = {'stride': stride, 'min_depth': min_depth, 'max_depth': max_depth, 'organized': organized}
    first = PointCloudBuilder('opencv').build(*args, **kwargs)
    second = PointCloudBuilder('torch').build(*args, **kwargs)
    assert first == second


def test_ray_cache_follows_the_rays_tensor():
    builder = PointCloudBuilder()
    depth = torch.full((48, 64), 2.0)
    first = builder.build(depth, torch.from_numpy(ray_grid(PINHOLE, True)))
    other = Intrinsics(fx=40.0, fy=40.0, cx=10.0, cy=10.0, width=64, height=48)
    second = builder.build(depth, torch.from_numpy(ray_grid(other, True)))
    assert points_from_cloud(second.data, 48, 64, 16, second.fields)[0][0, 0, 0] == np.float32(-10.0 / 40.0 * 2.0)
    assert first.data != second.data
    with pytest.raises(ValueError, match='cpu_kernel'):
        PointCloudBuilder('numba')


def test_distortion_model_errors():
    with pytest.raises(ValueError, match="unknown distortion model 'kannala'.*plumb_bob"):
        ray_grid(Intrinsics(fx=1.0, fy=1.0, cx=0.0, cy=0.0, width=2, height=2, distortion_model='kannala',
                            d=(0.1,)), undistort=True)
    with pytest.raises(ValueError, match="'equidistant' needs 4 coefficients, got 5"):
        ray_grid(Intrinsics(fx=1.0, fy=1.0, cx=0.0, cy=0.0, width=2, height=2, distortion_model='equidistant',
                            d=(0.1, 0, 0, 0, 0)), undistort=True)
    # an unknown model with all-zero coefficients is simply undistorted
    rays = ray_grid(Intrinsics(fx=1.0, fy=1.0, cx=0.0, cy=0.0, width=2, height=2, distortion_model='x',
                               d=(0.0,)), undistort=True)
    assert np.isfinite(rays).all()


def test_builder_input_errors():
    builder = PointCloudBuilder()
    depth, rays = torch.ones(4, 5), torch.from_numpy(ray_grid(Intrinsics(5.0, 5.0, 2.0, 2.0, 5, 4), True))
    with pytest.raises(ValueError, match='rays must be'):
        builder.build(depth, rays[:3])
    with pytest.raises(ValueError, match='rgb must be'):
        builder.build(depth, rays, torch.zeros(4, 5, 3))
    with pytest.raises(ValueError, match='depth must be'):
        builder.build(depth[None], rays)
    for stride in (0, 1.5, True):
        with pytest.raises(ValueError, match='stride'):
            builder.build(depth, rays, stride=stride)
    with pytest.raises(ValueError, match='min_depth < max_depth'):
        builder.build(depth, rays, min_depth=3.0, max_depth=2.0)


@pytest.mark.parametrize('kernel', KERNELS)
def test_half_precision_depth_and_buffer_reuse(kernel):
    builder = PointCloudBuilder(kernel)
    rays = torch.from_numpy(ray_grid(PINHOLE, True))
    first = builder.build(torch.full((48, 64), 2.0, dtype=torch.float16), rays)
    second = builder.build(torch.full((48, 64), 3.0), rays)
    assert isinstance(first, CloudBuffer)
    assert points_from_cloud(first.data, 48, 64, 16, first.fields)[0][..., 2].max() == 2.0
    assert points_from_cloud(second.data, 48, 64, 16, second.fields)[0][..., 2].min() == 3.0


def test_points_from_cloud_requires_xyz():
    with pytest.raises(ValueError, match="no field 'z'"):
        points_from_cloud(bytes(16), 1, 1, 16, [('x', 0, FLOAT32, 1), ('y', 4, FLOAT32, 1)])
    assert math.isnan(points_from_cloud(np.full(4, np.nan, np.float32).tobytes(), 1, 1, 16,
                                        [('x', 0, 7, 1), ('y', 4, 7, 1), ('z', 8, 7, 1)])[0][0, 0, 0])
