"""Files for offline results: float TIFF / .npy depth, 16-bit millimetre PNG, preview PNG and binary PLY."""

from pathlib import Path

import cv2
import numpy as np
import torch

from depth_anything_ros.frame import image_codec
from depth_anything_ros.frame.colorize import CONVENTION, color_bar, colorize, footer


def _depth_array(depth) -> np.ndarray:
    """Return depth as a (H, W) float32 numpy array (accepts numpy arrays and tensors on any device)."""
    if isinstance(depth, torch.Tensor):
        depth = depth.detach().cpu().numpy()
    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim != 2:
        raise ValueError(f'depth must be (H, W), got shape {depth.shape}')
    return depth


def _write_image(path, image: np.ndarray) -> None:
    """Write ``image`` with OpenCV, raising OSError when it cannot."""
    path = Path(path)
    if not cv2.imwrite(str(path), image):
        raise OSError(f'could not write {path}')


def write_depth_tiff(path, depth) -> None:
    """Write (H, W) metres as a single-channel 32-bit float TIFF (NaN kept)."""
    _write_image(path, _depth_array(depth))


def write_depth_npy(path, depth) -> None:
    """Write (H, W) metres as a float32 .npy file."""
    np.save(Path(path), _depth_array(depth))


def write_depth_png_mm(path, depth) -> None:
    """Write (H, W) metres as a 16-bit PNG in millimetres (0 = invalid, clipped at 65535 mm)."""
    _write_image(path, image_codec.depth_to_millimetres(_depth_array(depth)))


def write_preview_png(path, rgb_image: np.ndarray, depth, lut, min_depth: float, max_depth: float, model: str,
                      synthetic: bool) -> None:
    """Write the (H, W, 3) RGB image, its colourised depth and a colour bar side by side, a footer below, as a PNG.

    The footer names `model` and the colour convention, in red when the weights are `synthetic`.
    """
    depth = _depth_array(depth)
    rgb_image = np.asarray(rgb_image)
    if rgb_image.shape != (*depth.shape, 3) or rgb_image.dtype != np.uint8:
        raise ValueError(f'rgb_image must be (H, W, 3) uint8 = {(*depth.shape, 3)}, '
                         f'got {rgb_image.dtype} {rgb_image.shape}')
    coloured = colorize(torch.from_numpy(depth), min_depth, max_depth, lut).numpy()
    bar = color_bar(max(depth.shape[0], 32), min_depth, max_depth, lut)[:depth.shape[0]]
    panel = np.concatenate([rgb_image, coloured, bar], axis=1)
    panel = np.concatenate([panel, footer(panel.shape[1], f"{model} | {CONVENTION}", synthetic)])
    _write_image(path, np.ascontiguousarray(panel[..., ::-1]))


def write_ply(path, points, colors=None) -> None:
    """Write (N, 3) float32 points and optional (N, 3) uint8 RGB colours as a binary little-endian PLY."""
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f'points must be (N, 3), got shape {points.shape}')
    fields = [('x', '<f4'), ('y', '<f4'), ('z', '<f4')]
    if colors is not None:
        colors = np.asarray(colors)
        if colors.shape != points.shape or colors.dtype != np.uint8:
            raise ValueError(f'colors must be (N, 3) uint8 = {points.shape}, got {colors.dtype} {colors.shape}')
        fields += [('red', 'u1'), ('green', 'u1'), ('blue', 'u1')]
    vertices = np.empty(points.shape[0], dtype=fields)
    vertices['x'], vertices['y'], vertices['z'] = points.T
    properties = ['property float x', 'property float y', 'property float z']
    if colors is not None:
        vertices['red'], vertices['green'], vertices['blue'] = colors.T
        properties += ['property uchar red', 'property uchar green', 'property uchar blue']
    header = '\n'.join(['ply', 'format binary_little_endian 1.0', f'element vertex {points.shape[0]}',
                        *properties, 'end_header']) + '\n'
    with open(path, 'wb') as handle:
        handle.write(header.encode('ascii'))
        handle.write(vertices.tobytes())
