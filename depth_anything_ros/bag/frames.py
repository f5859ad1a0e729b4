"""Image messages read from a bag -> frames for the shared FramePipeline, in batches of consecutive frames."""

from __future__ import annotations

from dataclasses import dataclass

from depth_anything_ros.bag import messages

OUTPUTS = ("depth", "camera_info", "points", "colored", "scan", "confidence")  # what bag process can write per frame
DEFAULT_OUTPUTS = OUTPUTS[:4]  # scan and confidence on request (the confidence doubles the network's work)


@dataclass
class Frame:
    """One image message of a bag (decoded by the pipeline), its header and its bag log time (ns)."""

    header: object
    log_time: int
    message: object

    @property
    def stamp(self) -> int:
        """Header stamp in nanoseconds."""
        return messages.stamp_ns(self.header)


def read_frame(raw: bytes | memoryview, msgtype: str, log_time: int) -> Frame:
    """Deserialize an Image or CompressedImage message into a Frame."""
    msg = messages.deserialize(raw, msgtype)
    return Frame(msg.header, log_time, msg)


class FrameBatcher:
    """Collects consecutive frames into batches of up to `size` (the pipeline groups them by image size)."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"batch size must be at least 1, got {size}")
        self.size = size
        self.pending: list[Frame] = []

    def add(self, frame: Frame) -> list[list[Frame]]:
        """Add a frame; returns the batch that is complete now (none or one)."""
        self.pending.append(frame)
        return [self.flush()] if len(self.pending) >= self.size else []

    def flush(self) -> list[Frame]:
        """Take the pending frames (possibly none)."""
        batch, self.pending = self.pending, []
        return batch


def stamp_text(frame: Frame) -> str:
    """'stamp 1700000000.050000000 s' of a frame, for messages."""
    return f"stamp {frame.stamp * 1e-9:.9f} s"
