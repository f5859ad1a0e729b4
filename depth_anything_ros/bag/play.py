"""`bag play`: publish a bag's serialized messages with their recorded timing, and /clock with the bag time.

Messages are published as the CDR bytes stored in the bag (rclpy publishes bytes as serialized messages), so every
message type the ROS environment has installed works and header stamps are exactly the recorded ones.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rclpy.executors import ExternalShutdownException
from rosbags.interfaces import QosDurability

from depth_anything_ros.bag import bagfile, messages
from depth_anything_ros.bag.bagfile import BagError
from depth_anything_ros.bag.rosgraph import message_class, qos, ros_node

CLOCK_TOPIC = "/clock"


@dataclass
class PlayOptions:
    """How to play."""

    rate: float = 1.0
    loop: bool = False
    clock_hz: float = 0.0  # publish /clock at this rate; 0 = no clock
    topics: list[str] | None = None
    delay: float = 1.0  # seconds between creating the publishers and the first message
    reliable: bool = True


class BagClock:
    """Bag time as a function of wall time: t0 at `start`, advancing `rate` times as fast."""

    def __init__(self, t0: int, rate: float):
        self.t0, self.rate = t0, rate
        self.start = time.monotonic()

    def now(self) -> int:
        """Return the current bag time in ns."""
        return self.t0 + round((time.monotonic() - self.start) * self.rate * 1e9)

    def wall_at(self, bag_time: int) -> float:
        """Monotonic wall time at which bag_time comes."""
        return self.start + (bag_time - self.t0) * 1e-9 / self.rate


def _clock_loop(publisher: object, clock: list[BagClock], hz: float, stop: threading.Event) -> None:
    while not stop.wait(1.0 / hz):
        publisher.publish(bytes(messages.serialize(messages.clock(clock[0].now()))))


def play_bag(path: str | Path, opts: PlayOptions) -> int:
    """Publish the bag (once, or until Ctrl-C with loop); returns the number of messages published."""
    if opts.rate <= 0:
        raise BagError(f"--rate must be positive, got {opts.rate}")
    if opts.clock_hz < 0:
        raise BagError(f"--clock rate must be positive, got {opts.clock_hz}")
    reader = bagfile.open_reader(path)
    try:
        conns = [c for c in reader.connections if opts.topics is None or c.topic in opts.topics]
        missing = sorted(set(opts.topics or ()) - {c.topic for c in conns})
        if missing:
            raise BagError(f"topics not in bag {path}: {', '.join(missing)}; it has "
                           f"{', '.join(sorted({c.topic for c in reader.connections}))}")
        if not conns:
            raise BagError(f"bag {path} has no messages to play")
        return _play(reader, conns, opts)
    finally:
        reader.close()


def _play(reader: object, conns: list, opts: PlayOptions) -> int:
    count = 0
    stop = threading.Event()
    with ros_node("depth_anything_bag_play") as node:
        publishers = {}
        for conn in conns:
            latched = any(q.durability == QosDurability.TRANSIENT_LOCAL
                          for q in getattr(conn.ext, "offered_qos_profiles", None) or [])
            if conn.topic not in publishers:
                publishers[conn.topic] = node.create_publisher(
                    message_class(conn.msgtype), conn.topic, qos(opts.reliable, transient_local=latched))
        t0 = next(iter(reader.messages(connections=conns)))[1]
        clock = [BagClock(t0, opts.rate)]
        clock_thread = None
        if opts.clock_hz > 0:
            clock_pub = node.create_publisher(message_class(messages.CLOCK), CLOCK_TOPIC, qos(True, depth=10))
        time.sleep(opts.delay)
        try:
            while True:
                clock[0] = BagClock(t0, opts.rate)
                if opts.clock_hz > 0 and clock_thread is None:
                    clock_thread = threading.Thread(target=_clock_loop, args=(clock_pub, clock, opts.clock_hz, stop),
                                                    daemon=True)
                    clock_thread.start()
                for conn, log_time, raw in reader.messages(connections=conns):
                    delay = clock[0].wall_at(log_time) - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    publishers[conn.topic].publish(bytes(raw))
                    count += 1
                if not opts.loop:
                    break
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        finally:
            stop.set()
            if clock_thread is not None:
                clock_thread.join(timeout=1.0)
    return count
