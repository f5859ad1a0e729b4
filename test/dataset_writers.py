"""Small RGB-D datasets written byte for byte in each format's own layout, with the metres each pixel means.

Every writer encodes independently of depth_anything_ros.datasets (its own bit rotation, transposition, scales),
and returns what a reader must give back: {name: (rgb (H,W,3) uint8, depth (H,W) float32 metres, NaN invalid)}.
"""

from pathlib import Path

import cv2
import h5py
import numpy as np

MATLAB_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Dec  7 18:00:00 2026 HDF5 schema 1.00 ."


def scene(height: int, width: int, seed: int, far: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """Return a textured RGB image and a depth ramp (metres, 0.5 .. far) of that size, some pixels NaN."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    rows = np.linspace(0.5, far, height, dtype=np.float32)[:, None]
    depth = np.broadcast_to(rows, (height, width)).copy() + rng.uniform(0, 0.2, (height, width)).astype(np.float32)
    depth[rng.random((height, width)) < 0.05] = np.nan
    return rgb, depth


def _png16(path: Path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), values.astype(np.uint16))


def _rgb(path: Path, rgb: np.ndarray) -> np.ndarray:
    """Write an RGB image file; return the RGB it decodes to (JPEG is lossy)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if path.suffix == ".jpg" else []
    assert cv2.imwrite(str(path), rgb[..., ::-1].copy(), params)
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]


def _quantised(depth: np.ndarray, units_per_metre: float) -> tuple[np.ndarray, np.ndarray]:
    """(integer code with 0 for NaN, the metres the code means)."""
    code = np.where(np.isfinite(depth), np.round(np.nan_to_num(depth) * units_per_metre), 0).astype(np.uint16)
    metres = np.where(code > 0, code / units_per_metre, np.nan).astype(np.float32)
    return code, metres


def write_folder(root: Path, encoding: str = "png", count: int = 3, size=(48, 64)) -> dict:
    """rgb/NAME.png + depth/NAME.(png mm | tiff | npy metres) + intrinsics.txt (3x3 K)."""
    out = {}
    (root / "depth").mkdir(parents=True)
    for k in range(count):
        name = f"frame_{k:03d}"
        rgb, depth = scene(*size, seed=k)
        rgb = _rgb(root / "rgb" / f"{name}.png", rgb)
        if encoding == "png":
            code, depth = _quantised(depth, 1000.0)
            _png16(root / "depth" / f"{name}.png", code)
        elif encoding == "tiff":
            assert cv2.imwrite(str(root / "depth" / f"{name}.tiff"), depth)
        else:
            np.save(root / "depth" / f"{name}.npy", depth)
        out[name] = (rgb, depth)
    (root / "intrinsics.txt").write_text("60 0 31.5\n0 61 23.5\n0 0 1\n")
    return out


def write_nyu_h5(root: Path, size=(48, 64)) -> dict:
    """train/SCENE/NNNNN.h5 and val/official/NNNNN.h5 with rgb (3,H,W) uint8 and depth (H,W) float32 metres."""
    out = {}
    for k, rel in enumerate(["train/kitchen_0001/00001", "train/kitchen_0001/00002", "val/official/00001"]):
        rgb, depth = scene(*size, seed=10 + k, far=9.0)
        path = root / f"{rel}.h5"
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as h5:
            h5.create_dataset("rgb", data=rgb.transpose(2, 0, 1))
            h5.create_dataset("depth", data=np.nan_to_num(depth))  # the conversion writes 0 where there is none
        out[rel] = (rgb, depth)
    return out


def write_nyu_mat(path: Path, count: int = 2, size=(48, 64)) -> dict:
    """nyu_depth_v2_labeled.mat: MATLAB v7.3 (HDF5 after a 512-byte header), images/depths in MATLAB's column order.

    MATLAB stores images as 480x640x3xN column-major; HDF5 (row-major) therefore holds (N, 3, 640, 480).
    """
    out, images, depths = {}, [], []
    for k in range(count):
        rgb, depth = scene(*size, seed=20 + k, far=9.0)
        depth = np.nan_to_num(depth, nan=3.0)  # the labeled depths are inpainted: no holes
        images.append(np.transpose(rgb, (2, 1, 0)))  # (H, W, 3) -> (3, W, H)
        depths.append(depth.T)
        out[f"{k + 1:04d}"] = (rgb, depth)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as h5:
        h5.create_dataset("images", data=np.stack(images))
        h5.create_dataset("depths", data=np.stack(depths).astype(np.float32))
    with path.open("r+b") as handle:
        handle.write(MATLAB_HEADER.ljust(116, b" "))
    return out


def write_nyu_list(root: Path, size=(48, 64)) -> dict:
    """nyudepthv2_test_files_with_gt.txt: '/SCENE/rgb_N.jpg /SCENE/sync_depth_N.png FOCAL' + 16-bit mm PNGs."""
    out, lines = {}, []
    for k in range(2):
        rgb, depth = scene(*size, seed=30 + k, far=9.0)
        code, depth = _quantised(depth, 1000.0)
        rgb = _rgb(root / "bathroom_0001" / f"rgb_{k:05d}.jpg", rgb)
        _png16(root / "bathroom_0001" / f"sync_depth_{k:05d}.png", code)
        lines.append(f"/bathroom_0001/rgb_{k:05d}.jpg /bathroom_0001/sync_depth_{k:05d}.png 518.8579")
        out[f"bathroom_0001/rgb_{k:05d}"] = (rgb, depth)
    (root / "nyudepthv2_test_files_with_gt.txt").write_text("\n".join(lines) + "\n")
    return out


def sun_encode(mm: np.ndarray) -> np.ndarray:
    """Millimetres as SUN RGB-D's depth PNGs hold them: rotated left by 3 bits in 16 bits."""
    mm = mm.astype(np.uint32)
    return (((mm << 3) | (mm >> 13)) & 0xFFFF).astype(np.uint16)


def write_sun(root: Path, size=(48, 64)) -> dict:
    """SENSOR/SCENE/{image/N.jpg, depth_bfx/N.png (bit-rotated mm), intrinsics.txt}; some depths past 8 m."""
    out = {}
    for k, rel in enumerate(["kv2/kinect2data/000002_2014-05-26_14-23-37", "realsense/sa/2014_10_21-18_13_12"]):
        folder = root / rel
        rgb, depth = scene(*size, seed=40 + k, far=12.0)  # the far rows exceed the toolbox's 8 m cap
        code, depth = _quantised(depth, 1000.0)
        rgb = _rgb(folder / "image" / "0000103.jpg", rgb)
        _png16(folder / "depth_bfx" / "0000103.png", sun_encode(code))
        (folder / "intrinsics.txt").write_text("529.5 0 365\n0 529.5 265\n0 0 1\n")
        out[rel] = (rgb, np.minimum(depth, 8.0))
    return out


def write_tum(root: Path, size=(48, 64)) -> tuple[dict, list[tuple[float, float]]]:
    """rgbd_dataset_freiburg2_xyz: rgb.txt/depth.txt with unequal stamps, PNG depth at 5000 units per metre.

    Returns the frames by RGB stamp text and the (rgb, depth) stamp pairs associate.py makes of them.
    """
    rgb_stamps = [1311867170.462290, 1311867170.498292, 1311867170.530283, 1311867170.562295, 1311867170.600000]
    depth_stamps = [1311867170.450124,   # 0.0122 s before rgb 0
                    1311867170.490000,   # 0.0083 s before rgb 1 (and 0.0277 after rgb 0: too far)
                    1311867170.505000,   # 0.0067 after rgb 1: rgb 1 takes the closer one, this pairs nothing
                    1311867170.540000,   # 0.0097 after rgb 2, 0.0223 before rgb 3
                    1311867170.640000]   # 0.040 after rgb 4: no partner
    pairs = [(rgb_stamps[0], depth_stamps[0]), (rgb_stamps[1], depth_stamps[2]), (rgb_stamps[2], depth_stamps[3])]
    out = {}
    rgb_lines = ["# color images", "# file: 'rgbd_dataset_freiburg2_xyz.bag'", "# timestamp filename"]
    depth_lines = ["# depth maps", "# file: 'rgbd_dataset_freiburg2_xyz.bag'", "# timestamp filename"]
    frames = {}
    for k, stamp in enumerate(depth_stamps):
        rgb, depth = scene(*size, seed=50 + k)
        code, depth = _quantised(depth, 5000.0)
        _png16(root / "depth" / f"{stamp:.6f}.png", code)
        depth_lines.append(f"{stamp:.6f} depth/{stamp:.6f}.png")
        frames[stamp] = depth
    images = {}
    for k, stamp in enumerate(rgb_stamps):
        rgb, _ = scene(*size, seed=60 + k)
        images[stamp] = _rgb(root / "rgb" / f"{stamp:.6f}.png", rgb)
        rgb_lines.append(f"{stamp:.6f} rgb/{stamp:.6f}.png")
    (root / "rgb.txt").write_text("\n".join(rgb_lines) + "\n")
    (root / "depth.txt").write_text("\n".join(depth_lines) + "\n")
    for a, b in pairs:
        out[f"{a:.6f}"] = (images[a], frames[b])
    return out, pairs


def write_kitti_selection(root: Path, size=(48, 160)) -> dict:
    """depth_selection/val_selection_cropped: image/, groundtruth_depth/ (uint16 m*256, 0 invalid), intrinsics/."""
    out = {}
    for frame in (5, 6):
        stem = f"2011_09_26_drive_0002_sync_image_{frame:010d}_image_02"
        rgb, depth = scene(*size, seed=70 + frame, far=70.0)
        code, depth = _quantised(depth, 256.0)
        rgb = _rgb(root / "image" / f"{stem}.png", rgb)
        _png16(root / "groundtruth_depth" / f"2011_09_26_drive_0002_sync_groundtruth_depth_{frame:010d}_image_02.png",
               code)
        (root / "intrinsics").mkdir(exist_ok=True)
        (root / "intrinsics" / f"{stem}.txt").write_text("721.5377 0.0 80.0 0.0 721.5377 24.0 0.0 0.0 1.0\n")
        out[stem] = (rgb, depth)
    return out


def write_kitti_tree(root: Path, size=(48, 160)) -> dict:
    """DATE/DRIVE_sync/{image_02/data, proj_depth/groundtruth/image_02}/N.png and DATE/calib_cam_to_cam.txt."""
    drive = root / "2011_09_26" / "2011_09_26_drive_0001_sync"
    (root / "2011_09_26").mkdir(parents=True)
    (root / "2011_09_26" / "calib_cam_to_cam.txt").write_text(
        "calib_time: 09-Jan-2012 13:57:47\n"
        "P_rect_00: 7.215377e+02 0.000000e+00 6.095593e+02 0.000000e+00 0.000000e+00 7.215377e+02 1.728540e+02 "
        "0.000000e+00 0.000000e+00 0.000000e+00 1.000000e+00 0.000000e+00\n"
        "P_rect_02: 7.215377e+02 0.000000e+00 6.095593e+02 4.485728e+01 0.000000e+00 7.215377e+02 1.728540e+02 "
        "2.163791e-01 0.000000e+00 0.000000e+00 1.000000e+00 2.745884e-03\n")
    out = {}
    for frame in (5, 6):
        rgb, depth = scene(*size, seed=80 + frame, far=70.0)
        code, depth = _quantised(depth, 256.0)
        rgb = _rgb(drive / "image_02" / "data" / f"{frame:010d}.png", rgb)
        _png16(drive / "proj_depth" / "groundtruth" / "image_02" / f"{frame:010d}.png", code)
        out[f"2011_09_26_drive_0001_sync/image_02/{frame:010d}"] = (rgb, depth)
    return out
