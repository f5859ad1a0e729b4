"""`bag record`: write topics of the ROS graph into a new bag as the serialized bytes that arrive.

Types are discovered from the graph; a topic is subscribed (raw, no deserialization) as soon as it has a publisher
(with --qos-reliability auto, whose QoS it follows) or appears at all (a reliability given). The message definitions
in the bag come from the rosbags typestore, so types it does not know are reported and skipped.

Nothing received is lost at the end: the subscriptions keep a deep history (a burst waits in it instead of replacing
older messages), and on Ctrl-C (SIGINT or SIGTERM) or at --duration the recorder goes on taking messages until none
came for QUIET_S (at most DRAIN_MAX_S) before it closes the bag.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import ReliabilityPolicy

from depth_anything_ros.bag import bagfile
from depth_anything_ros.bag.bagfile import BagError
from depth_anything_ros.bag.messages import TYPESTORE
from depth_anything_ros.bag.rosgraph import message_class, qos, ros_node

DEPTH = 1000  # history of each subscription: messages that may wait between two takes without one being replaced
QUIET_S = 0.3  # stopping: done when nothing arrived for this long ...
DRAIN_MAX_S = 2.0  # ... or after this long, for topics that never pause


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
        self.last_arrival = 0.0  # time.monotonic() of the newest message

    def discover(self) -> None:
        """Subscribe to every pending topic the graph now knows a type for (and, for auto reliability, a publisher).

        With auto reliability a topic that only has subscribers so far waits for its first publisher: its offered
        QoS decides, so that a reliable publisher is never heard best effort (with losses).
        """
        types = dict(self.node.get_topic_names_and_types())
        ready = [t for t in self.pending if types.get(t)
                 and (self.opts.reliability != "auto" or self.node.count_publishers(t) > 0)]
        for topic in ready:
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
                cls, topic, lambda raw, c=conn: self._write(c, raw), qos(reliable, depth=DEPTH), raw=True))
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
        self.last_arrival = time.monotonic()

    def drain(self, executor: object, aborted: threading.Event) -> None:
        """Take what is still arriving: until nothing came for QUIET_S, at most DRAIN_MAX_S (or a second Ctrl-C)."""
        start = time.monotonic()
        while not aborted.is_set():
            now = time.monotonic()
            if now - max(self.last_arrival, start) >= QUIET_S or now - start >= DRAIN_MAX_S:
                return
            executor.spin_once(timeout_sec=0.05)


@contextlib.contextmanager
def _stop_signals() -> Iterator[tuple[threading.Event, threading.Event]]:
    """Yield (stop, abort): SIGINT/SIGTERM set stop, a second one abort; Python's handlers are restored after.

    Handled as flags so that Ctrl-C never interrupts a write half-way and the recorder can still take what arrives.
    Off the main thread (where signals cannot be caught) both events simply stay clear.
    """
    stop, abort = threading.Event(), threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop, abort
        return

    def handle(signum: int, frame: object) -> None:
        (abort if stop.is_set() else stop).set()

    saved = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop, abort
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def record_bag(path: str | Path, opts: RecordOptions) -> dict[str, int]:
    """Record until Ctrl-C or opts.duration, then take what is still arriving and close the bag.

    Returns the messages received (and written) per topic.
    """
    if not opts.topics:
        raise BagError("name at least one topic to record")
    if opts.reliability not in ("auto", "reliable", "best_effort"):
        raise BagError(f"unknown reliability {opts.reliability!r}; expected auto, reliable or best_effort")
    writer = bagfile.open_writer(path, opts.storage)
    try:
        with ros_node("depth_anything_bag_record") as node, _stop_signals() as (stop, abort):
            recorder = Recorder(node, writer, opts)
            executor = SingleThreadedExecutor(context=node.context)
            executor.add_node(node)
            start = time.monotonic()
            try:
                while not stop.is_set() and (opts.duration <= 0 or time.monotonic() - start < opts.duration):
                    if recorder.pending:
                        recorder.discover()
                    executor.spin_once(timeout_sec=0.1)
                recorder.drain(executor, abort)
            except (KeyboardInterrupt, ExternalShutdownException):
                pass
            finally:
                executor.shutdown(timeout_sec=1.0)
            for topic in recorder.pending:
                print(f"warning: nothing recorded on {topic}: no publisher appeared", file=sys.stderr)
            return recorder.counts
    finally:
        writer.close()
