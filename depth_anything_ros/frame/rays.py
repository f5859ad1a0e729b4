"""Per-pixel viewing rays of a camera (z = 1), with OpenCV undistortion of raw images: NumPy and OpenCV only.

A point is ray(u, v) * depth(u, v) in the optical frame (REP 103); for a rectified camera the ray is
((u - cx) / fx, (v - cy) / fy, 1), as in depth_image_proc.
"""

import cv2
import numpy as np

from depth_anything_ros.frame.camera import Intrinsics

# A ray whose reprojection through K and D misses its pixel by more than this lies where the distortion model
# is not invertible (e.g. the corners of strongly distorted lenses); such rays are NaN.
REPROJECTION_TOLERANCE_PX = 0.01

_UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-8)
_COEFFICIENT_COUNTS = {'plumb_bob': (4, 5), 'rational_polynomial': (8,), 'equidistant': (4,)}


def ray_grid(intr: Intrinsics, undistort: bool) -> np.ndarray:
    """Return the (H, W, 3) float32 ray grid of ``intr`` with z = 1; NaN rays where undistortion has no solution.

    Without distortion (or ``undistort`` False) rays are ((u - cx) / fx, (v - cy) / fy, 1) from the rectified
    projection. With ``undistort`` and non-zero D, raw pixels are undistorted through K and D (OpenCV) into
    normalised coordinates of K's optical frame. Compute once per camera_info; the caller caches it.
    """
    u, v = np.meshgrid(np.arange(intr.width, dtype=np.float64), np.arange(intr.height, dtype=np.float64))
    rays = pixel_rays(intr, np.stack([u, v], axis=-1).reshape(-1, 2), undistort)
    return rays.reshape(intr.height, intr.width, 3).astype(np.float32)


def principal_point(intr: Intrinsics, undistort: bool) -> tuple[float, float]:
    """Return the (u, v) pixel of the optical axis: K's (cx, cy) on raw images undistorted through K, else P's."""
    if undistort and intr.has_distortion:
        return intr.k[2], intr.k[5]
    return intr.cx, intr.cy


def pixel_rays(intr: Intrinsics, pixels: np.ndarray, undistort: bool) -> np.ndarray:
    """Return the (N, 3) float64 rays (z = 1) of (N, 2) float (u, v) pixels, by the rules of ``ray_grid``."""
    pixels = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
    if not (undistort and intr.has_distortion):
        return np.stack([(pixels[:, 0] - intr.cx) / intr.fx, (pixels[:, 1] - intr.cy) / intr.fy,
                         np.ones(len(pixels))], axis=1)
    model = intr.distortion_model
    if model not in _COEFFICIENT_COUNTS:
        raise ValueError(f"unknown distortion model '{model}' with non-zero coefficients; "
                         f"supported: {', '.join(_COEFFICIENT_COUNTS)}")
    if len(intr.d) not in _COEFFICIENT_COUNTS[model]:
        raise ValueError(f"distortion model '{model}' needs {' or '.join(map(str, _COEFFICIENT_COUNTS[model]))} "
                         f'coefficients, got {len(intr.d)}')
    k_matrix = intr.camera_matrix()
    coefficients = np.array(intr.d, dtype=np.float64)
    pixels = pixels.reshape(-1, 1, 2)
    zero = np.zeros(3)
    if model == 'equidistant':
        normalised = _fisheye_undistort(pixels, k_matrix, coefficients)
        rays = np.concatenate([normalised.reshape(-1, 2), np.ones((pixels.shape[0], 1))], axis=1)
        finite = np.isfinite(rays).all(axis=1)
        reprojected = np.full_like(pixels, np.nan)
        reprojected[finite] = cv2.fisheye.projectPoints(
            rays[finite].reshape(-1, 1, 3), zero, zero, k_matrix, coefficients)[0]
    else:
        normalised = _pinhole_undistort(pixels, k_matrix, coefficients)
        rays = np.concatenate([normalised.reshape(-1, 2), np.ones((pixels.shape[0], 1))], axis=1)
        finite = np.isfinite(rays).all(axis=1)
        reprojected = np.full_like(pixels, np.nan)
        reprojected[finite] = cv2.projectPoints(rays[finite], zero, zero, k_matrix, coefficients)[0]
    error = np.linalg.norm((reprojected - pixels).reshape(-1, 2), axis=1)
    rays[~(error <= REPROJECTION_TOLERANCE_PX)] = np.nan
    return rays


def _pinhole_undistort(pixels: np.ndarray, k_matrix: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """Undistort (N, 1, 2) pixels to normalised coordinates (OpenCV 4 and 5 spell the iterative call apart)."""
    if hasattr(cv2, 'undistortPointsIter'):
        return cv2.undistortPointsIter(pixels, k_matrix, coefficients, None, None, _UNDISTORT_CRITERIA)
    return cv2.undistortPoints(pixels, k_matrix, coefficients, criteria=_UNDISTORT_CRITERIA)


def _fisheye_undistort(pixels: np.ndarray, k_matrix: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """Undistort (N, 1, 2) pixels with the equidistant model to normalised coordinates."""
    try:
        return cv2.fisheye.undistortPoints(pixels, k_matrix, coefficients, criteria=_UNDISTORT_CRITERIA)
    except TypeError:  # OpenCV < 4.6 has no criteria argument
        return cv2.fisheye.undistortPoints(pixels, k_matrix, coefficients)
