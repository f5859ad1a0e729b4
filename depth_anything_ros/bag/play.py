"""`bag play`: publish a bag's serialized messages with their recorded timing, and /clock with the bag time.

Messages are published as the CDR bytes stored in the bag (rclpy publishes bytes as serialized messages), so every
message type the ROS environment has installed works and header stamps are exactly the recorded ones.

Nothing is lost at either end: the first message waits until the expected subscribers are matched (`expect`, else
one per topic within `delay`), and the player exits only when every reliable subscriber has acknowledged every
message (bounded by `ack_timeout`), since destroying a publisher drops what is still in flight.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException
from rosbags.interfaces import QosDurability

from depth_anything_ros.bag import bagfile, messages
from depth_anything_ros.bag.bagfile import BagError
from depth_anything_ros.bag.rosgraph import message_class, qos, ros_node

CLOCK_TOPIC = "/clock"
POLL_S = 0.02  # how often the subscriber and acknowledgement waits look again
PROGRESS_S = 5.0  # a waiting line on stderr this often while --expect'ed subscribers are missing


@dataclass
class PlayOptions:
    """How to play."""

    rate: float = 1.0
    loop: bool = False
    clock_hz: float = 0.0  # publish /clock at this rate; 0 = no clock
    topics: list[str] | None = None
    delay: float = 1.0  # without `expect`: the longest wait for a matched subscriber on every played topic
    reliable: bool = True
    expect: dict[str, int] = field(default_factory=dict)  # topic -> matched subscribers to wait for, no time limit
    ack_timeout: float = 10.0  # at the end, the longest wait for reliable subscribers to acknowledge everything


def parse_expect(values: list[str]) -> dict[str, int]:
    """Return topic -> count of `--expect TOPIC[:N]` values (N 1 when left out); BagError naming a bad one."""
    expect: dict[str, int] = {}
    for value in values:
        topic, sep, count = value.rpartition(":")
        if not sep:
            topic, count = value, "1"
        if not topic or not count.isdigit() or int(count) < 1:
            raise BagError(f"--expect {value!r}: expected TOPIC or TOPIC:N with N a positive whole number")
        topic = topic if topic.startswith("/") else f"/{topic}"
        expect[topic] = max(expect.get(topic, 0), int(count))
    return expect


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
    if opts.delay < 0:
        raise BagError(f"--delay must not be negative, got {opts.delay}")
    reader = bagfile.open_reader(path)
    try:
        conns = [c for c in reader.connections if opts.topics is None or c.topic in opts.topics]
        missing = sorted(set(opts.topics or ()) - {c.topic for c in conns})
        if missing:
            raise BagError(f"topics not in bag {path}: {', '.join(missing)}; it has "
                           f"{', '.join(sorted({c.topic for c in reader.connections}))}")
        if not conns:
            raise BagError(f"bag {path} has no messages to play")
        published = {c.topic for c in conns} | ({CLOCK_TOPIC} if opts.clock_hz > 0 else set())
        unknown = sorted(set(opts.expect) - published)
        if unknown:
            raise BagError(f"--expect {', '.join(unknown)}: not published by this play; it publishes "
                           f"{', '.join(sorted(published))}")
        return _play(reader, conns, opts)
    finally:
        reader.close()


def _wait_for_subscribers(publishers: dict[str, object], opts: PlayOptions) -> None:
    """Wait until the expected subscribers are matched (no time limit), else up to opts.delay for one per topic."""
    def short() -> dict[str, tuple[int, int]]:
        wanted = opts.expect or dict.fromkeys((t for t in publishers if t != CLOCK_TOPIC), 1)
        counts = {t: publishers[t].get_subscription_count() for t in wanted}
        return {t: (counts[t], n) for t, n in wanted.items() if counts[t] < n}

    start = time.monotonic()
    next_report = start + PROGRESS_S
    while missing := short():
        now = time.monotonic()
        if not opts.expect and now - start >= opts.delay:
            print(f"warning: no subscriber on {', '.join(missing)} after --delay {opts.delay:g} s; publishing "
                  "anyway (--expect TOPIC:N waits for them)", file=sys.stderr, flush=True)
            return
        if opts.expect and now >= next_report:
            print("waiting for subscribers (--expect): " + ", ".join(f"{t} {have} of {n}"
                                                                     for t, (have, n) in missing.items()),
                  file=sys.stderr, flush=True)
            next_report = now + PROGRESS_S
        time.sleep(POLL_S)


def _wait_for_acks(publishers: dict[str, object], timeout: float) -> list[str]:
    """Wait until every reliable subscriber acknowledged every message; return the topics still unacknowledged."""
    deadline = time.monotonic() + timeout
    waiting = list(publishers)
    while waiting:
        # Short waits, so Ctrl-C is handled between them.
        waiting = [t for t in waiting if not publishers[t].wait_for_all_acked(Duration(seconds=POLL_S))]
        if time.monotonic() >= deadline:
            break
    return waiting


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
            publishers[CLOCK_TOPIC] = node.create_publisher(message_class(messages.CLOCK), CLOCK_TOPIC,
                                                            qos(True, depth=10))
        finished = False
        try:
            _wait_for_subscribers(publishers, opts)
            while True:
                clock[0] = BagClock(t0, opts.rate)
                if opts.clock_hz > 0 and clock_thread is None:
                    clock_thread = threading.Thread(target=_clock_loop, daemon=True,
                                                    args=(publishers[CLOCK_TOPIC], clock, opts.clock_hz, stop))
                    clock_thread.start()
                for conn, log_time, raw in reader.messages(connections=conns):
                    delay = clock[0].wall_at(log_time) - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    publishers[conn.topic].publish(bytes(raw))
                    count += 1
                if not opts.loop:
                    break
            finished = True
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        finally:
            stop.set()
            if clock_thread is not None:
                clock_thread.join(timeout=1.0)
        if finished:
            try:
                unacked = _wait_for_acks(publishers, opts.ack_timeout)
            except (KeyboardInterrupt, ExternalShutdownException):
                unacked = []
            if unacked:
                print(f"warning: not every subscriber acknowledged every message within {opts.ack_timeout:g} s "
                      f"on {', '.join(unacked)}; they may have missed the last ones", file=sys.stderr)
    return count
