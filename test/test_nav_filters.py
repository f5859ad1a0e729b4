"""Flying-pixel filter, confidence and voxel grid on scenes whose answer is known, and through the pipeline.

frame/edges.py, confidence.py, voxel.py and nav.py; expected values are written out here from the formulas.
"""

import math

import numpy as np
import pytest
import torch

from depth_anything_ros.frame.camera import CameraInfo, Intrinsics
from depth_anything_ros.frame.confidence import confidence, flip_agreement
from depth_anything_ros.frame.edges import EdgeGeometry, flying
from depth_anything_ros.frame.frame_io import FrameOptions
from depth_anything_ros.frame.geometry import XYZRGB_FIELDS, CloudBuffer, PointCloudBuilder, points_from_cloud
from depth_anything_ros.frame.nav import gated_depths
from depth_anything_ros.frame.pipeline import FrameInput, FramePipeline
from depth_anything_ros.frame.rays import ray_grid
from depth_anything_ros.frame.scan import ScanOptions
from depth_anything_ros.frame.voxel import voxel_downsample
from depth_anything_ros.models.v2.estimator import DepthEstimator

W, H = 64, 48
INTR = Intrinsics(fx=500.0, fy=500.0, cx=31.5, cy=23.5, width=W, height=H)  # the pixel size of a VGA camera
NEAR, FAR = 1.0, 3.0
STEP, SMEAR = 30, 5  # columns < 30 near, 30..34 smeared from near to far, >= 35 far


def rays() -> torch.Tensor:
    return torch.from_numpy(ray_grid(INTR, True))


def step_edge() -> np.ndarray:
    """(H, W) depth: a near plane, a smear of SMEAR columns in equal steps, a far plane (a network's boundary)."""
    depth = np.full((H, W), FAR, np.float32)
    depth[:, :STEP] = NEAR
    for i in range(SMEAR):
        depth[:, STEP + i] = NEAR + (FAR - NEAR) * (i + 1) / (SMEAR + 1)
    return depth


def unorganised_points(depth: np.ndarray) -> np.ndarray:
    cloud = PointCloudBuilder().build(torch.from_numpy(depth), rays(), organized=False)
    return points_from_cloud(cloud.data, 1, cloud.width, cloud.point_step, cloud.fields)[0][0]


def test_edge_filter_removes_the_smear_and_keeps_both_planes():
    depth = torch.from_numpy(step_edge())
    cos2 = EdgeGeometry(rays()).grazing(depth)
    kept = torch.where(flying(cos2, 5.0), math.nan, depth).numpy()
    before, after = unorganised_points(step_edge()), unorganised_points(kept)
    near, far = STEP * H, (W - STEP - SMEAR) * H  # 1440 and 1392 points
    for points, smear in ((before, SMEAR * H), (after, 0)):
        assert (points[:, 2] == NEAR).sum() == near and (points[:, 2] == FAR).sum() == far
        assert ((points[:, 2] > NEAR) & (points[:, 2] < FAR)).sum() == smear
    assert len(before) == near + far + SMEAR * H and len(after) == near + far


def test_a_clean_step_loses_no_point():
    depth = np.full((H, W), FAR, np.float32)
    depth[:, :STEP] = NEAR
    assert not flying(EdgeGeometry(rays()).grazing(torch.from_numpy(depth)), 5.0).any()


def test_surface_angle_of_a_fronto_parallel_plane():
    # plane z = 2: the segment to a row neighbour is (dx, 0, 0), so cos^2 = x^2 / |r|^2 with r = (x, y, 1);
    # a column neighbour gives y^2 / |r|^2; border pixels lack a neighbour on that axis (0)
    cos2 = EdgeGeometry(rays()).grazing(torch.full((H, W), 2.0)).numpy()
    v, u = np.mgrid[0:H, 0:W]
    x, y = (u - INTR.cx) / INTR.fx, (v - INTR.cy) / INTR.fy
    norm2 = x ** 2 + y ** 2 + 1
    row = np.where((u > 0) & (u < W - 1), x ** 2 / norm2, 0.0)
    column = np.where((v > 0) & (v < H - 1), y ** 2 / norm2, 0.0)
    np.testing.assert_allclose(cos2, np.maximum(row, column), atol=2e-6)


def test_flip_agreement_formula():
    d = torch.full((2, 3), 2.0)
    assert torch.equal(flip_agreement(d, d), torch.ones(2, 3))  # a flip-symmetric answer: full agreement
    m = d * 1.05  # 5 % apart: 1 - 0.1 / (0.1 * 2.05)
    torch.testing.assert_close(flip_agreement(d, m), torch.full((2, 3), 1 - 0.1 / (0.1 * 2.05)))
    assert torch.equal(flip_agreement(d, d * 1.2), torch.zeros(2, 3))  # over 10 %: none
    d[0, 0] = math.nan
    assert flip_agreement(d, d)[0, 0] == 0.0  # invalid depth: confidence 0


def test_confidence_is_low_beside_a_step_and_high_on_planes():
    depth = torch.from_numpy(step_edge())
    conf = confidence(flip_agreement(depth, depth), EdgeGeometry(rays()).grazing(depth)).numpy()
    smear = conf[1:-1, STEP:STEP + SMEAR]
    assert smear.max() < 0.1  # the surface angle inside the smear is a few degrees: sin < 0.1
    planes = np.concatenate([conf[1:-1, 1:STEP - 1].ravel(), conf[1:-1, STEP + SMEAR + 1:-1].ravel()])
    assert planes.min() > 0.99  # facing planes: the sine of at least 90 - 3.6 degrees (the widest ray)


def test_gates_drop_low_confidence_pixels_from_cloud_and_scan_only():
    depth = torch.full((H, W), 2.0)
    agreement = torch.ones(H, W)
    agreement[:, :8] = 0.25  # confidence <= 0.25
    opts = FrameOptions(cloud_min_confidence=0.5, scan=ScanOptions(min_confidence=0.2))
    conf, cloud_depth, scan_depth = gated_depths(depth, EdgeGeometry(rays()), agreement, opts, ("points", "scan"))
    assert torch.isnan(cloud_depth[:, :8]).all() and not torch.isnan(cloud_depth[:, 8:]).any()
    assert not torch.isnan(scan_depth).any()  # 0.25 >= 0.2
    assert conf.shape == (H, W) and not torch.isnan(depth).any()  # the depth itself is never changed


def test_voxel_grid_centroids_and_average_colours():
    # voxel (0, 0, 0) of side 0.5: three points; voxel (2, 0, 1): one; voxel (-1, 0, 0): two
    xyz = np.array([[0.1, 0.1, 0.1], [0.2, 0.3, 0.4], [0.3, 0.2, 0.1], [1.2, 0.1, 0.7],
                    [-0.1, 0.0, 0.2], [-0.3, 0.2, 0.4]], np.float32)
    rgb = np.array([[10, 20, 30], [20, 30, 40], [31, 40, 50], [200, 100, 0], [0, 0, 0], [255, 255, 1]], np.uint8)
    points = np.zeros((6, 4), np.float32)
    points[:, :3] = xyz
    packed = points.view(np.uint8)
    packed[:, 12], packed[:, 13], packed[:, 14] = rgb[:, 2], rgb[:, 1], rgb[:, 0]  # b, g, r
    cloud = CloudBuffer(1, 6, 16, 96, XYZRGB_FIELDS, points.tobytes(), True)
    out = voxel_downsample(cloud, 0.5)
    assert (out.height, out.width, out.row_step, out.is_dense) == (1, 3, 48, True)
    got_xyz, got_rgb = points_from_cloud(out.data, 1, 3, 16, out.fields)
    # ordered by voxel index (i, j, k) from the lowest: (-1, 0, 0), (0, 0, 0), (2, 0, 1)
    np.testing.assert_allclose(got_xyz[0], [[-0.2, 0.1, 0.3], [0.2, 0.2, 0.2], [1.2, 0.1, 0.7]], rtol=1e-6)
    np.testing.assert_array_equal(got_rgb[0], [[128, 128, 0], [20, 30, 40], [200, 100, 0]])  # 127.5 -> 128, 0.5 -> 0


def test_voxel_options_are_refused_for_organised_clouds():
    with pytest.raises(ValueError, match=r"voxel size 0.05 m needs an unorganised cloud"):
        FrameOptions(voxel_size=0.05)
    FrameOptions(voxel_size=0.05, cloud_organized=False)
    with pytest.raises(ValueError, match="needs an unorganised cloud"):
        voxel_downsample(PointCloudBuilder().build(torch.ones(H, W), rays()), 0.1)


@pytest.fixture(scope="module")
def pipeline(synthetic_vits_checkpoint):
    return FramePipeline(DepthEstimator(synthetic_vits_checkpoint, encoder="vits", max_depth=20.0, device="cpu",
                                        precision="fp32", input_size=70))


def test_pipeline_publishes_scan_and_confidence(pipeline):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    info = CameraInfo.pinhole(W, H, 50.0, 50.0, 31.5, 23.5)
    frame = FrameInput(pixels=pixels, encoding="rgb8", camera_info=info,
                       outputs=("depth", "points", "scan", "confidence"))
    opts = FrameOptions(cloud_organized=False, voxel_size=0.2, edge_filter=True,
                        scan=ScanOptions(range_min=0.0, range_max=100.0))
    result = pipeline.run([frame], opts)[0]
    assert not result.problems
    assert result.confidence.shape == (H, W) and result.confidence.dtype == np.float32
    assert (result.confidence >= 0).all() and (result.confidence <= 1).all()
    assert result.scan.ranges.shape == (W,) and result.cloud.height == 1
    plain = pipeline.run([FrameInput(pixels=pixels, encoding="rgb8", camera_info=info, outputs=("depth",))],
                         FrameOptions())[0]
    # the mirrored image shares the batch: the depth stays the network's answer for the image itself
    np.testing.assert_allclose(result.depth, plain.depth, rtol=1e-4)
