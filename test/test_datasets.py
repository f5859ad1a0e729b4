"""Dataset readers on small datasets written in each format's exact layout (test/dataset_writers.py)."""

import subprocess
import sys

import cv2
import h5py
import numpy as np
import pytest
from dataset_writers import (
    sun_encode,
    write_folder,
    write_kitti_selection,
    write_kitti_tree,
    write_nyu_h5,
    write_nyu_list,
    write_nyu_mat,
    write_sun,
    write_tum,
)

from depth_anything_ros.datasets import sun, tum
from depth_anything_ros.datasets.base import DatasetError, Protocol
from depth_anything_ros.datasets.registry import detect_format, open_dataset


def _check(dataset, expected: dict, intrinsics=None) -> None:
    assert sorted(dataset.names) == sorted(expected)
    for index, name in enumerate(dataset.names):
        sample = dataset.load(index)
        rgb, depth = expected[name]
        assert sample.name == name
        assert sample.rgb.dtype == np.uint8 and np.array_equal(sample.rgb, rgb), name
        assert sample.depth.dtype == np.float32 and sample.depth.shape == depth.shape
        assert np.array_equal(np.isnan(sample.depth), np.isnan(depth)), name
        np.testing.assert_allclose(sample.depth[~np.isnan(depth)], depth[~np.isnan(depth)], rtol=1e-6)
        if intrinsics is not None:
            np.testing.assert_allclose(sample.intrinsics, intrinsics, rtol=1e-6)


@pytest.mark.parametrize("encoding", ["png", "tiff", "npy"])
def test_folder_reads_every_depth_encoding(tmp_path, encoding):
    expected = write_folder(tmp_path, encoding)
    assert detect_format(tmp_path) == "folder"
    _check(open_dataset(tmp_path), expected, intrinsics=(60, 61, 31.5, 23.5))
    flagged = open_dataset(tmp_path, intrinsics=(100.0, 100.0, 32.0, 24.0))
    assert flagged.load(0).intrinsics == (100.0, 100.0, 32.0, 24.0)


def test_nyu_h5_transposes_rgb_and_splits_by_folder(tmp_path):
    expected = write_nyu_h5(tmp_path)
    assert detect_format(tmp_path) == "nyu"
    dataset = open_dataset(tmp_path)
    _check(dataset, expected)
    assert [dataset.names[i] for i in dataset.indices("test")] == ["val/official/00001"]
    assert len(dataset.indices("train")) == 2
    fx, fy, cx, cy = dataset.load(0).intrinsics  # camera_params.m, scaled from 640x480 to 64x48
    assert (fx, cx) == pytest.approx((51.88579, 32.55824)) and (fy, cy) == pytest.approx((51.94696, 25.37362))


def test_nyu_labeled_mat_is_transposed_back(tmp_path):
    path = tmp_path / "nyu_depth_v2_labeled.mat"
    expected = write_nyu_mat(path)
    with h5py.File(path, "r") as h5:  # the file holds MATLAB's column order: (N, 3, W, H)
        assert h5["images"].shape == (2, 3, 64, 48) and h5["depths"].shape == (2, 64, 48)
    assert path.read_bytes().startswith(b"MATLAB 7.3 MAT-file")
    for root in (path, tmp_path):
        dataset = open_dataset(root)
        assert dataset.format == "nyu"
        _check(dataset, expected)
        assert dataset.load(1).rgb.shape == (48, 64, 3)


def test_nyu_labeled_mat_takes_the_official_split_from_splits_mat(tmp_path):
    from scipy.io import savemat

    expected = write_nyu_mat(tmp_path / "nyu_depth_v2_labeled.mat", count=4)
    assert open_dataset(tmp_path).splits == [""] * 4  # no splits.mat: no split
    # the toolbox's file: MATLAB v5, column vectors of 1-based indices
    official = {"trainNdxs": np.array([[1], [3]], float), "testNdxs": np.array([[2], [4]], float)}
    savemat(tmp_path / "splits.mat", official, format="5")
    dataset = open_dataset(tmp_path)
    assert dataset.splits == ["train", "test", "train", "test"]
    assert [dataset.names[i] for i in dataset.indices("test")] == ["0002", "0004"]
    _check(dataset, expected)
    for content, error in [({"trainNdxs": np.array([[1], [5]], float), "testNdxs": np.array([[2]], float)},
                            "indices outside 1..4"),
                           ({"trainNdxs": np.array([[1], [2]], float), "testNdxs": np.array([[2]], float)},
                            "sample 2 is in both"),
                           ({"trainNdxs": np.array([[1]], float)}, "no testNdxs")]:
        savemat(tmp_path / "splits.mat", content, format="5")
        with pytest.raises(DatasetError, match=error):
            open_dataset(tmp_path)
    (tmp_path / "splits.mat").write_bytes(b"not a MATLAB file at all" * 10)
    with pytest.raises(DatasetError, match="cannot read .*splits.mat"):
        open_dataset(tmp_path)


def test_nyu_list_file_reads_millimetre_pngs(tmp_path):
    expected = write_nyu_list(tmp_path)
    dataset = open_dataset(tmp_path)
    assert dataset.format == "nyu" and dataset.splits == ["test", "test"]
    _check(dataset, expected)
    _check(open_dataset(tmp_path / "nyudepthv2_test_files_with_gt.txt"), expected)


def test_sun_bit_rotation_and_cap():
    mm = np.array([[0, 1, 1234, 8000], [8001, 9999, 65535 >> 3, 65535]], np.uint16)
    decoded = sun.decode_depth(sun_encode(mm))
    expected = np.where(mm > 0, np.minimum(mm / 1000.0, 8.0), np.nan)
    np.testing.assert_allclose(decoded, expected, rtol=1e-6)
    assert sun_encode(np.array([1], np.uint16))[0] == 8 and sun_encode(np.array([1 << 13], np.uint16))[0] == 1


def test_sun_scenes(tmp_path):
    expected = write_sun(tmp_path)
    assert detect_format(tmp_path) == "sun"
    dataset = open_dataset(tmp_path)
    _check(dataset, expected, intrinsics=(529.5, 529.5, 365, 265))
    assert np.nanmax(dataset.load(0).depth) == np.float32(8.0)


def test_tum_associates_unequal_stamps_as_associate_py(tmp_path):
    root = tmp_path / "rgbd_dataset_freiburg2_xyz"
    expected, pairs = write_tum(root)
    assert detect_format(root) == "tum"
    dataset = open_dataset(root)
    _check(dataset, expected, intrinsics=(520.9, 521.0, 325.1, 249.7))
    rgb = tum.read_list(root / "rgb.txt")
    depth = tum.read_list(root / "depth.txt")
    assert tum.associate(list(rgb), list(depth)) == pairs


def test_tum_intrinsics_follow_the_sequence_family(tmp_path):
    for family, camera in tum.CAMERAS.items():
        root = tmp_path / f"rgbd_dataset_{family}_desk"
        root.mkdir()
        assert tum.camera_of(root) == camera
    assert tum.camera_of(tmp_path) == tum.DEFAULT_CAMERA


def test_kitti_selection_and_tree(tmp_path):
    expected = write_kitti_selection(tmp_path / "val_selection_cropped")
    dataset = open_dataset(tmp_path / "val_selection_cropped")
    assert dataset.format == "kitti" and dataset.splits == ["val", "val"]
    _check(dataset, expected, intrinsics=(721.5377, 721.5377, 80.0, 24.0))
    expected = write_kitti_tree(tmp_path / "raw")
    dataset = open_dataset(tmp_path / "raw")
    assert dataset.format == "kitti"
    _check(dataset, expected, intrinsics=(721.5377, 721.5377, 609.5593, 172.854))


def test_protocol_crops():
    eigen = Protocol("nyu", 0.001, 10.0, "eigen").eval_mask((480, 640))
    assert eigen.sum() == (471 - 45) * (601 - 41) and eigen[45, 41] and not eigen[44, 41] and not eigen[45, 601]
    garg = Protocol("kitti", 0.001, 80.0, "garg").eval_mask((352, 1216))
    rows, cols = np.nonzero(garg)
    assert (rows.min(), rows.max() + 1) == (int(0.40810811 * 352), int(0.99189189 * 352))
    assert (cols.min(), cols.max() + 1) == (int(0.03594771 * 1216), int(0.96405229 * 1216))


def test_detection_refuses_empty_mixed_and_unknown(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="is an empty folder"):
        open_dataset(tmp_path / "empty")
    mixed = tmp_path / "mixed"
    write_folder(mixed)
    write_nyu_h5(mixed)
    with pytest.raises(DatasetError, match=r"mixes dataset layouts \(folder, nyu\); pass --format"):
        open_dataset(mixed)
    assert open_dataset(mixed, "nyu").format == "nyu"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.md").write_text("x")
    with pytest.raises(DatasetError, match="no dataset layout this reads"):
        open_dataset(tmp_path / "other")
    with pytest.raises(DatasetError, match="does not look like a kitti dataset"):
        open_dataset(mixed, "kitti")


def test_bad_files_are_one_clear_error(tmp_path):
    write_folder(tmp_path / "sizes")
    cv2.imwrite(str(tmp_path / "sizes" / "depth" / "frame_001.png"), np.ones((10, 10), np.uint16))
    with pytest.raises(DatasetError, match="frame_001: RGB 64x48 and depth 10x10 differ in size"):
        open_dataset(tmp_path / "sizes").load(1)
    write_folder(tmp_path / "eight")
    cv2.imwrite(str(tmp_path / "eight" / "depth" / "frame_000.png"), np.ones((48, 64), np.uint8))
    with pytest.raises(DatasetError, match=r"unknown depth encoding \(uint8, 1 channel"):
        open_dataset(tmp_path / "eight").load(0)
    write_nyu_h5(tmp_path / "h5")
    (tmp_path / "h5" / "val" / "official" / "00001.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    dataset = open_dataset(tmp_path / "h5")
    with pytest.raises(DatasetError, match="cannot read .*00001.h5 as HDF5"):
        dataset.load(dataset.indices("test")[0])
    root = tmp_path / "tum"
    write_tum(root)
    (root / "depth.txt").write_text("# nothing near\n1311867180.0 depth/1311867170.450124.png\n")
    with pytest.raises(DatasetError, match="no rgb.txt / depth.txt timestamps within 0.02 s"):
        open_dataset(root)


def test_readers_import_neither_torch_nor_h5py():
    code = ("import sys\nfrom depth_anything_ros.datasets import registry\n"
            "print('torch' in sys.modules, 'h5py' in sys.modules, 'rclpy' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["False", "False", "False"], result.stderr
