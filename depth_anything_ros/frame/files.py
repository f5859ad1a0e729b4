"""Files for offline results: float TIFF / .npy depth, 16-bit millimetre PNG, preview PNG and binary PLY.

Each format is made as bytes (`*_bytes`, what the server answers) and written by the `write_*` of the same name
(what `estimate` does), so a file and an HTTP answer of the same frame are the same bytes.
"""

import io
from pathlib import Path

import cv2
import numpy as np
import torch

from depth_anything_ros.frame import image_codec
from depth_anything_ros.frame.colorize import CONVENTION, color_bar, colorize, footer
from depth_anything_ros.frame.geometry import points_from_cloud

FILE_KEYS = ('depth', 'depth_mm', 'preview', 'ply')  # result_files: what estimate writes for each image

def _depth_array(depth) -> np.ndarray:
    """Return depth as a (H, W) float32 numpy array (accepts numpy arrays and tensors on any device)."""
    if isinstance(depth, torch.Tensor):
        depth = depth.detach().cpu().numpy()
    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim != 2:
        raise ValueError(f'depth must be (H, W), got shape {depth.shape}')
    return depth


def _encode_image(extension: str, image: np.ndarray) -> bytes:
    """Return ``image`` encoded by OpenCV in the format of ``extension`` ('.png', '.tiff')."""
    ok, buffer = cv2.imencode(extension, image)
    if not ok:
        raise ValueError(f'OpenCV could not encode a {image.dtype} {image.shape} image as {extension}')
    return buffer.tobytes()


def depth_tiff_bytes(depth) -> bytes:
    """(H, W) metres as a single-channel 32-bit float TIFF (NaN kept)."""
    return _encode_image('.tiff', _depth_array(depth))


def depth_npy_bytes(depth) -> bytes:
    """(H, W) metres as a float32 .npy file."""
    buffer = io.BytesIO()
    np.save(buffer, _depth_array(depth), allow_pickle=False)
    return buffer.getvalue()


def depth_png_mm_bytes(depth) -> bytes:
    """(H, W) metres as a 16-bit PNG in millimetres (0 = invalid, clipped at 65535 mm)."""
    return _encode_image('.png', image_codec.depth_to_millimetres(_depth_array(depth)))


def depth_gray_png_bytes(depth) -> bytes:
    """(H, W) metres as an 8-bit grey PNG, near bright: 255 at the nearest valid depth, 1 at the farthest, 0 invalid."""
    depth = _depth_array(depth)
    valid = np.isfinite(depth) & (depth > 0)
    gray = np.zeros(depth.shape, np.uint8)
    if valid.any():
        near, far = depth[valid].min(), depth[valid].max()
        gray[valid] = np.round(255.0 - 254.0 * (depth[valid] - near) / max(far - near, 1e-6)).astype(np.uint8)
    return _encode_image('.png', gray)


def preview_png_bytes(rgb_image: np.ndarray, depth, lut, min_depth: float, max_depth: float, model: str,
                      synthetic: bool) -> bytes:
    """Return the (H, W, 3) RGB image, its colourised depth and a colour bar side by side, a footer below, as a PNG.

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
    return _encode_image('.png', np.ascontiguousarray(panel[..., ::-1]))


def ply_bytes(points, colors=None) -> bytes:
    """(N, 3) float32 points and optional (N, 3) uint8 RGB colours as a binary little-endian PLY."""
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
    return header.encode('ascii') + vertices.tobytes()


def cloud_ply_bytes(cloud) -> bytes:
    """Return the points of a pipeline CloudBuffer (its rgb field as colours when present) as a PLY."""
    points, colors = points_from_cloud(cloud.data, cloud.height, cloud.width, cloud.point_step, cloud.fields)
    return ply_bytes(points.reshape(-1, 3), None if colors is None else colors.reshape(-1, 3))


def result_files(result, lut, colour_range: tuple[float, float], depth_format: str = 'tiff',
                 keys: tuple[str, ...] = FILE_KEYS, *, model: str, synthetic: bool) -> dict[str, bytes]:
    """Return files of one FrameResult (with depth, rgb, cloud) by key: depth (tiff/npy), depth_mm, preview, ply.

    The preview's footer names `model` (in red when `synthetic`).
    """
    makers = {'depth': lambda: {'tiff': depth_tiff_bytes, 'npy': depth_npy_bytes}[depth_format](result.depth),
              'depth_mm': lambda: depth_png_mm_bytes(result.depth),
              'preview': lambda: preview_png_bytes(result.rgb, result.depth, lut, *colour_range, model, synthetic),
              'ply': lambda: cloud_ply_bytes(result.cloud)}
    return {key: makers[key]() for key in keys}


def write_file(path, data: bytes) -> None:
    """Write bytes to `path`, raising OSError that names the file when it cannot."""
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise OSError(f'could not write {path}: {exc.strerror or exc}') from None


def write_depth_tiff(path, depth) -> None:
    """Write (H, W) metres as a single-channel 32-bit float TIFF (NaN kept)."""
    write_file(path, depth_tiff_bytes(depth))


def write_depth_npy(path, depth) -> None:
    """Write (H, W) metres as a float32 .npy file."""
    write_file(path, depth_npy_bytes(depth))


def write_depth_png_mm(path, depth) -> None:
    """Write (H, W) metres as a 16-bit PNG in millimetres (0 = invalid, clipped at 65535 mm)."""
    write_file(path, depth_png_mm_bytes(depth))


def write_preview_png(path, rgb_image: np.ndarray, depth, lut, min_depth: float, max_depth: float, model: str,
                      synthetic: bool) -> None:
    """Write the preview of preview_png_bytes (image, colourised depth, colour bar, footer naming `model`)."""
    write_file(path, preview_png_bytes(rgb_image, depth, lut, min_depth, max_depth, model, synthetic))


def write_ply(path, points, colors=None) -> None:
    """Write (N, 3) float32 points and optional (N, 3) uint8 RGB colours as a binary little-endian PLY."""
    write_file(path, ply_bytes(points, colors))
