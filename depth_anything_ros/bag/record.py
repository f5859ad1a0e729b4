"""`bag record`: write topics of the ROS graph into a new bag as the serialized bytes that arrive.

Types are discovered from the graph; a topic is subscribed (raw, no deserialization) as soon as it appears. The
message definitions in the bag come from the rosbags typestore, so types it does not know are reported and skipped.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import ReliabilityPolicy

from depth_anything_ros.bag import bagfile
from depth_anything_ros.bag.bagfile import BagError
from depth_anything_ros.bag.messages import TYPESTORE
from depth_anything_ros.bag.rosgraph import message_class, qos, ros_node


@dataclass
class RecordOptions:
    """What to record and for how long."""

    topics: list[str]
    duration: float = 0.0  # seconds; 0 = until Ctrl-C
    storage: str = "mcap"
    reliability: str = "auto"  # auto: reliable when every publisher offers it | reliable | best_effort


def _absolute(topic: str) -> str:
    return topic if topic.startswith("/") else f"/{topic}"


class Recorder:
    """Subscribes to topics as they appear and writes what arrives."""

    def __init__(self, node: object, writer: object, opts: RecordOptions):
        self.node, self.writer, self.opts = node, writer, opts
        self.pending = [_absolute(t) for t in opts.topics]
        self.counts: dict[str, int] = {t: 0 for t in self.pending}
        self.subscriptions = []

    def discover(self) -> None:
        """Subscribe to every pending topic the graph now knows a type for."""
        types = dict(self.node.get_topic_names_and_types())
        for topic in [t for t in self.pending if types.get(t)]:
            msgtype = types[topic][0]
            self.pending.remove(topic)
            if len(types[topic]) > 1:
                print(f"warning: {topic} has several types {types[topic]}; recording {msgtype}", file=sys.stderr)
            if msgtype not in TYPESTORE.types:
                print(f"warning: not recording {topic}: no message definition for {msgtype}", file=sys.stderr)
                continue
            try:
                cls = message_class(msgtype)
            except BagError as exc:
                print(f"warning: not recording {topic}: {exc}", file=sys.stderr)
                continue
            conn = bagfile.add_topic(self.writer, topic, msgtype)
            reliable = self._reliable(topic)
            self.subscriptions.append(self.node.create_subscription(
                cls, topic, lambda raw, c=conn: self._write(c, raw), qos(reliable), raw=True))
            print(f"recording {topic} ({msgtype}, {'reliable' if reliable else 'best effort'})", file=sys.stderr,
                  flush=True)

    def _reliable(self, topic: str) -> bool:
        if self.opts.reliability != "auto":
            return self.opts.reliability == "reliable"
        offered = self.node.get_publishers_info_by_topic(topic)
        return bool(offered) and all(p.qos_profile.reliability == ReliabilityPolicy.RELIABLE for p in offered)

    def _write(self, conn: object, raw: bytes) -> None:
        self.writer.write(conn, time.time_ns(), raw)
        self.counts[conn.topic] += 1


def record_bag(path: str | Path, opts: RecordOptions) -> dict[str, int]:
    """Record until Ctrl-C or opts.duration; the bag is closed either way; returns messages per topic."""
    if not opts.topics:
        raise BagError("name at least one topic to record")
    if opts.reliability not in ("auto", "reliable", "best_effort"):
        raise BagError(f"unknown reliability {opts.reliability!r}; expected auto, reliable or best_effort")
    writer = bagfile.open_writer(path, opts.storage)
    try:
        with ros_node("depth_anything_bag_record") as node:
            recorder = Recorder(node, writer, opts)
            executor = SingleThreadedExecutor(context=node.context)
            executor.add_node(node)
            start = time.monotonic()
            try:
                while opts.duration <= 0 or time.monotonic() - start < opts.duration:
                    if recorder.pending:
                        recorder.discover()
                    executor.spin_once(timeout_sec=0.1)
            except (KeyboardInterrupt, ExternalShutdownException):
                pass
            finally:
                executor.shutdown(timeout_sec=1.0)
            for topic in recorder.pending:
                print(f"warning: {topic} never appeared in the graph", file=sys.stderr)
            return recorder.counts
    finally:
        writer.close()
