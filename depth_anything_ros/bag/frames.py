"""Image messages read from a bag -> decoded frames, grouped into same-size batches for the estimator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from depth_anything_ros import image_codec
from depth_anything_ros.bag import messages
from depth_anything_ros.bag.bagfile import BagError


@dataclass
class Frame:
    """One decoded image: its message header, bag log time (ns) and (H,W[,C]) pixels in `encoding`."""

    header: object
    log_time: int
    pixels: np.ndarray
    encoding: str

    @property
    def stamp(self) -> int:
        """Header stamp in nanoseconds."""
        return messages.stamp_ns(self.header)

    @property
    def key(self) -> tuple:
        """Frames batch together when their key (size, channels, encoding) is equal."""
        return self.pixels.shape, self.encoding


def decode_frame(raw: bytes | memoryview, msgtype: str, log_time: int, topic: str) -> Frame:
    """Deserialize and decode an Image or CompressedImage message; BagError naming topic and stamp when it fails."""
    msg = messages.deserialize(raw, msgtype)
    try:
        if msgtype == messages.COMPRESSED_IMAGE:
            pixels, encoding = image_codec.decode_compressed(msg)
        else:
            pixels, encoding = image_codec.decode_image(msg)
    except image_codec.ImageDecodeError as exc:
        stamp = messages.stamp_ns(msg.header)
        raise BagError(f"{topic} message at stamp {stamp * 1e-9:.9f} s: {exc}") from exc
    return Frame(msg.header, log_time, pixels, encoding)


class FrameBatcher:
    """Collects frames into batches of up to `size` frames that share size and encoding."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"batch size must be at least 1, got {size}")
        self.size = size
        self.pending: list[Frame] = []

    def add(self, frame: Frame) -> list[list[Frame]]:
        """Add a frame; returns the batches that are complete now (none, one, or two on a size change)."""
        ready = []
        if self.pending and self.pending[0].key != frame.key:
            ready.append(self.flush())
        self.pending.append(frame)
        if len(self.pending) >= self.size:
            ready.append(self.flush())
        return ready

    def flush(self) -> list[Frame]:
        """Take the pending frames (possibly none)."""
        batch, self.pending = self.pending, []
        return batch


def estimate(estimator: object, batch: list[Frame]) -> np.ndarray:
    """Metric depth (B,H,W) float32 of a batch of same-size frames."""
    return estimator.estimate_batch([f.pixels for f in batch], encoding=batch[0].encoding)
