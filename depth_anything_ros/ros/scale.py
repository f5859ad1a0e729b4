"""The node's scale plumbing: reference depth pairing, the per-frame scale message, log events, diagnostics (no rclpy).

`depth/scale` (geometry_msgs/Vector3Stamped, the depth's header) carries, per published depth: x = the scale
applied (metric: depth = x * the model's depth; relative models: inverse depth = x * disparity + y), y = the
inverse-depth shift (1/m, relative models only, else 0), z = this frame's own fitted scale (NaN without a fit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import Vector3Stamped

from depth_anything_ros.frame import image_codec
from depth_anything_ros.frame.scale import ScaleState
from depth_anything_ros.frame.stamped import StampedHistory

REFERENCE_HISTORY = 32  # reference depth images kept per camera to pair with images by stamp
JUMP_LOG_PERIOD_S = 10.0  # a rate-limited jump is logged at most this often per camera


def reference_for(history: StampedHistory, stamp_ns: int, max_diff_s: float) -> np.ndarray | None:
    """(h, w) float32 metres (NaN invalid) of the reference nearest the stamp within max_diff_s, or None.

    Raises image_codec.ImageDecodeError for an encoding other than 32FC1 / 16UC1 or a malformed image.
    """
    msg = history.nearest(stamp_ns, round(max_diff_s * 1e9))
    return None if msg is None else image_codec.depth_from_image(msg)


def scale_msg(header, state: ScaleState | None, depth_scale: float) -> Vector3Stamped:
    """Return the depth/scale message of one frame (fixed mode: x = depth.scale)."""
    msg = Vector3Stamped(header=header)
    if state is None:
        msg.vector.x, msg.vector.y, msg.vector.z = float(depth_scale), 0.0, math.nan
        return msg
    fitted = state.fit.scale if state.fit is not None and state.fit.ok else math.nan
    msg.vector.x, msg.vector.y, msg.vector.z = float(state.scale), float(state.shift), float(fitted)
    return msg


@dataclass
class ScaleHealth:
    """One camera's scale log state: what was said, so a condition is logged once per episode."""

    stale: bool = False
    last_jump_log: float = -math.inf

    def events(self, state: ScaleState, timeout: float, now: float) -> list[tuple[str, str]]:
        """Return (level, text) log lines for this frame's state: stale begins / ends, a rate-limited jump."""
        lines = []
        if state.stale and not self.stale:
            since = "no good fit yet" if math.isinf(state.age) else f"no good fit for {state.age:.1f} s"
            lines.append(("warning", f"scale ({state.source}): {since} (scale.timeout {timeout:g} s), keeping "
                                     f"scale {state.scale:.4f}{_why(state)}"))
        elif self.stale and not state.stale:
            lines.append(("info", f"scale ({state.source}): fits again, scale {state.scale:.4f}"))
        self.stale = state.stale
        if state.limited and now - self.last_jump_log >= JUMP_LOG_PERIOD_S:
            self.last_jump_log = now
            lines.append(("warning", f"scale ({state.source}): fitted scale {state.fit.scale:.4f} jumps from "
                                     f"{state.scale:.4f}; rate-limited by scale.max_rate (logged at most every "
                                     f"{JUMP_LOG_PERIOD_S:.0f} s)"))
        return lines


def _why(state: ScaleState) -> str:
    """'; last frame: <reason>' when the frame had a failed fit, else ''."""
    return f"; last frame: {state.fit.reason}" if state.fit is not None and not state.fit.ok else ""


def diagnostic_values(state: ScaleState | None, depth_scale: float) -> dict[str, str]:
    """Return the scale key/values of a camera's diagnostic status."""
    if state is None:
        return {"scale": f"{depth_scale:.6g}", "scale source": "depth.scale"}
    fit = state.fit
    values = {"scale": f"{state.scale:.6g}", "scale source": state.source,
              "scale age s": "never fitted" if math.isinf(state.age) else f"{state.age:.2f}",
              "scale valid pixels": str(fit.valid) if fit else "-",
              "scale inliers": str(fit.inliers) if fit else "-",
              "scale residual": f"{fit.residual:.4f}" if fit and fit.ok else "-",
              "scale last fit": ("ok" if fit.ok else fit.reason) if fit else "no reference / floor for the frame"}
    if state.shift:
        values["scale shift 1/m"] = f"{state.shift:.6g}"
    return values


def stale_problem(state: ScaleState | None) -> str:
    """Why the camera's scale is stale (its status goes WARN), or ''."""
    if state is None or not state.stale:
        return ""
    since = "never fitted" if math.isinf(state.age) else f"no good fit for {state.age:.1f} s"
    return f"scale {state.source}: {since}, keeping scale {state.scale:.4f}"
