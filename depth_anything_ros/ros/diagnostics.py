"""The node's health in words and levels: model state, per-camera status and stamp-based latency (no rclpy)."""

from __future__ import annotations

from dataclasses import dataclass

MAX_PLAUSIBLE_LATENCY_S = 60.0  # an older stamp comes from another clock (or a bag without use_sim_time)
FUTURE_TOLERANCE_S = 0.5  # clocks of two machines disagree a little; more than this is another clock


@dataclass(frozen=True)
class Latency:
    """Latency of one frame from its header stamp: seconds, or why the stamp cannot give one."""

    seconds: float | None
    problem: str = ""


def stamp_latency(now_ns: int, stamp_ns: int) -> Latency:
    """Latency of a frame stamped `stamp_ns` published at `now_ns` (both on the node's clock), or why not."""
    if stamp_ns == 0:
        return Latency(None, "header stamps are zero (the camera driver does not stamp its images)")
    seconds = (now_ns - stamp_ns) * 1e-9
    if seconds < -FUTURE_TOLERANCE_S:
        return Latency(None, f"header stamps are {-seconds:.1f} s in the future of the node's clock (another clock, "
                             "e.g. a bag played with --clock while this node runs without use_sim_time)")
    if seconds > MAX_PLAUSIBLE_LATENCY_S:
        return Latency(None, f"header stamps are {seconds:.0f} s old (another clock, e.g. a bag replayed without "
                             "--clock, or use_sim_time set without a /clock publisher)")
    return Latency(max(seconds, 0.0))


@dataclass(frozen=True)
class ModelState:
    """What the model status says: level OK/WARN/ERROR and a message."""

    level: str
    message: str


def model_state(status: str, failure: str, worker_alive: bool, active: bool) -> ModelState:
    """Level and message of the model status from the lifecycle status, the last transition failure, the worker."""
    if failure:
        return ModelState("ERROR", failure)
    if active and not worker_alive:
        return ModelState("ERROR", "the processing thread has stopped; nothing is processed (see the log), "
                                   "deactivate and activate the node to restart it")
    return ModelState("OK", status)


def camera_state(active: bool, status: str, recent_error: str, no_input: str, stamp_problem: str,
                 scale_problem: str = "") -> ModelState:
    """Level and message of one camera's status."""
    if not active:
        return ModelState("OK", status)
    if recent_error:
        return ModelState("WARN", f"input error: {recent_error}")
    if no_input:
        return ModelState("WARN", no_input)
    if scale_problem:
        return ModelState("WARN", scale_problem)
    if stamp_problem:
        return ModelState("WARN", f"latency unknown: {stamp_problem}")
    return ModelState("OK", "processing")
