"""Metric scale from a reference depth or the floor, smoothed over time (no ROS).

Estimators, and why:

- metric model + reference depth: the scale s with reference ~ s x prediction is exp(m), m the Tukey-biweight
  M-estimate of the log ratios log(reference / prediction), started at their median (IRLS, MAD scale, c = 4.685).
  Log ratios make the error multiplicative (depth noise grows with distance, a 10 % error weighs the same at 1 m
  and at 10 m); the median has a 50 % breakdown point but shifts when outliers sit on one side (reflective
  surfaces read too far, edges mix fore- and background); the biweight gives gross outliers weight zero and is
  95 % efficient on Gaussian noise, so a few hundred sparse LiDAR pixels suffice.
- relative model + reference depth: scale and shift in inverse depth, s x d + t ~ 1 / reference, least squares as
  Depth Anything evaluates relative models (MiDaS alignment in disparity), made robust: a least-median-of-squares
  start from pixel pairs, then Tukey-weighted least squares on the relative residual (s d + t) x reference - 1.
- ground plane: RANSAC plane on the unscaled cloud below the camera in the lower image half, candidate normals
  within a bound of the expected floor direction, inliers within PLANE_TOLERANCE of the plane distance, refined by
  least squares on the inliers (the smallest eigenvector of their 3x3 scatter, the plane an SVD gives); scale =
  camera height / plane distance.

Subsampling, so that a fit costs a few milliseconds at any image size: the reference fits run on at most
MAX_FIT_PIXELS valid pixels, a seeded random subset (without replacement) when there are more; `valid` counts every
valid pixel and `inliers` counts the inliers among all of them (the residual is the subset's). The ground plane
runs on the floor grid: every k-th row and column of the lower image half, k the smallest stride that leaves at
most about MAX_FLOOR_POINTS points, so its counts are grid points. A reference of up to MAX_FIT_PIXELS valid
pixels and a floor of images up to 160x120 are fitted on every pixel.

ScaleTracker smooths per-frame fits over stamps (exponential, time constant), rate-limits jumps, keeps the last
scale without a fit and says how old it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

SCALE_MODES = ("fixed", "reference", "ground_plane")
TUKEY_C = 4.685  # biweight tuning constant: 95 % Gaussian efficiency
MAD_TO_SIGMA = 1.4826
IRLS_ITERATIONS = 30
LMEDS_SAMPLES = 256  # pixel pairs tried for the relative alignment's robust start
RANSAC_ITERATIONS = 256
RANSAC_POINTS = 2048  # points RANSAC scores hypotheses on (a random subset)
LMEDS_POINTS = 1024  # points the relative alignment's start scores its pairs on (a random subset)
MAX_FIT_PIXELS = 4096  # reference fits: a seeded random subset of at most this many valid pixels
MAX_FLOOR_POINTS = 10_000  # ground plane: the floor grid's stride keeps at most about this many points
PLANE_TOLERANCE = 0.03  # inlier distance, relative to the plane distance (3 cm at 1 m)
FLOOR_ROWS = 0.5  # the lower half of the image holds the floor candidates
MIN_SIGMA = 1e-4  # robust scale floor: exact data must not divide by zero


class ReferenceSizeError(ValueError):
    """A reference depth image that is neither the image's size nor a uniform resize of it."""


@dataclass(frozen=True)
class ScaleOptions:
    """How scale is estimated and smoothed (the node's scale.* parameters of the same meaning)."""

    mode: str = "fixed"  # fixed | reference | ground_plane
    time_constant: float = 1.0  # seconds of the exponential smoothing; 0 = every good fit applies at once
    max_rate: float = 0.5  # largest relative change of the scale per second; a larger jump is rate-limited
    timeout: float = 2.0  # seconds without a good fit before the scale is reported stale
    min_reference_depth: float = 0.1  # metres; reference pixels outside [min, max] are not used
    max_reference_depth: float = 20.0
    min_pixels: int = 100  # fewer valid reference pixels or floor inliers: no fit for this frame
    camera_height: float = 0.0  # metres above the floor (ground_plane)
    floor_pitch_deg: float = 0.0  # camera pitched down by this: expected floor normal (0, -cos, -sin) in optical
    max_normal_angle_deg: float = 10.0  # a floor normal farther than this from the expected one is refused
    learn_floor: bool = False  # the first accepted floor normal becomes the expected one

    def __post_init__(self):
        problems = []
        if self.mode not in SCALE_MODES:
            problems.append(f"scale mode must be one of {', '.join(SCALE_MODES)}, got '{self.mode}'")
        if not 0.0 < self.min_reference_depth < self.max_reference_depth:
            problems.append(f"reference depth range must satisfy 0 < min < max, got {self.min_reference_depth}, "
                            f"{self.max_reference_depth}")
        if self.mode == "ground_plane" and self.camera_height <= 0.0:
            problems.append("scale.mode ground_plane needs scale.camera_height > 0 (metres above the floor)")
        if problems:
            raise ValueError("; ".join(problems))

    def floor_normal(self) -> np.ndarray:
        """(3,) unit normal of the floor pointing up, in the optical frame (x right, y down, z forward)."""
        pitch = math.radians(self.floor_pitch_deg)
        return np.array([0.0, -math.cos(pitch), -math.sin(pitch)])


@dataclass(frozen=True)
class ScaleFit:
    """One frame's fit: depth = scale x prediction (metric) or 1 / (scale x d + shift) (relative), and its quality."""

    ok: bool
    scale: float = math.nan
    shift: float = 0.0
    valid: int = 0  # reference pixels in range / floor candidate points
    inliers: int = 0
    residual: float = math.nan  # robust relative residual (MAD sigma) of the inliers
    reason: str = ""  # why not ok
    normal: tuple[float, float, float] | None = None  # ground plane: the fitted floor normal


def reference_pixels(shape: tuple[int, int], reference_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(rows (h',), cols (w',)) image pixels nearest to the reference pixel centres; shape (H, W) of the image."""
    height, width = shape
    ref_h, ref_w = reference_shape
    ratio = width / ref_w
    if ref_h < 1 or ref_w < 1 or abs(ref_h * ratio - height) > max(ratio, 1.0):
        raise ReferenceSizeError(f"reference depth of {ref_w}x{ref_h} pixels is neither the image size "
                                 f"{width}x{height} nor a uniform resize of it")
    rows = np.clip(np.round((np.arange(ref_h) + 0.5) * height / ref_h - 0.5), 0, height - 1).astype(np.int64)
    cols = np.clip(np.round((np.arange(ref_w) + 0.5) * width / ref_w - 0.5), 0, width - 1).astype(np.int64)
    return rows, cols


@dataclass(frozen=True)
class Pairs:
    """Valid reference pixels paired with the prediction: the fit's sample and the grids to count inliers on."""

    prediction: np.ndarray  # (n,) float64 sample, n <= MAX_FIT_PIXELS
    reference: np.ndarray  # (n,) float64 sample
    valid: int  # every valid pixel
    grid_prediction: np.ndarray  # (h', w') prediction at the reference pixels
    grid_reference: np.ndarray  # (h', w') reference
    mask: np.ndarray  # (h', w') bool: valid pixels

    def count(self, inside) -> int:
        """Count the valid pixels (all, not the sample) where inside(prediction (h', w'), reference (h', w')) holds."""
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return int(np.count_nonzero(self.mask & inside(self.grid_prediction, self.grid_reference)))


def paired_values(prediction: np.ndarray, reference: np.ndarray, low: float, high: float, seed: int = 0) -> Pairs:
    """Pairs at the reference pixels in [low, high] with a finite prediction > 0; (H, W) and (h', w') inputs."""
    if reference.shape == prediction.shape:
        grid = prediction
    else:
        rows, cols = reference_pixels(prediction.shape, reference.shape)
        grid = prediction[rows[:, None], cols[None, :]]
    with np.errstate(invalid="ignore"):
        mask = np.isfinite(reference) & (reference >= low) & (reference <= high) & np.isfinite(grid) & (grid > 0)
    picked = np.flatnonzero(mask)
    valid = int(picked.size)
    if valid > MAX_FIT_PIXELS:
        picked = picked[np.sort(np.random.default_rng(seed).choice(valid, MAX_FIT_PIXELS, replace=False))]
    return Pairs(np.take(grid, picked).astype(np.float64), np.take(reference, picked).astype(np.float64), valid,
                 grid, reference, mask)


def tukey_weights(residual: np.ndarray, sigma: float) -> np.ndarray:
    """Tukey biweight (N,) of residuals (N,) with robust scale sigma: (1 - u^2)^2 for |u| < 1, u = r / (c sigma)."""
    u = residual / (TUKEY_C * max(sigma, MIN_SIGMA))
    return np.where(np.abs(u) < 1.0, (1.0 - u * u) ** 2, 0.0)


def robust_sigma(residual: np.ndarray) -> float:
    """MAD estimate of the standard deviation of residuals (N,) around zero."""
    return float(MAD_TO_SIGMA * np.median(np.abs(residual))) if residual.size else math.nan


def _enough_pairs(prediction: np.ndarray, reference: np.ndarray, options: ScaleOptions,
                  seed: int) -> tuple[Pairs, ScaleFit | None]:
    """Return the (prediction, reference) pairs of a fit and, when fewer than min_pixels are valid, its failed fit."""
    pairs = paired_values(prediction, reference, options.min_reference_depth, options.max_reference_depth, seed)
    if pairs.valid < options.min_pixels:
        return pairs, ScaleFit(False, valid=pairs.valid, reason=f"{pairs.valid} valid reference pixels, fewer than "
                                                                f"{options.min_pixels}")
    return pairs, None


def fit_reference_scale(prediction: np.ndarray, reference: np.ndarray, options: ScaleOptions,
                        seed: int = 0) -> ScaleFit:
    """Robust s with reference ~ s x prediction: prediction (H, W) metres, reference (h', w') metres, NaN/0 invalid."""
    pairs, refusal = _enough_pairs(prediction, reference, options, seed)
    if refusal is not None:
        return refusal
    ratios = np.log(pairs.reference) - np.log(pairs.prediction)
    location = float(np.median(ratios))
    sigma = robust_sigma(ratios - location)
    for _ in range(IRLS_ITERATIONS):
        weights = tukey_weights(ratios - location, sigma)
        new = float(np.sum(weights * ratios) / np.sum(weights))
        if abs(new - location) < 1e-10:
            break
        location = new
    inliers = tukey_weights(ratios - location, sigma) > 0
    bound = TUKEY_C * max(sigma, MIN_SIGMA)  # inlier: |log(ref / pred) - location| < bound
    low, high = math.exp(location - bound), math.exp(location + bound)
    count = pairs.count(lambda pred, ref: (ref > low * pred) & (ref < high * pred))
    return ScaleFit(True, math.exp(location), 0.0, pairs.valid, count, robust_sigma(ratios[inliers] - location))


def _weighted_line(d: np.ndarray, g: np.ndarray, w: np.ndarray) -> tuple[float, float] | None:
    """(s, t) minimising sum w (s d + t - g)^2 over (N,) arrays, None when degenerate."""
    sw, sd, sg = w.sum(), (w * d).sum(), (w * g).sum()
    sdd, sdg = (w * d * d).sum(), (w * d * g).sum()
    det = sw * sdd - sd * sd
    if sw <= 0 or det <= 1e-12 * sw * max(sdd, 1e-300):
        return None
    s = (sw * sdg - sd * sg) / det
    return float(s), float((sg - s * sd) / sw)


def fit_relative(disparity: np.ndarray, reference: np.ndarray, options: ScaleOptions,
                 seed: int = 0) -> ScaleFit:
    """Robust (s, t) with 1 / reference ~ s x disparity + t: disparity (H, W) affine-invariant, reference (h', w') m."""
    paired, refusal = _enough_pairs(disparity, reference, options, seed)
    if refusal is not None:
        return refusal
    d, ref = paired.prediction, paired.reference
    g = 1.0 / ref
    rng = np.random.default_rng(seed)
    pairs = rng.integers(0, d.size, (LMEDS_SAMPLES, 2))
    d0, d1, g0, g1 = d[pairs[:, 0]], d[pairs[:, 1]], g[pairs[:, 0]], g[pairs[:, 1]]
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (g1 - g0) / (d1 - d0)
    t = g0 - s * d0
    keep = np.isfinite(s) & (s > 0)
    if not keep.any():
        return ScaleFit(False, valid=paired.valid, reason="the prediction is constant over the reference pixels")
    score_idx = rng.choice(d.size, min(d.size, LMEDS_POINTS), replace=False)
    residual = (s[keep, None] * d[None, score_idx] + t[keep, None]) * ref[None, score_idx] - 1.0
    best = int(np.argmin(np.median(np.abs(residual), axis=1)))
    s_fit, t_fit = float(s[keep][best]), float(t[keep][best])
    sigma = robust_sigma((s_fit * d + t_fit) * ref - 1.0)
    for _ in range(IRLS_ITERATIONS):
        line = _weighted_line(d, g, tukey_weights((s_fit * d + t_fit) * ref - 1.0, sigma))
        if line is None:
            return ScaleFit(False, valid=paired.valid, reason="too few inlier reference pixels for scale and shift")
        done = abs(line[0] - s_fit) <= 1e-10 * abs(s_fit) and abs(line[1] - t_fit) <= 1e-12
        s_fit, t_fit = line
        if done:
            break
    if s_fit <= 0:
        return ScaleFit(False, valid=paired.valid, reason=f"fitted inverse-depth scale {s_fit:.3g} is not positive")
    residual = (s_fit * d + t_fit) * ref - 1.0
    inliers = tukey_weights(residual, sigma) > 0
    bound = TUKEY_C * max(sigma, MIN_SIGMA)
    count = paired.count(lambda disp, ref_: np.abs((s_fit * disp + t_fit) * ref_ - 1.0) < bound)
    return ScaleFit(True, s_fit, t_fit, paired.valid, count, robust_sigma(residual[inliers]))


def relative_to_depth(disparity, scale: float, shift: float):
    """Metric depth (H, W) of affine-invariant disparity (H, W) (numpy or torch): 1 / (s d + t), NaN where <= 0."""
    inverse = disparity * scale + shift
    depth = 1.0 / inverse
    depth[~(inverse > 0)] = math.nan
    return depth


def floor_grid(height: int, width: int) -> tuple[slice, slice]:
    """(rows, cols) slices of an (H, W) image's floor grid: every k-th row and column of the lower half."""
    first = int(height * (1.0 - FLOOR_ROWS))
    stride = max(1, math.ceil(math.sqrt((height - first) * width / MAX_FLOOR_POINTS)))
    return slice(first, height, stride), slice(0, width, stride)


def floor_candidates(points: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(N, 3) finite points below the camera in front of it; points (..., 3) optical frame, up (3,)."""
    flat = points.reshape(-1, 3)
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(flat).all(axis=1) & (flat[:, 2] > 0) & (flat @ up < 0)
    return flat[keep].astype(np.float64)


def fit_ground_plane(points: np.ndarray, up: np.ndarray, options: ScaleOptions, seed: int = 0) -> ScaleFit:
    """Scale = camera height / floor distance from the unscaled cloud points (H, W, 3); up (3,) expected normal."""
    return fit_floor(points[floor_grid(*points.shape[:2])], up, options, seed)


def fit_floor(grid: np.ndarray, up: np.ndarray, options: ScaleOptions, seed: int = 0) -> ScaleFit:
    """fit_ground_plane on the points of the floor grid already taken (h, w, 3) (see floor_grid)."""
    pts = floor_candidates(grid, up)
    if pts.shape[0] < max(options.min_pixels, 3):
        return ScaleFit(False, valid=int(pts.shape[0]), reason=f"{pts.shape[0]} floor candidate points, fewer than "
                                                               f"{options.min_pixels}")
    rng = np.random.default_rng(seed)
    cos_bound = math.cos(math.radians(options.max_normal_angle_deg))
    sub = pts[rng.choice(pts.shape[0], min(pts.shape[0], RANSAC_POINTS), replace=False)]
    tri = sub[rng.integers(0, sub.shape[0], (RANSAC_ITERATIONS, 3))]  # (I, 3 points, 3)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(normals, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        normals = normals / length[:, None]
    normals *= np.where(normals @ up < 0, -1.0, 1.0)[:, None]
    dist = -np.einsum("ij,ij->i", normals, tri[:, 0])  # n.p + dist = 0 on the plane; dist > 0 below the camera
    usable = (length > 0) & (normals @ up >= cos_bound) & (dist > 0)
    if not usable.any():
        return ScaleFit(False, valid=int(pts.shape[0]), reason="no plane within "
                        f"{options.max_normal_angle_deg:g} degrees of the expected floor direction")
    candidates, offsets = normals[usable].T.astype(np.float32), dist[usable].astype(np.float32)  # float32: 2x faster
    counts = (np.abs(sub.astype(np.float32) @ candidates + offsets) < PLANE_TOLERANCE * offsets).sum(axis=0)
    best = int(np.argmax(counts))
    normal, distance = normals[usable][best], float(dist[usable][best])
    for _ in range(3):  # refine: least-squares plane of the inliers of all candidates (the scatter's least axis)
        inliers = pts[np.abs(pts @ normal + distance) < PLANE_TOLERANCE * distance]
        if inliers.shape[0] < 3:
            break
        centroid = inliers.mean(axis=0)
        centred = inliers - centroid
        normal = np.linalg.eigh(centred.T @ centred)[1][:, 0]  # = the last right singular vector of centred
        normal = normal if normal @ up > 0 else -normal
        distance = float(-normal @ centroid)
    inliers = np.abs(pts @ normal + distance) < PLANE_TOLERANCE * abs(distance)
    count, angle = int(inliers.sum()), math.degrees(math.acos(min(1.0, float(normal @ up))))
    residual = robust_sigma((pts[inliers] @ normal + distance) / distance) if count else math.nan
    fit = ScaleFit(True, options.camera_height / distance if distance > 0 else math.nan, 0.0, int(pts.shape[0]),
                   count, residual, normal=tuple(float(v) for v in normal))
    if distance <= 0 or count < options.min_pixels:
        return replace(fit, ok=False, reason=f"floor plane with {count} inliers, fewer than {options.min_pixels}")
    if angle > options.max_normal_angle_deg:
        return replace(fit, ok=False, reason=f"floor normal {angle:.1f} degrees from the expected direction, "
                                             f"more than {options.max_normal_angle_deg:g}")
    return fit


@dataclass(frozen=True)
class ScaleState:
    """The scale applied to one frame, where it came from and how fresh it is."""

    source: str  # depth.scale | reference | ground_plane
    scale: float  # applied: multiplies the model's depth (metric) or its disparity (relative)
    shift: float = 0.0  # applied inverse-depth shift (relative models), 1/m
    fit: ScaleFit | None = None  # this frame's own fit, None when the frame had no reference / floor to fit
    age: float = math.inf  # seconds (stamps) since the last good fit; inf before the first
    limited: bool = False  # this frame's step was rate-limited (a jump larger than max_rate allows)
    stale: bool = False  # no good fit for longer than the timeout: the last scale is kept
    estimated: bool = False  # a good fit has been seen (relative models give no depth before it)


class ScaleTracker:
    """Exponential smoothing of per-frame fits over header stamps, with a rate limit and an age (one per camera)."""

    def __init__(self, options: ScaleOptions, initial_scale: float = 1.0, relative: bool = False):
        self.options, self.relative = options, relative
        self._value = np.array([initial_scale if relative else math.log(initial_scale), 0.0])
        self._estimated = False
        self.floor_up = options.floor_normal()  # (3,) expected floor normal; learn_floor: the first good fit's
        self._last_stamp: float | None = None
        self._last_fit: float | None = None

    def _scale_shift(self) -> tuple[float, float]:
        if self.relative:
            return float(self._value[0]), float(self._value[1])
        return math.exp(self._value[0]), 0.0

    def update(self, stamp: float, fit: ScaleFit | None) -> ScaleState:
        """Fold in this frame's fit (None or not ok: keep the last scale); stamp in seconds."""
        opts = self.options
        dt = 0.0 if self._last_stamp is None else max(stamp - self._last_stamp, 0.0)
        self._last_stamp = stamp if self._last_stamp is None else max(stamp, self._last_stamp)
        limited = False
        if fit is not None and fit.ok:
            target = np.array([fit.scale, fit.shift]) if self.relative else np.array([math.log(fit.scale), 0.0])
            if not self._estimated:
                self._value, self._estimated = target, True
                if opts.learn_floor and fit.normal is not None:
                    self.floor_up = np.array(fit.normal)
            else:
                alpha = 1.0 - math.exp(-dt / opts.time_constant) if opts.time_constant > 0 else 1.0
                step = alpha * (target - self._value)
                change = abs(math.log((self._value[0] + step[0]) / self._value[0])) if self.relative else abs(step[0])
                allowed = math.log1p(opts.max_rate) * dt
                if change > allowed:
                    step *= allowed / change
                    limited = True
                self._value = self._value + step
            self._last_fit = stamp
        age = math.inf if self._last_fit is None else max(stamp - self._last_fit, 0.0)
        scale, shift = self._scale_shift()
        return ScaleState(opts.mode, scale, shift, fit, age, limited, age > opts.timeout, self._estimated)

