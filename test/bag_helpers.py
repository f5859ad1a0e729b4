"""Helpers of the bag tests: read a whole bag with rosbags, write small hand-made bags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from depth_anything_ros.bag import bagfile, messages

SMALL = {"width": 160, "height": 120, "frames": 5}
INPUT_SIZE = 70  # network input 70 x 98 for 160 x 120 images: fast on a shared CPU


@dataclass
class Record:
    topic: str
    msgtype: str
    log_time: int
    raw: bytes

    @property
    def msg(self):
        return messages.deserialize(self.raw, self.msgtype)


def read_bag(path: Path) -> list[Record]:
    """Every message of a bag in log-time order."""
    reader = bagfile.open_reader(path)
    try:
        return [Record(c.topic, c.msgtype, t, bytes(raw)) for c, t, raw in reader.messages()]
    finally:
        reader.close()


def by_topic(records: list[Record]) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = {}
    for r in records:
        out.setdefault(r.topic, []).append(r)
    return out


def write_bag(path: Path, records: list[tuple[str, str, int, object]], storage: str = "mcap") -> Path:
    """Write (topic, msgtype, log_time, rosbags message) tuples to a new bag."""
    writer = bagfile.open_writer(path, storage)
    try:
        conns = {}
        for topic, msgtype, log_time, msg in records:
            if topic not in conns:
                conns[topic] = bagfile.add_topic(writer, topic, msgtype)
            writer.write(conns[topic], log_time, messages.serialize(msg))
    finally:
        writer.close()
    return path


def depth_fields(depth: np.ndarray, encoding: str) -> dict:
    """Image fields of (H,W) metres (NaN invalid) as 32FC1 metres or 16UC1 millimetres."""
    from depth_anything_ros.bag.sample import depth_mm_fields
    from depth_anything_ros.frame import image_codec

    return image_codec.depth_image_fields(depth) if encoding == "32FC1" else depth_mm_fields(depth)
