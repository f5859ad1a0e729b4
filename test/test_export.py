"""Depth TIFF / npy / millimetre PNG, preview PNG and binary PLY files, read back from disk."""

import cv2
import numpy as np
import pytest
import torch
from ply_reader import read_ply

from depth_anything_ros.frame.colorize import colormap_lut
from depth_anything_ros.frame.files import (
    write_depth_npy,
    write_depth_png_mm,
    write_depth_tiff,
    write_ply,
    write_preview_png,
)
from depth_anything_ros.frame.image_codec import depth_to_millimetres


def random_depth(shape=(30, 40), seed=0):
    depth = np.random.default_rng(seed).uniform(0.1, 50.0, size=shape).astype(np.float32)
    depth[0, 0], depth[0, 1] = np.nan, np.inf
    return depth


def test_tiff_round_trips_exactly(tmp_path):
    depth = random_depth()
    path = tmp_path / 'depth.tiff'
    write_depth_tiff(path, torch.from_numpy(depth))
    back = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.float32 and back.shape == depth.shape
    np.testing.assert_array_equal(back, depth)


def test_npy_round_trips_exactly(tmp_path):
    depth = random_depth()
    write_depth_npy(tmp_path / 'depth.npy', depth)
    back = np.load(tmp_path / 'depth.npy')
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, depth)


def test_png_millimetres(tmp_path):
    depth = np.array([[np.nan, np.inf, -1.0, 0.0, 0.0004, 0.0005],
                      [1.2345, 1.2355, 2.0, 65.535, 65.5356, 100.0]], dtype=np.float32)
    path = tmp_path / 'depth.png'
    write_depth_png_mm(path, depth)
    back = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16
    expected = np.floor(np.nan_to_num(depth.astype(np.float64), nan=0, posinf=0).clip(0) * 1000 + 0.5)
    np.testing.assert_array_equal(back, expected.clip(0, 65535))
    assert back[0, :5].tolist() == [0, 0, 0, 0, 0] and back[0, 5] == 1  # 0.5 mm rounds half up
    assert back[1, 5] == 65535  # clipped
    np.testing.assert_array_equal(depth_to_millimetres(depth), back)


def test_preview_png_layout(tmp_path):
    depth = random_depth((48, 64))
    rgb = np.random.default_rng(1).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    path = tmp_path / 'preview.png'
    write_preview_png(path, rgb, depth, colormap_lut('turbo'), 0.1, 50.0, 'model', False)
    panel = cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]
    assert panel.shape[0] > 48 and panel.shape[1] > 128  # a footer below the pictures
    np.testing.assert_array_equal(panel[:48, :64], rgb)
    assert not panel[0, 64].any()  # NaN depth is black
    with pytest.raises(ValueError, match='rgb_image must be'):
        write_preview_png(path, rgb[:10], depth, colormap_lut('turbo'), 0.1, 50.0, 'model', False)


@pytest.mark.parametrize('synthetic', [False, True])
def test_preview_footer_is_red_only_for_synthetic_weights(tmp_path, synthetic):
    """The footer (model and colour convention) below image, depth and bar: red text means synthetic weights."""
    depth = random_depth((48, 64))
    rgb = np.full((48, 64, 3), 128, dtype=np.uint8)
    path = tmp_path / 'preview.png'
    write_preview_png(path, rgb, depth, colormap_lut('turbo'), 0.1, 50.0, 'SYNTHETIC WEIGHTS: x (vits)', synthetic)
    footer = cv2.imread(str(path), cv2.IMREAD_COLOR)[48:, :, ::-1].astype(int)
    ink = footer.sum(axis=2) < 600  # not the white background
    assert ink.sum() > 100  # text: the model and the convention, wrapped over several lines
    reddish = (footer[..., 0] - footer[..., 1] > 100) & ink
    assert (reddish.sum() > 0.5 * ink.sum()) == synthetic


@pytest.mark.parametrize('with_colour', [False, True])
def test_ply_round_trips(tmp_path, with_colour):
    rng = np.random.default_rng(2)
    points = rng.normal(size=(100, 3)).astype(np.float32)
    colours = rng.integers(0, 256, size=(100, 3), dtype=np.uint8) if with_colour else None
    path = tmp_path / 'cloud.ply'
    write_ply(path, points, colours)
    header, vertices = read_ply(path)
    names = ['x', 'y', 'z'] + (['red', 'green', 'blue'] if with_colour else [])
    assert list(vertices.dtype.names) == names
    assert header[-1] == 'end_header'
    np.testing.assert_array_equal(np.stack([vertices[n] for n in 'xyz'], -1), points)
    if with_colour:
        np.testing.assert_array_equal(np.stack([vertices[n] for n in ('red', 'green', 'blue')], -1), colours)


def test_ply_input_errors(tmp_path):
    with pytest.raises(ValueError, match='points must be'):
        write_ply(tmp_path / 'a.ply', np.zeros((3, 2)))
    with pytest.raises(ValueError, match='colors must be'):
        write_ply(tmp_path / 'a.ply', np.zeros((3, 3)), np.zeros((3, 3)))


def test_write_to_missing_directory_raises(tmp_path):
    with pytest.raises(OSError, match='could not write'):
        write_depth_png_mm(tmp_path / 'missing' / 'depth.png', random_depth())
