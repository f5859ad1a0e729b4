"""Per-frame cost of everything except the model: decode, ray grid, point cloud, colourisation, depth bytes.

Prints a table of per-stage times on a 640x480 frame (p50/p95 ms) and the per-frame total of a typical
node frame (padded rgb8 decode + organised coloured cloud at stride 1 + colourised depth + 32FC1 depth bytes),
the figure the performance targets put at <= 3 ms on the CPU.

    python benchmarks/cpu_pipeline_overhead.py [--device cpu|cuda] [--iters 50] [--json out.json]
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import _common
import cv2
import numpy as np
import torch

from depth_anything_ros.frame.camera import Intrinsics
from depth_anything_ros.frame.colorize import colorize, colormap_lut
from depth_anything_ros.frame.geometry import PointCloudBuilder
from depth_anything_ros.frame.image_codec import decode_compressed, decode_image, depth_image_fields
from depth_anything_ros.frame.rays import ray_grid

# Stages summed into the per-frame figure.
FRAME_STAGES = ('decode rgb8 (padded step)', 'cloud organised rgb stride 1', 'colourise turbo', 'depth 32FC1 bytes')


def image_msg(array: np.ndarray, encoding: str, pad: int = 0, big_endian: bool = False) -> SimpleNamespace:
    """Image-like message of (H, W[, C]) ``array`` with ``pad`` bytes of row padding."""
    height = array.shape[0]
    rows = np.ascontiguousarray(array.astype(array.dtype.newbyteorder('>')) if big_endian else array)
    rows = rows.view(np.uint8).reshape(height, -1)
    data = np.concatenate([rows, np.zeros((height, pad), np.uint8)], axis=1).tobytes()
    return SimpleNamespace(height=height, width=array.shape[1], encoding=encoding, is_bigendian=int(big_endian),
                           step=rows.shape[1] + pad, data=data)


def stages(height: int, width: int, device: str) -> dict:
    """Named zero-argument callables, one per stage, on a synthetic ``height`` x ``width`` frame."""
    rgb = _common.synthetic_image(height, width)
    grey = rgb[..., 1].copy()
    uyvy = np.dstack([np.full((height, width), 128, np.uint8), grey])
    ok, jpeg = cv2.imencode('.jpg', rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    depth_np = (1.0 + 4.0 * xx / width + yy / height).astype(np.float32)
    depth_np[::37, ::23] = np.nan
    intr = Intrinsics(fx=525.0, fy=525.0, cx=(width - 1) / 2, cy=(height - 1) / 2, width=width, height=height)
    distorted = Intrinsics(fx=525.0, fy=525.0, cx=(width - 1) / 2, cy=(height - 1) / 2, width=width, height=height,
                           distortion_model='plumb_bob', d=(-0.28, 0.07, 0.0002, -0.0001, 0.0))
    depth = torch.from_numpy(depth_np).to(device)
    rays = torch.from_numpy(ray_grid(intr, True)).to(device)
    colour = torch.from_numpy(rgb).to(device)
    lut = colormap_lut('turbo')
    builder = PointCloudBuilder()
    msgs = {
        'rgb8': image_msg(rgb, 'rgb8', pad=64),
        'mono16': image_msg(grey.astype(np.uint16) * 257, 'mono16', pad=32, big_endian=True),
        'bayer': image_msg(grey, 'bayer_rggb8'),
        'yuv': image_msg(uyvy, 'yuv422'),
        'yuyv': image_msg(uyvy[..., ::-1], 'yuv422_yuy2'),
        'jpeg': SimpleNamespace(format='rgb8; jpeg compressed bgr8', data=jpeg.tobytes()),
    }
    run = {
        'decode rgb8 (padded step)': lambda: decode_image(msgs['rgb8']),
        'decode mono16 big-endian (padded)': lambda: decode_image(msgs['mono16']),
        'decode bayer_rggb8 -> rgb8': lambda: decode_image(msgs['bayer']),
        'decode yuv422 (UYVY) -> rgb8': lambda: decode_image(msgs['yuv']),
        'decode yuv422_yuy2 -> rgb8': lambda: decode_image(msgs['yuyv']),
        'decode compressed jpeg': lambda: decode_compressed(msgs['jpeg']),
        'ray grid pinhole (per camera_info)': lambda: ray_grid(intr, True),
        'ray grid plumb_bob (per camera_info)': lambda: ray_grid(distorted, True),
    }
    for organised in (True, False):
        for with_rgb in (True, False):
            for stride in (1, 4):
                name = f"cloud {'organised' if organised else 'dense'} {'rgb' if with_rgb else 'xyz'} stride {stride}"
                run[name] = (lambda o=organised, c=(colour if with_rgb else None), s=stride:
                             builder.build(depth, rays, c, stride=s, min_depth=0.1, max_depth=math.inf,
                                           organized=o))
    torch_builder = PointCloudBuilder(cpu_kernel='torch')
    run['cloud organised rgb stride 1 (torch kernel)'] = lambda: torch_builder.build(
        depth, rays, colour, stride=1, min_depth=0.1, max_depth=math.inf, organized=True)
    run['cloud dense rgb stride 1 (torch kernel)'] = lambda: torch_builder.build(
        depth, rays, colour, stride=1, min_depth=0.1, max_depth=math.inf, organized=False)
    run['colourise turbo'] = lambda: colorize(depth, 0.5, 6.0, lut).cpu().numpy()
    run['colourise turbo (torch kernel)'] = lambda: colorize(depth, 0.5, 6.0, lut, cpu_kernel='torch').cpu().numpy()
    run['depth 32FC1 bytes'] = lambda: depth_image_fields(depth.cpu().numpy())
    return run


def main() -> None:
    parser = _common.base_parser(__doc__.splitlines()[0])
    parser.add_argument('--size', default='640x480', help='frame size WIDTHxHEIGHT')
    args = parser.parse_args()
    args.iters = max(args.iters or 0, 50) if not args.quick else args.iters
    _common.apply_common(args)
    width, height = (int(v) for v in args.size.split('x'))
    if args.quick:
        width, height = 64, 48
    rows = []
    for name, fn in stages(height, width, args.device).items():
        samples = _common.time_calls(fn, args.warmup, args.iters, args.device)
        stats = _common.summarise(samples)
        rows.append({'stage': name, 'size': f'{width}x{height}', 'device': args.device, 'min_ms': min(samples) * 1e3,
                     'p50_ms': stats['p50_ms'], 'p95_ms': stats['p95_ms']})
    frame = [row for row in rows if row['stage'] in FRAME_STAGES]
    total = sum(row['p50_ms'] for row in frame)
    rows.append({'stage': 'per-frame total (' + ' + '.join(FRAME_STAGES) + ')', 'size': f'{width}x{height}',
                 'device': args.device, 'min_ms': sum(row['min_ms'] for row in frame), 'p50_ms': total,
                 'p95_ms': None})
    _common.print_table(rows, ['stage', 'size', 'device', 'min_ms', 'p50_ms', 'p95_ms'],
                        title=f'Per-frame overhead except the model ({args.device}, torch threads '
                              f'{torch.get_num_threads()})')
    _common.write_json(args.json, 'cpu_pipeline_overhead', args, rows, {'per_frame_total_ms': total})


if __name__ == '__main__':
    main()
