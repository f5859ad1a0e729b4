"""Sample bag: a synthetic room with boxes ray-cast through a pinhole camera, with exact ground-truth depth.

World frame: x forward, y left, z up (REP 103). The room is an axis-aligned box seen from inside, the boxes
stand on its floor; both are intersected analytically per pixel (slab method), so the depth is exact. A glass
pane in the far wall has no ground truth (NaN / 0), as a depth camera would see it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from depth_anything_ros.bag import bagfile, messages
from depth_anything_ros.frame import image_codec
from depth_anything_ros.frame.camera import CameraInfo, Intrinsics
from depth_anything_ros.frame.image_codec import depth_to_millimetres
from depth_anything_ros.frame.rays import ray_grid

ROOM_LO = np.array([-1.0, -3.0, 0.0])
ROOM_HI = np.array([7.0, 3.0, 2.8])
WINDOW = ((-1.2, 1.2), (1.0, 2.0))  # (y, z) extent of the glass pane in the far wall x = ROOM_HI[0]
LIGHT = np.array([3.0, 0.0, 2.6])


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in the world frame with a base colour (RGB 0..1)."""

    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    colour: tuple[float, float, float]


BOXES = (
    Box((2.5, -1.6, 0.0), (3.3, -0.8, 0.8), (0.75, 0.22, 0.18)),
    Box((3.6, 0.5, 0.0), (4.6, 1.5, 1.2), (0.20, 0.35, 0.75)),
    Box((5.0, -0.5, 0.0), (5.6, 0.3, 0.5), (0.25, 0.62, 0.30)),
    Box((1.8, 1.2, 0.0), (2.2, 1.6, 1.6), (0.85, 0.72, 0.20)),
)
# Room surfaces by (axis, side): side 0 is the low wall, 1 the high one.
_ROOM_COLOURS = {(0, 0): (0.70, 0.74, 0.78), (0, 1): (0.78, 0.76, 0.70), (1, 0): (0.74, 0.70, 0.66),
                 (1, 1): (0.66, 0.72, 0.70), (2, 0): (0.55, 0.42, 0.30), (2, 1): (0.92, 0.92, 0.90)}


@dataclass(frozen=True)
class SampleConfig:
    """What the sample bag holds and how the camera moves."""

    width: int = 320
    height: int = 240
    frames: int = 20
    rate: float = 10.0
    fov_deg: float = 70.0
    distortion: bool = False
    encoding: str = "rgb8"  # rgb8 | bgr8 | jpeg (CompressedImage)
    namespace: str = "/camera"
    frame_id: str = "camera_optical_frame"
    seed: int = 0
    start_ns: int = 1_700_000_000_000_000_000
    latency_ns: int = 5_000_000  # log time = header stamp + latency, as a recorder receives it
    storage: str = "mcap"

    def camera_info(self) -> CameraInfo:
        """Camera model: pinhole of fov_deg, plus plumb_bob barrel distortion when asked."""
        info = CameraInfo.from_fov(self.width, self.height, self.fov_deg)
        return replace(info, d=(-0.12, 0.03, 0.0005, -0.0003, 0.0)) if self.distortion else info

    def intrinsics(self) -> Intrinsics:
        """Intrinsics of the camera model."""
        return Intrinsics.from_camera_info(self.camera_info())

    def topics(self) -> dict[str, str]:
        """Role -> topic name: image, camera_info, depth_gt (32FC1 m), depth_gt_mm (16UC1 mm)."""
        ns = self.namespace.rstrip("/")
        image = f"{ns}/image/compressed" if self.encoding == "jpeg" else f"{ns}/image"
        return {"image": image, "camera_info": f"{ns}/camera_info", "depth_gt": f"{ns}/depth_gt",
                "depth_gt_mm": f"{ns}/depth_gt_mm"}


def camera_pose(k: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(R (3,3) world-from-optical, position (3,)) of frame k: a slow forward walk with a gentle pan."""
    s = k / max(frames - 1, 1)
    position = np.array([0.8 * s, 0.3 * math.sin(math.pi * s), 1.2])
    yaw, pitch = 0.2 * math.sin(2.0 * math.pi * s), math.radians(10.0)
    optical = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # columns: x, y, z optical axes
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    ry = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    return rz @ ry @ optical, position


def _slabs(origin: np.ndarray, dirs: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ray parameters where each ray (H,W,3) crosses the lo and hi planes of each axis -> two (H,W,3) arrays."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t_lo = (lo - origin) / dirs
        t_hi = (hi - origin) / dirs
    return np.minimum(t_lo, t_hi), np.maximum(t_lo, t_hi)


def _value_noise(table: np.ndarray, u: np.ndarray, v: np.ndarray, cell: float) -> np.ndarray:
    """Blocky value noise 0..1 of world coordinates u, v (H,W) with square cells of `cell` metres."""
    n = table.shape[0]
    return table[np.floor(u / cell).astype(np.int64) % n, np.floor(v / cell).astype(np.int64) % n]


def render(rays: np.ndarray, rotation: np.ndarray, position: np.ndarray,
           noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast the scene: rays (H,W,3) optical z = 1 -> (rgb (H,W,3) uint8, depth (H,W) float32 m, NaN invalid)."""
    dirs = rays.astype(np.float64) @ rotation.T
    # Leaving the room: the nearest far-side plane. Entering a box: the farthest near-side plane.
    _, t_exit = _slabs(position, dirs, ROOM_LO, ROOM_HI)
    t_exit = np.where(dirs == 0.0, np.inf, t_exit)
    axis = np.argmin(t_exit, axis=-1)
    t_best = np.take_along_axis(t_exit, axis[..., None], -1)[..., 0]
    side = (np.take_along_axis(dirs, axis[..., None], -1)[..., 0] > 0).astype(np.int64)
    colour = np.zeros(dirs.shape, np.float64)
    for (a, s), c in _ROOM_COLOURS.items():
        colour[(axis == a) & (side == s)] = c
    surface = axis * 2 + side  # 0..5 room surfaces, 6.. boxes
    for i, box in enumerate(BOXES):
        t_near, t_far = _slabs(position, dirs, np.array(box.lo), np.array(box.hi))
        near = t_near.max(axis=-1)
        hit = (near <= t_far.min(axis=-1)) & (near > 0.0) & (near < t_best)
        t_best = np.where(hit, near, t_best)
        axis = np.where(hit, t_near.argmax(axis=-1), axis)
        colour[hit] = box.colour
        surface = np.where(hit, 6 + i, surface)
    point = position + dirs * t_best[..., None]
    normal = np.zeros(dirs.shape)
    np.put_along_axis(normal, axis[..., None], -np.sign(np.take_along_axis(dirs, axis[..., None], -1)), -1)
    # Texture on the two in-plane coordinates: checker tiles times two octaves of value noise.
    u = np.take_along_axis(point, ((axis + 1) % 3)[..., None], -1)[..., 0]
    v = np.take_along_axis(point, ((axis + 2) % 3)[..., None], -1)[..., 0]
    tile = np.where(surface == 4, 0.5, 0.25)  # floor tiles 0.5 m, elsewhere 0.25 m
    checker = 0.82 + 0.18 * ((np.floor(u / tile) + np.floor(v / tile)) % 2)
    texture = 0.7 + 0.2 * _value_noise(noise, u, v, 0.08) + 0.1 * _value_noise(noise.T, u, v, 0.31)
    to_light = LIGHT - point
    dist2 = np.sum(to_light**2, axis=-1)
    lambert = np.clip(np.sum(normal * to_light, axis=-1) / np.sqrt(dist2), 0.0, 1.0)
    shade = 0.3 + 0.9 * lambert / (1.0 + 0.03 * dist2)
    rgb = np.clip(colour * (checker * texture * shade)[..., None] * 255.0, 0, 255).astype(np.uint8)
    depth = t_best.astype(np.float32)  # rays have optical z = 1, so the ray parameter is the depth
    pane = ((surface == 1) & (point[..., 1] > WINDOW[0][0]) & (point[..., 1] < WINDOW[0][1])
            & (point[..., 2] > WINDOW[1][0]) & (point[..., 2] < WINDOW[1][1]))
    rgb[pane] = (rgb[pane] * 0.4 + np.array([90, 140, 190]) * 0.6).astype(np.uint8)
    depth[pane] = np.nan
    return rgb, depth


def depth_mm_fields(depth: np.ndarray) -> dict:
    """16UC1 Image fields in millimetres (REP 118: 0 invalid) of a (H,W) float32 metre array (NaN invalid)."""
    height, width = depth.shape
    return {"height": height, "width": width, "encoding": "16UC1", "is_bigendian": 0, "step": 2 * width,
            "data": depth_to_millimetres(depth).astype("<u2").tobytes()}


def _image_message(hdr: object, rgb: np.ndarray, encoding: str) -> object:
    if encoding == "rgb8":
        return messages.image(hdr, image_codec.rgb_image_fields(rgb))
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    if encoding == "bgr8":
        return messages.image(hdr, {**image_codec.rgb_image_fields(bgr), "encoding": "bgr8"})
    ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise RuntimeError("JPEG encoding of the sample image failed")
    return messages.compressed_image(hdr, "rgb8; jpeg compressed bgr8", jpeg.tobytes())


def _texture(cfg: SampleConfig) -> np.ndarray:
    """Value-noise table of the room's textures (64, 64), from cfg.seed."""
    return np.random.default_rng(cfg.seed).random((64, 64))


def write_sample_image(path: str | Path, cfg: SampleConfig = SampleConfig()) -> Path:
    """Render the sample camera's first frame into an image file (PNG, JPEG, ... by extension) at path."""
    rgb, _ = render(ray_grid(cfg.intrinsics(), undistort=True), *camera_pose(0, cfg.frames), _texture(cfg))
    path = Path(path)
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1])):
        raise OSError(f"could not write {path}")
    return path


def write_sample_bag(path: str | Path, cfg: SampleConfig = SampleConfig()) -> dict[str, str]:
    """Render cfg.frames frames and write them to a new bag at path; returns role -> topic."""
    if cfg.encoding not in ("rgb8", "bgr8", "jpeg"):
        raise ValueError(f"unknown sample image encoding {cfg.encoding!r}; expected rgb8, bgr8 or jpeg")
    if cfg.frames < 1 or cfg.rate <= 0:
        raise ValueError(f"need at least one frame and a positive rate, got {cfg.frames} frames at {cfg.rate} Hz")
    intr = cfg.intrinsics()
    rays = ray_grid(intr, undistort=True)
    noise = _texture(cfg)
    topics = cfg.topics()
    writer = bagfile.open_writer(path, cfg.storage)
    try:
        image_type = messages.COMPRESSED_IMAGE if cfg.encoding == "jpeg" else messages.IMAGE
        conns = {
            "image": bagfile.add_topic(writer, topics["image"], image_type),
            "camera_info": bagfile.add_topic(writer, topics["camera_info"], messages.CAMERA_INFO),
            "depth_gt": bagfile.add_topic(writer, topics["depth_gt"], messages.IMAGE),
            "depth_gt_mm": bagfile.add_topic(writer, topics["depth_gt_mm"], messages.IMAGE),
        }
        period = round(1e9 / cfg.rate)
        for k in range(cfg.frames):
            stamp = cfg.start_ns + k * period
            hdr = messages.header(stamp, cfg.frame_id)
            rgb, depth = render(rays, *camera_pose(k, cfg.frames), noise)
            msgs = {
                "image": _image_message(hdr, rgb, cfg.encoding),
                "camera_info": messages.camera_info(hdr, cfg.camera_info()),
                "depth_gt": messages.image(hdr, image_codec.depth_image_fields(depth)),
                "depth_gt_mm": messages.image(hdr, depth_mm_fields(depth)),
            }
            for role, msg in msgs.items():
                writer.write(conns[role], stamp + cfg.latency_ns, messages.serialize(msg))
    finally:
        writer.close()
    return topics
