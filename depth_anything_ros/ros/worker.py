"""The node's processing thread: take the newest frame of every camera, run the pipeline, publish the results.

Owns nothing the node configures: it reads the node's cameras, run-time parameters, logger and clock. Every
problem of a frame is reported for its camera only; an exception that escapes anyway ends the thread with a
FATAL log line, and the node's diagnostics go ERROR while it is not alive.
"""

from __future__ import annotations

import threading
import time

from rclpy.time import Time

from depth_anything_ros.frame.frame_io import INTRINSIC_OUTPUTS, FrameInput, FrameResult
from depth_anything_ros.frame.image_codec import ImageDecodeError
from depth_anything_ros.frame.pipeline import FramePipeline
from depth_anything_ros.ros import diagnostics as node_diagnostics
from depth_anything_ros.ros import messages as ros_messages
from depth_anything_ros.ros import params as node_params
from depth_anything_ros.ros import scale as node_scale
from depth_anything_ros.ros.camera import CAMERA_INFO_GRACE_S, Camera, Frame
from depth_anything_ros.ros.frame_slot import LatestFrameSlots
from depth_anything_ros.ros.stats import WindowStats

ERROR_LOG_PERIOD_S = 10.0  # one log line per error kind, repeated at most this often


class FrameWorker:
    """One thread that turns the cameras' pending frames into published outputs."""

    def __init__(self, node, pipeline: FramePipeline, slots: LatestFrameSlots, cameras: list[Camera],
                 runtime: dict, stats: WindowStats):
        self._node, self._pipeline, self._slots, self._cameras = node, pipeline, slots, cameras
        self._runtime, self._stats = runtime, stats  # the node's live run-time parameter values
        self._stop = threading.Event()
        self._warm: set[tuple[int, int, int]] = set()  # (width, height, batch) warmed up
        self._error_logged: dict[str, float] = {}
        self.error = ""  # why the thread ended, "" while it runs or after a clean stop
        self._thread = threading.Thread(target=self._work, name="depth_anything_worker", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop after the current batch and wait for it (the model is never left mid-call)."""
        self._stop.set()
        self._thread.join(timeout=1.0)
        if self._thread.is_alive():
            self._node.get_logger().info("waiting for the inference in progress to finish")
            self._thread.join()

    def is_alive(self) -> bool:
        """Return True while the thread runs."""
        return self._thread.is_alive()

    def _work(self) -> None:
        """Warm up new image sizes, take the pending frames of all cameras, process, publish; until stopped."""
        try:
            while not self._stop.is_set():
                self._warm_up()
                batch = self._slots.take(timeout=0.2)
                if batch and not self._stop.is_set():
                    self._process([(self._cameras[i], frame) for i, frame in batch])
        except BaseException as exc:  # noqa: BLE001 - recorded so the diagnostics say the worker is gone
            if not self._node.context.ok():
                return  # SIGINT shut the context down while this thread used a publisher; main() stops us next
            self.error = f"{type(exc).__name__}: {exc}"
            self._node.get_logger().fatal(f"processing thread stopped: {self.error}; nothing is processed until "
                                          "the node is deactivated and activated again")
            raise

    def _warm_up(self) -> None:
        """Compile (and run once) the network for every new camera size, at the batch sizes its cameras imply."""
        est = self._pipeline.estimator
        if not est.compiled:
            return
        sizes = [c.image_size for c in self._cameras if c.image_size is not None]
        wanted = {(w, h, batch) for w, h in sizes for batch in (1, sizes.count((w, h)))}
        for width, height, batch in sorted(wanted - self._warm):
            self._warm.add((width, height, batch))
            start = time.monotonic()
            try:
                est.warmup(height, width, batch)
            except Exception as exc:  # noqa: BLE001 - a failed warm-up is logged; the frame path reports too
                self._node.get_logger().error(f"warm-up for {width}x{height} images, batch {batch}, failed: "
                                              f"{type(exc).__name__}: {exc}")
                continue
            self._node.get_logger().info(f"warmed up the compiled network for {width}x{height} images, batch "
                                         f"{batch}, in {time.monotonic() - start:.1f} s")

    def _process(self, batch: list[tuple[Camera, Frame]]) -> None:
        """Run one batch of frames (one per camera) through the pipeline and publish what each produced."""
        est = self._pipeline.estimator
        inputs = []
        for cam, frame in batch:
            stamp_ns = Time.from_msg(frame.msg.header.stamp).nanoseconds
            inputs.append(FrameInput(camera=cam.label, message=frame.msg, camera_info=self._camera_info(cam, frame),
                                     outputs=self._outputs(cam), stamp=stamp_ns * 1e-9,
                                     reference=self._reference(cam, stamp_ns)))
        compiled = len(est.compiled_shapes)
        results = self._pipeline.run(inputs, node_params.frame_options(self._runtime))
        if len(est.compiled_shapes) > compiled:
            self._node.get_logger().info(f"compiled the network for input shape {est.compiled_shapes[-1]} "
                                         "(new image size or batch); this frame waited for it")
        for (cam, frame), result in zip(batch, results, strict=True):
            if self._stop.is_set():
                return
            for problem in result.problems:
                self._report(cam, problem.text())
            if result.restart is not None:
                self._node.get_logger().warning(f"{cam.label}: {result.restart}")
            self._scale_events(cam, result)
            try:
                self._publish(cam, frame, result)
            except Exception as exc:  # noqa: BLE001 - one camera's failure never costs the others their outputs
                if not self._node.context.ok():
                    raise  # the context is gone: _work ends quietly
                self._report(cam, f"publishing failed: {type(exc).__name__}: {exc}")

    def _reference(self, cam: Camera, stamp_ns: int):
        """Return the reference depth (h, w) paired with a frame in reference mode, else None (a bad one reported)."""
        if self._runtime["scale.mode"] != "reference":
            return None
        try:
            return node_scale.reference_for(cam.references, stamp_ns, self._runtime["scale.max_stamp_diff"])
        except ImageDecodeError as exc:
            self._report(cam, f"reference depth unusable: {exc}")
            return None

    def _scale_events(self, cam: Camera, result: FrameResult) -> None:
        """Keep the camera's scale state for diagnostics and log its changes (stale, recovered, rate-limited)."""
        cam.scale_state = result.scale
        if result.scale is None:
            return
        logger = self._node.get_logger()
        for level, text in cam.scale_health.events(result.scale, self._runtime["scale.timeout"], time.monotonic()):
            if level == "warning":  # one call site per severity: rclpy refuses to change it at a call site
                logger.warning(f"{cam.label}: {text}")
            else:
                logger.info(f"{cam.label}: {text}")

    def _outputs(self, cam: Camera) -> tuple[str, ...]:
        """Return the outputs to compute for a camera's frame: depth always, the others while enabled and heard."""
        rt = self._runtime
        outputs = ["depth", "camera_info"]
        if rt["cloud.enabled"] and cam.points_pub.get_subscription_count() > 0:
            outputs.append("points")
        if rt["colored.enabled"] and cam.colored_pub.get_subscription_count() > 0:
            outputs.append("colored")
        if rt["scan.enabled"] and cam.scan_pub.get_subscription_count() > 0:
            outputs.append("scan")
        if rt["confidence.enabled"] and cam.confidence_pub.get_subscription_count() > 0:
            outputs.append("confidence")
        if not len(cam.infos) and not self._fallback_fov(cam):
            outputs = [o for o in outputs if o not in INTRINSIC_OUTPUTS]
        return tuple(outputs)

    def _camera_info(self, cam: Camera, frame: Frame):
        """Return the camera_info paired with the frame by stamp, the FOV fallback pinhole, or None."""
        size = (frame.msg.width, frame.msg.height) if hasattr(frame.msg, "width") else None
        return cam.camera_info_for(Time.from_msg(frame.msg.header.stamp).nanoseconds, size,
                                   self._runtime["camera.fallback_fov_deg"], time.monotonic())

    def _fallback_fov(self, cam: Camera) -> bool:
        """Return True when the FOV fallback is due and on; warn once when camera_info is overdue."""
        if not cam.fallback_due(time.monotonic()):
            return False
        fov = self._runtime["camera.fallback_fov_deg"]
        if not cam.warned_no_info:
            cam.warned_no_info = True
            topic = self._node.resolve_topic_name(node_params.camera_topic(cam.namespace, "camera_info"))
            if fov > 0:
                then = f"using an ideal pinhole with a {fov} degree field of view (camera.fallback_fov_deg)"
            elif self._pipeline.estimator.needs_focal:
                then = ("publishing nothing: the model's metric depth needs the focal length; set "
                        "camera.fallback_fov_deg to assume a field of view")
            else:
                then = "publishing depth only; set camera.fallback_fov_deg for a cloud without camera_info"
            self._node.get_logger().warning(f"no camera_info on {topic} after {CAMERA_INFO_GRACE_S:.0f} s: {then}")
        return fov > 0

    def _publish(self, cam: Camera, frame: Frame, result: FrameResult) -> None:
        """Publish what the pipeline produced for one frame, each with the input image's header."""
        header = frame.msg.header
        t0 = time.perf_counter()
        msgs = ((cam.info_pub, result.camera_info and ros_messages.camera_info_msg(header, result.camera_info)),
                (cam.depth_pub, result.depth is not None and ros_messages.depth_msg(header, result.depth)),
                (cam.points_pub, result.cloud and ros_messages.cloud_msg(header, result.cloud)),
                (cam.colored_pub, result.colored is not None and ros_messages.rgb_msg(header, result.colored)),
                (cam.scan_pub, result.scan and ros_messages.scan_msg(header, result.scan)),
                (cam.confidence_pub, result.confidence is not None and ros_messages.depth_msg(header,
                                                                                              result.confidence)),
                (cam.scale_pub, result.depth is not None and node_scale.scale_msg(header, result.scale,
                                                                                  self._runtime["depth.scale"])))
        if self._stop.is_set():
            return
        published = 0
        for pub, msg in msgs:
            if msg:
                pub.publish(msg)
                published += 1
        for stage, seconds in result.seconds.items():
            self._stats.add(stage, seconds)
        self._stats.add("publish", time.perf_counter() - t0)
        if not published:
            return
        latency = node_diagnostics.stamp_latency(self._node.get_clock().now().nanoseconds,
                                                 Time.from_msg(header.stamp).nanoseconds)
        if latency.problem and not cam.stamp_problem:
            self._node.get_logger().warning(f"{cam.label}: {latency.problem}; latency is not reported")
        cam.stamp_problem = latency.problem
        if latency.seconds is not None:
            cam.stats.add("latency", latency.seconds)
        cam.stats.count("out")

    def _report(self, cam: Camera, message: str) -> None:
        """Record a frame problem for diagnostics; log it once, then at most every ERROR_LOG_PERIOD_S."""
        now = time.monotonic()
        cam.report(message, now)
        key = f"{cam.label}: {message}"
        last = self._error_logged.get(key)
        if last is None or now - last >= ERROR_LOG_PERIOD_S:
            self._error_logged[key] = now
            self._node.get_logger().error(f"{key} (repeats logged every {ERROR_LOG_PERIOD_S:.0f} s)")
