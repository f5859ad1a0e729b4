"""`bag process`: run the shared FramePipeline over a bag's images and write a new bag with its outputs.

Outputs follow the node's topic contract under the image topic's namespace (/camera/image -> /camera/depth,
/camera/depth/camera_info, /camera/points, /camera/depth/colored, on request /camera/scan and
/camera/depth/confidence), carry the input image's header and are logged
at the input image's log time. Every per-frame decision is the pipeline's (depth_anything_ros.frame.pipeline); this
module reads, pairs each image with its camera_info, writes and counts. A frame's problem skips what it costs,
is reported once per distinct message and counted in the summary; `strict` aborts on the first one instead.
A temporal model (vda-metric-*) streams the topic in message order (`temporal` stream, what the node publishes
live) or runs the official offline windows over it (`temporal` offline, bag/offline.py).
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from depth_anything_ros.bag import bagfile, definitions, messages
from depth_anything_ros.bag.bagfile import BagError
from depth_anything_ros.bag.frames import DEFAULT_OUTPUTS, OUTPUTS, Frame, FrameBatcher, read_frame, stamp_text
from depth_anything_ros.bag.offline import OfflineFeed
from depth_anything_ros.bag.progress import Progress
from depth_anything_ros.bag.references import ReferenceFeed
from depth_anything_ros.frame import image_codec
from depth_anything_ros.frame.camera import CameraInfo, Intrinsics
from depth_anything_ros.frame.frame_io import INTRINSIC_OUTPUTS, FrameInput, FrameOptions
from depth_anything_ros.frame.pipeline import FramePipeline
from depth_anything_ros.frame.provenance import model_provenance
from depth_anything_ros.frame.stamped import StampedHistory

OUTPUT_TYPES = {"depth": messages.IMAGE, "camera_info": messages.CAMERA_INFO, "points": messages.POINT_CLOUD2,
                "colored": messages.IMAGE, "scan": messages.LASER_SCAN, "confidence": messages.IMAGE}
MODEL_KEY = "depth_anything_ros.model"  # custom_data of the output bag: the model that made its depth (JSON)


@dataclass
class ProcessOptions:
    """What `bag process` writes and how; `frame` holds the per-frame options (defaults equal the node's)."""

    image_topic: str | None = None
    camera_info_topic: str | None = None
    output_namespace: str | None = None  # namespace of the outputs; None: the image topic's
    outputs: tuple[str, ...] = DEFAULT_OUTPUTS
    storage: str = "mcap"
    batch: int = 1
    frame: FrameOptions = field(default_factory=FrameOptions)
    fov_deg: float = 0.0  # ideal pinhole when the bag has no camera_info; 0 = none (error)
    strict: bool = False  # abort on the first frame problem instead of skipping what it costs
    scale_reference: str | None = None  # reference depth topic for frame.scale mode reference
    max_stamp_diff: float = 0.05  # seconds between an image and its reference depth
    progress: bool = True
    temporal: str = "stream"  # temporal models: stream (as the node) or offline (official windows)


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
    skipped: dict[str, int] = field(default_factory=dict)  # output -> frames it was not produced for
    converted: dict[str, str] = field(default_factory=dict)  # copied topic -> how its definition was converted
    kept: dict[str, str] = field(default_factory=dict)  # copied topic -> why it keeps the input bag's definition
    not_copied: dict[str, str] = field(default_factory=dict)  # input topic -> why the output lacks it
    scale_frames: int = 0  # frames processed in a scale mode other than fixed
    scale_fits: int = 0  # of them, frames with a good fit of their own (reference or floor)
    last_scale: float | None = None  # the scale applied to the last such frame

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
        lines += [f"  skipped: {output} of {count} frame(s) (reasons above)" for output, count in self.skipped.items()]
        lines += [f"  {topic}: {note}" for topic, note in {**self.converted, **self.kept}.items()]
        lines += [f"  not copied: {topic} ({why})" for topic, why in self.not_copied.items()]
        if self.scale_frames:
            lines.append(f"  metric scale: {self.scale_fits} of {self.scale_frames} frames had a fit of their own "
                         f"(the others kept the last scale); last scale applied {self.last_scale:.4f}")
        return "\n".join(lines)


def output_topics(image_topic: str, namespace: str | None = None) -> dict[str, str]:
    """Output role -> topic under `namespace` (checked), by default the image topic's namespace."""
    ns = bagfile.namespace_of(image_topic) if namespace is None else bagfile.check_namespace(namespace)
    return {"depth": f"{ns}/depth", "camera_info": f"{ns}/depth/camera_info", "points": f"{ns}/points",
            "colored": f"{ns}/depth/colored", "scan": f"{ns}/scan", "confidence": f"{ns}/depth/confidence"}


def _first_message(reader: object, topic: str) -> object | None:
    """Return the first message of a topic, deserialized, or None when it has none."""
    conns = [c for c in reader.connections if c.topic == topic]
    for conn, _, raw in reader.messages(connections=conns):
        return messages.deserialize(raw, conn.msgtype)
    return None


def _image_geometry(msg: object) -> tuple[tuple[int, int] | None, str]:
    """((width, height) or None when a compressed image cannot be decoded, frame_id) of an image message."""
    size = _image_size(msg)
    if size is None:
        try:
            pixels, _ = image_codec.decode_compressed(msg)
            size = (pixels.shape[1], pixels.shape[0])
        except ValueError:
            size = None
    return size, msg.header.frame_id


def _info_mismatch(info: object | None, size: tuple[int, int] | None, frame_id: str) -> str:
    """Why a CameraInfo (first message of its topic) does not describe an image of size and frame_id, or ''."""
    if info is None:
        return "no messages"
    described = f"{info.width}x{info.height}, frame_id '{info.header.frame_id}'"
    if info.header.frame_id != frame_id:
        return f"{described}: other frame_id"
    if size is not None:
        try:
            Intrinsics.from_camera_info(info).scaled_to(*size)
        except ValueError:
            return f"{described}: size is not the image's or a uniform resize of it"
    return ""


def pick_camera_info_topic(reader: object, requested: str | None, image_topic: str,
                           required: bool = True) -> str | None:
    """Return the CameraInfo topic for the images of image_topic; None if the bag has none.

    The requested topic (checked), else <ns>/camera_info, else the one CameraInfo topic whose first message has
    the first image's frame_id and its size (or one the image is a uniform resize of), as in RealSense bags
    (.../Color_0/image/data with .../Color_0/info/camera_info); announced on stderr. When none or several
    match: BagError listing the candidates, or with `required` False None and a note listing them.
    """
    infos = bagfile.topics_of_type(reader, (messages.CAMERA_INFO,))
    if requested is not None:
        return bagfile.pick_topic(reader, requested, (messages.CAMERA_INFO,), "camera_info", "--camera-info-topic")
    if not infos:
        return None
    sibling = f"{bagfile.namespace_of(image_topic)}/camera_info"
    if sibling in infos:
        return sibling
    image = _first_message(reader, image_topic)
    if image is None:
        raise BagError(f"image topic {image_topic} has no messages")
    size, frame_id = _image_geometry(image)
    why = {topic: _info_mismatch(_first_message(reader, topic), size, frame_id) for topic in sorted(infos)}
    matches = [topic for topic, reason in why.items() if not reason]
    if len(matches) == 1:
        print(f"note: camera_info of {image_topic} from {matches[0]} (no {sibling}; the only CameraInfo topic "
              f"with the image's frame_id '{frame_id}' and size); choose another with --camera-info-topic",
              file=sys.stderr)
        return matches[0]
    image_text = f"{size[0]}x{size[1]}, frame_id '{frame_id}'" if size else f"frame_id '{frame_id}'"
    if matches:
        problem = f"several CameraInfo topics match {image_topic} ({image_text}): {', '.join(matches)}"
    else:
        problem = (f"no CameraInfo topic matches {image_topic} ({image_text}): "
                   + "; ".join(f"{topic} ({reason})" for topic, reason in why.items()))
    if not required:
        print(f"note: no camera_info used: {problem}; choose one with --camera-info-topic", file=sys.stderr)
        return None
    raise BagError(f"bag {reader.path} has no {sibling} and {problem}; choose one with --camera-info-topic"
                   + ("" if matches else ", or pass --fov DEG for an ideal pinhole camera"))


def camera_info_history(reader: object, topic: str | None) -> StampedHistory:
    """Every CameraInfo of `topic` by header stamp (paired as the node does: StampedHistory.latest_at)."""
    history = StampedHistory()
    if topic is not None:
        conns = [c for c in reader.connections if c.topic == topic]
        for conn, _, raw in reader.messages(connections=conns):
            msg = messages.deserialize(raw, conn.msgtype)
            history.add(messages.stamp_ns(msg.header), msg)
    return history


class FrameWriter:
    """Runs batches of frames through the pipeline and writes their outputs; reports and counts problems."""

    def __init__(self, writer: object, image_topic: str, opts: ProcessOptions, pipeline: FramePipeline,
                 infos: StampedHistory, summary: ProcessSummary, references: ReferenceFeed):
        self.writer, self.opts, self.pipeline, self.infos, self.summary = writer, opts, pipeline, infos, summary
        self.references = references
        self.image_topic = image_topic
        topics = output_topics(image_topic, opts.output_namespace)
        self.conns = {role: bagfile.add_topic(writer, topics[role], OUTPUT_TYPES[role]) for role in opts.outputs}
        self._reported: set[str] = set()
        self.offline = OfflineFeed(pipeline.estimator) if opts.temporal == "offline" else None

    def camera_info_of(self, frame: Frame):
        """Return the camera_info paired with a frame, the --fov pinhole when the bag has none, or None."""
        info = self.infos.latest_at(frame.stamp)
        if info is None and self.opts.fov_deg > 0:
            size = _image_size(frame.message)
            if size is not None:
                info = CameraInfo.from_fov(size[0], size[1], self.opts.fov_deg)
        return info

    def write(self, batch: list[Frame]) -> None:
        """Process and write every selected output of a batch of frames (offline: of those whose depth is final)."""
        self._write(self.offline.add(batch) if self.offline is not None else [(f, None) for f in batch])

    def finish(self) -> None:
        """Write the frames the offline windows still hold."""
        if self.offline is not None:
            self._write(self.offline.finish())

    def _write(self, pairs: list) -> None:
        batch = [frame for frame, _ in pairs]
        inputs = [FrameInput(camera=self.image_topic, message=f.message, camera_info=self.camera_info_of(f),
                             outputs=self.opts.outputs, stamp=f.stamp * 1e-9, depth=depth,
                             reference=self.references.reference_for(f)) for f, depth in pairs]
        for frame, result in zip(batch, self.pipeline.run(inputs, self.opts.frame), strict=True):
            self._report(frame, result)
            if result.scale is not None:
                self.summary.scale_frames += 1
                self.summary.scale_fits += bool(result.scale.fit is not None and result.scale.fit.ok)
                self.summary.last_scale = result.scale.scale
            hdr, out = frame.header, {}
            if result.depth is not None:
                out["depth"] = messages.image(hdr, image_codec.depth_image_fields(result.depth))
            if result.camera_info is not None:
                out["camera_info"] = messages.camera_info(hdr, result.camera_info)
            if result.cloud is not None:
                out["points"] = messages.point_cloud(hdr, result.cloud)
            if result.colored is not None:
                out["colored"] = messages.image(hdr, image_codec.rgb_image_fields(result.colored))
            if result.scan is not None:
                out["scan"] = messages.laser_scan(hdr, result.scan)
            if result.confidence is not None:
                out["confidence"] = messages.image(hdr, image_codec.depth_image_fields(result.confidence))
            for role, msg in out.items():
                self.writer.write(self.conns[role], frame.log_time, messages.serialize(msg))

    def _report(self, frame: Frame, result) -> None:
        for problem in result.problems:
            line = f"{self.image_topic} message at {stamp_text(frame)}: {problem.text()}"
            if self.opts.strict:
                raise BagError(f"{line}; without --strict such frames are skipped and counted")
            for output in problem.skipped:
                self.summary.skipped[output] = self.summary.skipped.get(output, 0) + 1
            if problem.message not in self._reported:
                self._reported.add(problem.message)
                print(f"warning: {line} (reported once; the summary counts every frame)", file=sys.stderr)


def _image_size(msg) -> tuple[int, int] | None:
    """(width, height) of an Image message without decoding; None for a CompressedImage."""
    return (int(msg.width), int(msg.height)) if hasattr(msg, "width") else None


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


def check_options(opts: ProcessOptions) -> None:
    """Raise BagError naming the option (--topics, --batch, --output-namespace) that cannot be used."""
    unknown = [o for o in opts.outputs if o not in OUTPUTS]
    if unknown or not opts.outputs:
        raise BagError(f"unknown output(s) {', '.join(unknown) or '(none)'} in --topics; choose from "
                       f"{', '.join(OUTPUTS)}")
    if opts.temporal not in ("stream", "offline"):
        raise BagError(f"--temporal must be stream or offline, got {opts.temporal!r}")
    if opts.temporal == "offline" and "confidence" in opts.outputs:
        raise BagError("--temporal offline gives no confidence (it needs a mirrored run of every frame): drop "
                       "confidence from --topics, or use --temporal stream")
    if opts.batch < 1:
        raise BagError(f"--batch must be at least 1, got {opts.batch}")
    if opts.output_namespace is not None:
        bagfile.check_namespace(opts.output_namespace)


def process_bag(src: str | Path, dst: str | Path, estimator: object, opts: ProcessOptions) -> ProcessSummary:
    """Copy bag src to a new bag dst adding the model's outputs; returns the summary (also when interrupted)."""
    check_options(opts)
    if opts.temporal == "offline" and not getattr(estimator, "temporal", False):
        raise BagError("--temporal offline needs a temporal model (vda-metric-vits/vitb/vitl); "
                       f"{estimator.checkpoint_path} is not one")
    pipeline = FramePipeline(estimator, allow_relative=opts.frame.scale.mode == "reference")
    reader = bagfile.open_reader(src)
    try:
        image_topic = bagfile.pick_image_topic(reader, opts.image_topic)
        needs_intrinsics = set(INTRINSIC_OUTPUTS) & set(opts.outputs)
        info_topic = pick_camera_info_topic(reader, opts.camera_info_topic, image_topic,
                                            required=bool(needs_intrinsics) and opts.fov_deg <= 0)
        if info_topic is None and needs_intrinsics and opts.fov_deg <= 0:
            raise BagError(f"bag {reader.path} has no sensor_msgs/msg/CameraInfo topic, needed for "
                           f"{' and '.join(sorted(needs_intrinsics))}: pass --fov DEG for an ideal pinhole camera, "
                           "or --topics depth,colored")
        topics = output_topics(image_topic, opts.output_namespace)
        clash = [topics[r] for r in opts.outputs if any(c.topic == topics[r] for c in reader.connections)]
        if clash:
            raise BagError(f"input bag already has {', '.join(clash)}; write the outputs elsewhere with "
                           "--output-namespace NS, or process another image topic")
        plan, not_copied = bagfile.plan_copies(reader, {OUTPUT_TYPES[r] for r in opts.outputs},
                                               (image_topic, info_topic))
        infos = camera_info_history(reader, info_topic)
        image_conns = [c for c in reader.connections if c.topic == image_topic]
        summary = ProcessSummary(Path(src), Path(dst), image_topic, sum(c.msgcount for c in image_conns))
        writer = bagfile.open_writer(dst, opts.storage)
        writer.set_custom_data(MODEL_KEY, json.dumps(model_provenance(estimator)))  # read by bag evaluate
        start = time.monotonic()
        try:
            copies = {c.id: bagfile.copy_topic(writer, c, plan[c.id]) for c in reader.connections if c.id in plan}
            summary.converted = bagfile.definition_notes(reader, plan, definitions.CONVERTED)
            summary.kept = bagfile.definition_notes(reader, plan, definitions.OWN)
            summary.not_copied = not_copied
            for topic, why in not_copied.items():
                print(f"warning: not copying {topic}: {why}", file=sys.stderr)
            if opts.scale_reference is not None:
                bagfile.pick_topic(reader, opts.scale_reference, (messages.IMAGE,), "reference depth",
                                   "--scale-reference")
            references = ReferenceFeed(opts.scale_reference, opts.max_stamp_diff)
            frames = FrameWriter(writer, image_topic, opts, pipeline, infos, summary, references)
            batcher = FrameBatcher(opts.batch)
            with stop_on_sigint() as stop, Progress(summary.frames_total, "bag process", opts.progress) as bar:

                def run(batch: list[Frame]) -> None:
                    if batch:
                        frames.write(batch)
                        summary.frames_done += len(batch)
                        bar.update(len(batch))

                for conn, log_time, raw in reader.messages():
                    if conn.id in copies:
                        writer.write(copies[conn.id], log_time, raw)
                    references.add(conn.topic, conn.msgtype, raw)
                    ready = (references.hold(read_frame(raw, conn.msgtype, log_time)) if conn.topic == image_topic
                             else references.release(log_time))
                    for frame in ready:
                        for batch in batcher.add(frame):
                            run(batch)
                    if stop.is_set():
                        summary.interrupted = True
                        break
                if not summary.interrupted:
                    for frame in references.release(None):
                        for batch in batcher.add(frame):
                            run(batch)
                    run(batcher.flush())
                    frames.finish()
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            summary.seconds = time.monotonic() - start
            summary.topic_counts = {c.topic: writer.counts[c.id] for c in writer.connections}
            writer.close()
    finally:
        reader.close()
    return summary
