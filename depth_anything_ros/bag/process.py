"""`bag process`: run the model over a bag's images and write a new bag with depth, camera_info, points and colour.

Outputs follow the node's topic contract under the image topic's namespace (/camera/image -> /camera/depth,
/camera/depth/camera_info, /camera/points, /camera/depth/colored), carry the input image's header and are logged
at the input image's log time. The conversions are the node's: image_codec, camera.Intrinsics, geometry.ray_grid,
geometry.PointCloudBuilder and colorize.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from depth_anything_ros import image_codec
from depth_anything_ros.bag import bagfile, messages
from depth_anything_ros.bag.bagfile import BagError
from depth_anything_ros.bag.frames import Frame, FrameBatcher, decode_frame, estimate
from depth_anything_ros.bag.progress import Progress
from depth_anything_ros.camera import Intrinsics
from depth_anything_ros.colorize import colorize, colormap_lut
from depth_anything_ros.geometry import PointCloudBuilder, ray_grid
from depth_anything_ros.preprocess import to_rgb8

OUTPUTS = ("depth", "camera_info", "points", "colored")


@dataclass
class ProcessOptions:
    """What `bag process` writes and how; defaults equal the node's parameters."""

    image_topic: str | None = None
    camera_info_topic: str | None = None
    outputs: tuple[str, ...] = OUTPUTS
    storage: str = "mcap"
    batch: int = 1
    depth_scale: float = 1.0
    stride: int = 1
    min_depth: float = 0.0
    max_depth: float = 0.0  # cloud range limit; 0 = none
    organized: bool = True
    color: bool = True
    colormap: str = "turbo"
    fov_deg: float = 0.0  # ideal pinhole when the bag has no camera_info; 0 = none (error)
    undistort: bool = True
    progress: bool = True


@dataclass
class ProcessSummary:
    """Counts and timing of one run."""

    input: Path
    output: Path
    image_topic: str
    frames_total: int
    frames_done: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    topic_counts: dict[str, int] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        """Processed frames per second of wall time."""
        return self.frames_done / self.seconds if self.seconds > 0 else 0.0

    def text(self) -> str:
        """Human-readable summary."""
        state = "INTERRUPTED, the bag holds what was done" if self.interrupted else "done"
        lines = [f"{state}: {self.frames_done}/{self.frames_total} frames of {self.image_topic} in "
                 f"{self.seconds:.1f} s ({self.fps:.2f} frames/s)", f"output bag: {self.output}"]
        lines += [f"  {topic}: {count} messages" for topic, count in self.topic_counts.items()]
        return "\n".join(lines)


def output_topics(image_topic: str) -> dict[str, str]:
    """Output role -> topic under the image topic's namespace."""
    ns = bagfile.namespace_of(image_topic)
    return {"depth": f"{ns}/depth", "camera_info": f"{ns}/depth/camera_info", "points": f"{ns}/points",
            "colored": f"{ns}/depth/colored"}


def pick_camera_info_topic(reader: object, requested: str | None, image_topic: str) -> str | None:
    """Return the requested CameraInfo topic, else <ns>/camera_info, else the only one; None if there is none."""
    infos = bagfile.topics_of_type(reader, (messages.CAMERA_INFO,))
    if requested is None:
        if not infos:
            return None
        sibling = f"{bagfile.namespace_of(image_topic)}/camera_info"
        if sibling in infos:
            return sibling
    return bagfile.pick_topic(reader, requested, (messages.CAMERA_INFO,), "camera_info", "--camera-info-topic")


class CameraInfoTable:
    """A bag's CameraInfo messages by header stamp: the one of an image's stamp, else the latest before it."""

    def __init__(self, reader: object, topic: str | None):
        self.stamps: list[int] = []
        self.msgs: list[object] = []
        if topic is None:
            return
        conns = [c for c in reader.connections if c.topic == topic]
        by_stamp = {}
        for conn, _, raw in reader.messages(connections=conns):
            msg = messages.deserialize(raw, conn.msgtype)
            by_stamp[messages.stamp_ns(msg.header)] = msg
        self.stamps = sorted(by_stamp)
        self.msgs = [by_stamp[s] for s in self.stamps]

    def __bool__(self) -> bool:
        return bool(self.stamps)

    def lookup(self, stamp: int) -> object:
        """CameraInfo for an image stamp (ns)."""
        i = bisect.bisect_right(self.stamps, stamp)
        return self.msgs[max(i - 1, 0)]


def rgb_of(frame: Frame) -> np.ndarray:
    """(H,W,3) uint8 RGB of a decoded frame (the estimator's colour conversion), for the cloud's colour field."""
    return to_rgb8(torch.from_numpy(np.array(frame.pixels))[None], frame.encoding)[0].permute(1, 2, 0).numpy()


class FrameWriter:
    """Turns (frame, depth) into the output messages and writes them to the bag."""

    def __init__(self, writer: object, image_topic: str, opts: ProcessOptions, infos: CameraInfoTable,
                 max_depth: float):
        self.writer, self.opts, self.infos = writer, opts, infos
        topics = output_topics(image_topic)
        types = {"depth": messages.IMAGE, "camera_info": messages.CAMERA_INFO, "points": messages.POINT_CLOUD2,
                 "colored": messages.IMAGE}
        self.conns = {role: bagfile.add_topic(writer, topics[role], types[role]) for role in opts.outputs}
        self.builder = PointCloudBuilder()
        self.lut = colormap_lut(opts.colormap)
        self.colour_range = (opts.min_depth, opts.max_depth if opts.max_depth > 0 else max_depth)
        self._rays: dict[Intrinsics, torch.Tensor] = {}

    def intrinsics(self, frame: Frame) -> tuple[Intrinsics, object | None]:
        """Intrinsics of the frame's size and the CameraInfo they come from (None for the field-of-view fallback)."""
        height, width = frame.pixels.shape[:2]
        if not self.infos:
            return Intrinsics.from_fov(width, height, self.opts.fov_deg), None
        info = self.infos.lookup(frame.stamp)
        try:
            return Intrinsics.from_camera_info(info).scaled_to(width, height), info
        except ValueError as exc:
            raise BagError(f"camera_info for the image at stamp {frame.stamp * 1e-9:.9f} s: {exc}") from exc

    def rays(self, intr: Intrinsics) -> torch.Tensor:
        """Return the (H,W,3) ray grid of intrinsics, cached."""
        if intr not in self._rays:
            try:
                self._rays[intr] = torch.from_numpy(ray_grid(intr, self.opts.undistort))
            except ValueError as exc:
                raise BagError(f"camera_info: {exc}") from exc
        return self._rays[intr]

    def write(self, frame: Frame, depth: np.ndarray) -> None:
        """Write every selected output of one frame: depth (H,W) metres."""
        hdr, t, opts = frame.header, frame.log_time, self.opts
        depth_t = torch.from_numpy(depth)
        out = {}
        if "depth" in self.conns:
            out["depth"] = messages.image(hdr, image_codec.depth_image_fields(depth))
        if "camera_info" in self.conns or "points" in self.conns:
            intr, info = self.intrinsics(frame)
            if "camera_info" in self.conns:
                same_size = info is not None and (int(info.width), int(info.height)) == (intr.width, intr.height)
                out["camera_info"] = (messages.with_header(info, hdr) if same_size
                                      else messages.camera_info(hdr, intr))
            if "points" in self.conns:
                rgb = torch.from_numpy(rgb_of(frame)) if opts.color else None
                cloud = self.builder.build(depth_t, self.rays(intr), rgb, stride=opts.stride,
                                           min_depth=opts.min_depth,
                                           max_depth=opts.max_depth if opts.max_depth > 0 else math.inf,
                                           organized=opts.organized)
                out["points"] = messages.point_cloud(hdr, cloud)
        if "colored" in self.conns:
            colours = colorize(depth_t, *self.colour_range, self.lut).numpy()
            out["colored"] = messages.image(hdr, image_codec.rgb_image_fields(colours))
        for role, msg in out.items():
            self.writer.write(self.conns[role], t, messages.serialize(msg))


@contextlib.contextmanager
def stop_on_sigint():
    """Yield an Event set by the first Ctrl-C (the run then stops after the current batch); the second aborts."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nCtrl-C: stopping after the current batch and closing the bag (Ctrl-C again to abort now)",
              file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _check_options(opts: ProcessOptions) -> None:
    unknown = [o for o in opts.outputs if o not in OUTPUTS]
    if unknown or not opts.outputs:
        raise BagError(f"unknown output(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(OUTPUTS)}")
    if opts.stride < 1 or opts.batch < 1:
        raise BagError(f"--stride and --batch must be at least 1, got {opts.stride} and {opts.batch}")
    if opts.max_depth > 0 and opts.min_depth >= opts.max_depth:
        raise BagError(f"--min-depth {opts.min_depth} must be below --max-depth-cloud {opts.max_depth}")
    if opts.depth_scale <= 0:
        raise BagError(f"--depth-scale must be positive, got {opts.depth_scale}")
    try:
        colormap_lut(opts.colormap)
    except ValueError as exc:
        raise BagError(str(exc)) from exc


def process_bag(src: str | Path, dst: str | Path, estimator: object, opts: ProcessOptions) -> ProcessSummary:
    """Copy bag src to a new bag dst adding the model's outputs; returns the summary (also when interrupted)."""
    _check_options(opts)
    reader = bagfile.open_reader(src)
    try:
        image_topic = bagfile.pick_image_topic(reader, opts.image_topic)
        info_topic = pick_camera_info_topic(reader, opts.camera_info_topic, image_topic)
        needs_intrinsics = {"camera_info", "points"} & set(opts.outputs)
        if info_topic is None and needs_intrinsics and opts.fov_deg <= 0:
            raise BagError(f"bag {reader.path} has no sensor_msgs/msg/CameraInfo topic, needed for "
                           f"{' and '.join(sorted(needs_intrinsics))}: pass --fov DEG for an ideal pinhole camera, "
                           "or --topics depth,colored")
        topics = output_topics(image_topic)
        clash = [topics[r] for r in opts.outputs if any(c.topic == topics[r] for c in reader.connections)]
        if clash:
            raise BagError(f"input bag already has {', '.join(clash)}; remove them or process another image topic")
        infos = CameraInfoTable(reader, info_topic)
        image_conns = [c for c in reader.connections if c.topic == image_topic]
        summary = ProcessSummary(Path(src), Path(dst), image_topic, sum(c.msgcount for c in image_conns))
        writer = bagfile.open_writer(dst, opts.storage)
        start = time.monotonic()
        try:
            copies = {}
            for conn in reader.connections:
                copied = bagfile.copy_topic(writer, conn)
                if copied is not None:
                    copies[conn.id] = copied
                else:
                    print(f"warning: not copying {conn.topic}: type {conn.msgtype} has no definition in the bag",
                          file=sys.stderr)
            frames = FrameWriter(writer, image_topic, opts, infos, estimator.max_depth or 20.0)
            batcher = FrameBatcher(opts.batch)
            with stop_on_sigint() as stop, Progress(summary.frames_total, "bag process", opts.progress) as bar:

                def run(batch: list[Frame]) -> None:
                    if not batch:
                        return
                    depths = estimate(estimator, batch)
                    if opts.depth_scale != 1.0:
                        depths = depths * np.float32(opts.depth_scale)
                    for frame, depth in zip(batch, depths, strict=True):
                        frames.write(frame, np.ascontiguousarray(depth, dtype=np.float32))
                    summary.frames_done += len(batch)
                    bar.update(len(batch))

                for conn, log_time, raw in reader.messages():
                    if conn.id in copies:
                        writer.write(copies[conn.id], log_time, raw)
                    if conn.topic == image_topic:
                        for batch in batcher.add(decode_frame(raw, conn.msgtype, log_time, image_topic)):
                            run(batch)
                    if stop.is_set():
                        summary.interrupted = True
                        break
                if not summary.interrupted:
                    run(batcher.flush())
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            summary.seconds = time.monotonic() - start
            summary.topic_counts = {c.topic: writer.counts[c.id] for c in writer.connections}
            writer.close()
    finally:
        reader.close()
    return summary
