"""The one colour convention of every depth picture, depth colourisation as a LUT on the device, colour bars, footers.

Convention: near is warm. min_depth maps to the last colormap entry (red for turbo/jet, yellow for
viridis/inferno/magma/plasma) and max_depth to the first (blue / dark); invalid depth (NaN, inf, <= 0) is black.
Colour bars are in metres; a footer names the model, in red when its weights are synthetic. The node's
depth/colored, the estimate preview and the report figures (frame/figures.py) all follow it from here.
"""

import math
import textwrap

import cv2
import numpy as np
import torch

COLORMAPS = tuple(sorted(name[len('COLORMAP_'):].lower() for name in dir(cv2) if name.startswith('COLORMAP_')))
DEFAULT_COLORMAP = 'turbo'
INVALID_RGB = (0, 0, 0)
CONVENTION = 'depth colours: near = warm, black = no depth, scale in metres'
FOOTER_RGB = (77, 77, 77)  # a real model's footer
SYNTHETIC_RGB = (220, 0, 0)  # the footer of synthetic weights


def colormap_lut(name: str) -> np.ndarray:
    """Return the (256, 3) uint8 RGB lookup table of the OpenCV colormap ``name`` (e.g. turbo, viridis)."""
    code = getattr(cv2, f'COLORMAP_{name.upper()}', None) if name.lower() in COLORMAPS else None
    if code is None:
        raise ValueError(f"unknown colormap '{name}'; valid: {', '.join(COLORMAPS)}")
    bgr = cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(256, 1), code)
    return np.ascontiguousarray(bgr.reshape(256, 3)[:, ::-1])


def colorize(depth: torch.Tensor, min_depth: float, max_depth: float, lut, cpu_kernel: str = 'opencv') -> torch.Tensor:
    """Map (H, W) depth in metres to a (H, W, 3) uint8 RGB tensor on the same device; near warm, invalid black.

    The LUT index is round((max_depth - d) * 255 / (max_depth - min_depth)) clamped to [0, 255] (ties to even).
    CPU tensors go through OpenCV by default (several times faster than eager torch); ``cpu_kernel='torch'``
    forces the torch kernel that CUDA tensors use.
    """
    if depth.ndim != 2:
        raise ValueError(f'depth must be (H, W), got shape {tuple(depth.shape)}')
    if not (math.isfinite(min_depth) and math.isfinite(max_depth) and min_depth < max_depth):
        raise ValueError(f'need finite min_depth < max_depth, got {min_depth}, {max_depth}')
    if cpu_kernel not in ('opencv', 'torch'):
        raise ValueError(f"cpu_kernel must be 'opencv' or 'torch', got {cpu_kernel!r}")
    scale = 255.0 / (max_depth - min_depth)
    d = depth.float()
    if d.device.type == 'cpu' and cpu_kernel == 'opencv':
        return torch.from_numpy(_colorize_opencv(np.ascontiguousarray(d.numpy()), scale, max_depth * scale, lut))
    table = _device_lut(lut, d.device)
    index = torch.round(d * -scale + max_depth * scale).clamp_(0.0, 255.0)
    index = torch.where((d > 0) & (d < math.inf), index, 256.0).to(torch.int32)
    return table.index_select(0, index.view(-1)).view(*d.shape, 3)


def _colorize_opencv(depth: np.ndarray, scale: float, offset: float, lut) -> np.ndarray:
    """OpenCV kernel of :func:`colorize` on a contiguous (H, W) float32 array."""
    index = cv2.addWeighted(depth, -scale, depth, 0.0, offset, dtype=cv2.CV_8U)  # rounds and saturates
    table = np.ascontiguousarray(np.asarray(lut, dtype=np.uint8).reshape(256, 1, 3))
    rgb = cv2.applyColorMap(index, table)
    valid = cv2.inRange(depth, _SMALLEST_POSITIVE_FLOAT32, _LARGEST_FLOAT32)  # 0 for NaN, inf and <= 0
    # INVALID_RGB is black: a saturating subtraction of 255 under the invalid mask, in place (a boolean-index
    # assignment costs four times as much)
    cv2.subtract(rgb, (255, 255, 255, 0), dst=rgb, mask=cv2.bitwise_not(valid))
    return rgb


_SMALLEST_POSITIVE_FLOAT32 = float(np.nextafter(np.float32(0), np.float32(1)))
_LARGEST_FLOAT32 = float(np.finfo(np.float32).max)


def _device_lut(lut, device: torch.device) -> torch.Tensor:
    """Return the (257, 3) uint8 table on ``device``: the LUT plus row 256, INVALID_RGB, for invalid depth."""
    table = torch.as_tensor(np.asarray(lut, dtype=np.uint8)).reshape(256, 3)
    return torch.cat([table, torch.tensor([INVALID_RGB], dtype=torch.uint8)]).to(device)


def color_bar(height: int, min_depth: float, max_depth: float, lut, width: int = 96) -> np.ndarray:
    """Return a (height, width, 3) uint8 RGB colour bar, max_depth at the top, with tick labels in metres."""
    if height < 32:
        raise ValueError(f'colour bar needs a height of at least 32 pixels, got {height}')
    strip_width, margin = 16, 8
    bar = np.full((height, width, 3), 255, dtype=np.uint8)
    top, bottom = margin, height - margin - 1
    rows = np.arange(top, bottom + 1)
    depth = max_depth + (rows - top) * ((min_depth - max_depth) / (bottom - top))
    colours = colorize(torch.from_numpy(depth.astype(np.float32)).reshape(-1, 1), min_depth, max_depth, lut)
    bar[top:bottom + 1, 4:4 + strip_width] = colours.numpy()
    for value in _ticks(min_depth, max_depth, max(2, (bottom - top) // 40)):
        y = int(round(top + (max_depth - value) / (max_depth - min_depth) * (bottom - top)))
        cv2.line(bar, (4 + strip_width, y), (8 + strip_width, y), (0, 0, 0), 1)
        cv2.putText(bar, f'{value:g} m', (12 + strip_width, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return bar


def _ticks(low: float, high: float, count: int) -> list[float]:
    """Return round tick values (1, 2 or 5 times a power of ten apart) within [low, high], about ``count``."""
    raw = (high - low) / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    return [round(first + i * step, 10) for i in range(int((high - first) / step + 1e-9) + 1)]


def footer(width: int, text: str, synthetic: bool) -> np.ndarray:
    """Return a white (h, width, 3) uint8 RGB strip with `text` wrapped to fit, red when `synthetic`."""
    lines = textwrap.wrap(text, max(8, (width - 8) // 8))
    strip = np.full((8 + 14 * len(lines), width, 3), 255, dtype=np.uint8)
    colour = SYNTHETIC_RGB if synthetic else FOOTER_RGB
    for i, line in enumerate(lines):
        cv2.putText(strip, line, (4, 15 + 14 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.38, colour, 1, cv2.LINE_AA)
    return strip
