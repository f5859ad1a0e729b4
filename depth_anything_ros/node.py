"""DepthAnythingNode: managed lifecycle node wiring camera topics to the DepthEstimator, clouds and diagnostics.

Threads: the executor runs subscriptions, timers and services; subscription callbacks only put the newest frame
of their camera into a LatestFrameSlots; one worker thread takes fair batches, runs the model and publishes.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from depth_anything_ros import node_diagnostics, node_params, ros_adapter
from depth_anything_ros.camera import CameraInfo as CameraInfoFields
from depth_anything_ros.camera import CameraInfoHistory, Intrinsics, IntrinsicsError
from depth_anything_ros.checkpoint import CheckpointError
from depth_anything_ros.colorize import COLORMAPS
from depth_anything_ros.estimator import DepthEstimator
from depth_anything_ros.frame_slot import LatestFrameSlots
from depth_anything_ros.pipeline import FrameInput, FramePipeline
from depth_anything_ros.stats import WindowStats

RCLError = _rclpy.RCLError

try:  # Iron and newer
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks

NODE_NAME = "depth_anything"
CAMERA_INFO_GRACE_S = 3.0  # frames without camera_info for this long: warn once, fall back
NO_INPUT_WARN_S = 3.0  # active without images for this long: check publishers for incompatible QoS
ERROR_LOG_PERIOD_S = 10.0  # one log line per error kind, repeated at most this often
RECENT_ERROR_S = 5.0  # diagnostics stay WARN this long after an error
DIAGNOSTICS_PERIOD_S = 1.0
CAMERA_INFO_HISTORY = 64  # camera_infos kept per camera to pair with images by stamp
OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)


@dataclass
class Frame:
    """One received image message and when it arrived (monotonic seconds)."""

    msg: Image | CompressedImage
    received: float


@dataclass
class Camera:
    """Topics and state of one camera namespace."""

    namespace: str
    label: str
    image_sub: object = None
    info_sub: object = None
    depth_pub: object = None
    info_pub: object = None
    points_pub: object = None
    colored_pub: object = None
    infos: CameraInfoHistory = field(default_factory=lambda: CameraInfoHistory(CAMERA_INFO_HISTORY))
    info_size: tuple[int, int] | None = None  # (width, height) the newest camera_info describes
    first_frame: float | None = None
    warned_no_info: bool = False
    warned_qos: bool = False
    frames_in: int = 0
    last_error: str = ""
    last_error_time: float = -math.inf
    stamp_problem: str = ""  # why this camera's stamps cannot give a latency, "" when they can
    stats: WindowStats = field(default_factory=WindowStats)


class DepthAnythingNode(LifecycleNode):
    """Metric depth, point cloud and colourised depth for one or more cameras from one Depth-Anything-V2 model."""

    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        self._invalid: dict[str, str] = {}  # parameter -> why its startup value was refused
        for spec in node_params.PARAMS:
            self._declare(spec)
        self._runtime = {s.name: self.get_parameter(s.name).value for s in node_params.PARAMS if s.runtime}
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._cameras: list[Camera] = []
        self._slots: LatestFrameSlots | None = None
        self._estimator = None
        self._pipeline: FramePipeline | None = None
        self._worker: threading.Thread | None = None
        self._worker_error = ""
        self._stop = threading.Event()
        self._active = False
        self._activated_at = 0.0
        self._status = "unconfigured"
        self._failure = ""  # reason of the last failed transition, "" after a successful one
        self._error_logged: dict[str, float] = {}
        self._stats = WindowStats()
        self._warm: set[tuple[int, int]] = set()  # (height, width) warmed up since activation
        self._qos_timer = None
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        for reason in self._invalid.values():
            self.get_logger().error(reason)

    # ---------------------------------------------------------------- parameters

    def _declare(self, spec: node_params.ParamSpec) -> None:
        """Declare one parameter; a startup value it refuses is remembered (configure fails) and the default kept."""
        try:
            self.declare_parameter(spec.name, spec.default, spec.descriptor())
        except (InvalidParameterValueException, InvalidParameterTypeException):
            value = self._parameter_overrides[spec.name].value
            self._invalid[spec.name] = (f"invalid parameter {spec.name} = {value!r}: must be "
                                        f"{node_params.allowed(spec)}; configure fails until it is set to a valid "
                                        "value")
            self.declare_parameter(spec.name, spec.default, spec.descriptor(), ignore_override=True)

    def _on_set_parameters(self, params) -> SetParametersResult:
        """Validate a parameter change; run-time parameters apply to the next frame, the others on reconfigure."""
        values = {p.name: p.value for p in params}
        current = {name: self.get_parameter(name).value for name in self._runtime}
        reason = node_params.validate({**current, **values}, COLORMAPS)
        if reason is None:
            try:
                node_params.frame_options({**current, **{k: v for k, v in values.items() if k in current}})
            except ValueError as exc:
                reason = str(exc)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        for name, value in values.items():
            spec = node_params.SPECS.get(name)
            if spec is None:
                continue
            self._invalid.pop(name, None)
            if spec.runtime:
                self._runtime[name] = value
            elif self._status != "unconfigured":
                self.get_logger().info(f"parameter {name} = {value!r} applies on reconfigure "
                                       "(deactivate, cleanup, configure, activate)")
        return SetParametersResult(successful=True)

    def _fail(self, transition: str, reason: str) -> TransitionCallbackReturn:
        """Log a failed transition, show it as ERROR in the diagnostics and return FAILURE."""
        self._failure = f"{transition} failed: {reason}"
        self.get_logger().error(self._failure)
        return TransitionCallbackReturn.FAILURE

    # ---------------------------------------------------------------- lifecycle

    def on_configure(self, state) -> TransitionCallbackReturn:
        """Read parameters and create the subscriptions and publishers of every camera."""
        if self._invalid:
            return self._fail("configure", "; ".join(self._invalid.values()))
        self._config = {spec.name: self.get_parameter(spec.name).value for spec in node_params.PARAMS}
        reason = node_params.validate(self._config, COLORMAPS)
        if reason:
            return self._fail("configure", reason)
        self._runtime = {name: self._config[name] for name in self._runtime}
        reliability = (ReliabilityPolicy.RELIABLE if self._config["qos.reliability"] == "reliable"
                       else ReliabilityPolicy.BEST_EFFORT)
        self._input_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=reliability,
                                     durability=DurabilityPolicy.VOLATILE)
        compressed = self._config["image_transport"] == "compressed"
        namespaces = [node_params.camera_namespace(c) for c in self._config["cameras"]]
        self._cameras = []
        for index, ns in enumerate(namespaces):
            topic = node_params.camera_topic
            image_topic = self.resolve_topic_name(topic(ns, "image"))
            if compressed:
                image_topic += "/compressed"
            cam = Camera(namespace=ns, label=image_topic)
            events = SubscriptionEventCallbacks(incompatible_qos=lambda event, c=cam: self._on_incompatible_qos(c))
            cam.image_sub = self.create_subscription(
                CompressedImage if compressed else Image, image_topic, lambda msg, i=index: self._on_image(i, msg),
                self._input_qos, event_callbacks=events)
            cam.info_sub = self.create_subscription(
                CameraInfo, topic(ns, "camera_info"), lambda msg, c=cam: self._on_camera_info(c, msg), self._input_qos)
            cam.depth_pub = self.create_lifecycle_publisher(Image, topic(ns, "depth"), OUTPUT_QOS)
            cam.info_pub = self.create_lifecycle_publisher(CameraInfo, topic(ns, "depth/camera_info"), OUTPUT_QOS)
            cam.points_pub = self.create_lifecycle_publisher(PointCloud2, topic(ns, "points"), OUTPUT_QOS)
            cam.colored_pub = self.create_lifecycle_publisher(Image, topic(ns, "depth/colored"), OUTPUT_QOS)
            self._cameras.append(cam)
        self._slots = LatestFrameSlots(list(range(len(self._cameras))))
        self._status, self._failure = "inactive", ""
        self.get_logger().info(
            f"configured: {len(self._cameras)} camera(s) ({', '.join(c.label for c in self._cameras)}), "
            f"{self._config['image_transport']} transport, {self._config['qos.reliability']} input QoS")
        return super().on_configure(state)

    def on_activate(self, state) -> TransitionCallbackReturn:
        """Load the model and start the worker; FAILURE with the reason when the model cannot be loaded."""
        cfg = self._config
        start = time.monotonic()
        try:
            self._estimator = DepthEstimator(
                checkpoint=cfg["model.checkpoint"], encoder=None if cfg["model.encoder"] == "auto" else cfg[
                    "model.encoder"], max_depth=cfg["model.max_depth"] or "auto",
                device=cfg["device"], precision=cfg["precision"], input_size=cfg["model.input_size"],
                compile=node_params.compile_mode(cfg["model.compile"]))
            self._pipeline = FramePipeline(self._estimator)
        except (CheckpointError, ValueError, RuntimeError, OSError) as exc:
            self._estimator = self._pipeline = None
            self._status = "model not loaded"
            return self._fail("activate", f"model not loaded, cannot load model '{cfg['model.checkpoint']}': {exc}")
        est = self._estimator
        self.get_logger().info(
            f"model {cfg['model.checkpoint']} ({est.encoder}, max depth {est.max_depth} m) on {est.device} "
            f"{str(est.dtype).replace('torch.', '')}, input size {est.input_size}, loaded in "
            f"{time.monotonic() - start:.1f} s")
        self._warm = set()
        self._stop.clear()
        self._slots.reopen()
        self._active = True
        self._activated_at = time.monotonic()
        for cam in self._cameras:
            cam.first_frame, cam.warned_qos, cam.frames_in = None, False, 0
        self._worker_error = ""
        self._worker = threading.Thread(target=self._work, name="depth_anything_worker", daemon=True)
        self._worker.start()
        self._qos_timer = self.create_timer(1.0, self._check_input)
        self._status, self._failure = "active", ""
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        """Stop processing and free the model (and its GPU memory)."""
        self._stop_processing()
        self._status = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        """Destroy every camera's subscriptions and publishers."""
        self._destroy_cameras()
        self._status, self._failure = "unconfigured", ""
        return super().on_cleanup(state)

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        """Stop processing and release everything."""
        self._stop_processing()
        self._destroy_cameras()
        self._status = "finalized"
        return super().on_shutdown(state)

    def stop(self) -> None:
        """Stop the worker and free the model without a lifecycle transition (process exit after shutdown)."""
        self._stop_processing()

    def _stop_processing(self) -> None:
        """Join the worker (bounded), drop pending frames and free the estimator and the device cache."""
        self._active = False
        self._stop.set()
        if self._slots is not None:
            self._slots.close()
            self._slots.clear()
        if self._worker is not None:
            self._worker.join(timeout=1.0)
            if self._worker.is_alive():  # never leave it inside the model: exiting there aborts the process
                self.get_logger().info("waiting for the inference in progress to finish")
                self._worker.join()
            self._worker = None
        if self._qos_timer is not None:
            self.destroy_timer(self._qos_timer)
            self._qos_timer = None
        if self._estimator is not None:
            cuda = self._estimator.device.type == "cuda"
            self._estimator = self._pipeline = None  # device buffers (rays, clouds) go with the pipeline
            if cuda:
                torch.cuda.empty_cache()

    def _destroy_cameras(self) -> None:
        for cam in self._cameras:
            for sub in (cam.image_sub, cam.info_sub):
                self.destroy_subscription(sub)
            for pub in (cam.depth_pub, cam.info_pub, cam.points_pub, cam.colored_pub):
                self.destroy_lifecycle_publisher(pub)
        self._cameras = []
        self._slots = None

    # ---------------------------------------------------------------- input

    def _on_image(self, index: int, msg) -> None:
        """Keep only the newest frame of camera `index`; the worker does everything else."""
        if not self._active:
            return
        cam = self._cameras[index]
        now = time.monotonic()
        if cam.first_frame is None:
            cam.first_frame = now
        cam.frames_in += 1
        cam.stats.count("in")
        self._slots.put(index, Frame(msg, now))

    def _on_camera_info(self, cam: Camera, msg: CameraInfo) -> None:
        """Keep the camera_info by stamp for the worker to pair with images."""
        cam.infos.add(Time.from_msg(msg.header.stamp).nanoseconds, msg)
        if cam.info_size is None:
            try:
                intr = Intrinsics.from_camera_info(msg)
                cam.info_size = (intr.width, intr.height)
            except IntrinsicsError:
                pass  # reported with the first frame that needs it

    def _on_incompatible_qos(self, cam: Camera) -> None:
        """Warn once, with the fix, when a publisher's QoS cannot reach our image subscription."""
        if not cam.warned_qos:
            cam.warned_qos = True
            self.get_logger().warning(self._qos_advice(cam))

    def _qos_advice(self, cam: Camera) -> str:
        return (f"{cam.label}: a best-effort publisher cannot reach this reliable subscription, no images arrive; "
                "set the parameter qos.reliability: best_effort (config/depth_anything.yaml or "
                "-p qos.reliability:=best_effort)")

    def _check_input(self) -> None:
        """Active without images for a while: look for publishers with incompatible QoS and say how to fix it."""
        if not self._active or time.monotonic() - self._activated_at < NO_INPUT_WARN_S:
            return
        if self._input_qos.reliability != ReliabilityPolicy.RELIABLE:
            return
        for cam in self._cameras:
            if cam.frames_in or cam.warned_qos:
                continue
            publishers = self.get_publishers_info_by_topic(cam.label)
            if any(p.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for p in publishers):
                self._on_incompatible_qos(cam)

    # ---------------------------------------------------------------- worker

    def _work(self) -> None:
        """Worker loop: warm up new image sizes, take the pending frames of all cameras, process, publish."""
        pipeline, slots, cameras = self._pipeline, self._slots, self._cameras
        try:
            while not self._stop.is_set():
                self._warm_up(pipeline.estimator, cameras)
                batch = slots.take(timeout=0.2)
                if batch and not self._stop.is_set():
                    self._process(pipeline, [(cameras[i], frame) for i, frame in batch])
        except BaseException as exc:  # noqa: BLE001 - recorded so the diagnostics say the worker is gone
            self._worker_error = f"{type(exc).__name__}: {exc}"
            self.get_logger().fatal(f"processing thread stopped: {self._worker_error}; nothing is processed until "
                                    "the node is deactivated and activated again")
            raise

    def _warm_up(self, est: DepthEstimator, cameras: list[Camera]) -> None:
        """Compile (and run once) the network for every new camera size, at the batch sizes its cameras imply."""
        if not est.compiled:
            return
        sizes = [c.info_size for c in cameras if c.info_size is not None]
        for width, height in sorted(set(sizes) - {(w, h) for h, w in self._warm}):
            self._warm.add((height, width))
            for batch in sorted({1, sizes.count((width, height))}):
                start = time.monotonic()
                est.warmup(height, width, batch)
                self.get_logger().info(f"warmed up the compiled network for {width}x{height} images, batch {batch}, "
                                       f"in {time.monotonic() - start:.1f} s")

    def _process(self, pipeline: FramePipeline, batch: list[tuple[Camera, Frame]]) -> None:
        """Run one batch of frames (one per camera) through the pipeline and publish what each produced."""
        est, rt = pipeline.estimator, self._runtime
        options = node_params.frame_options(rt)
        inputs = [FrameInput(camera=cam.label, message=frame.msg, camera_info=self._camera_info(cam, frame),
                             outputs=self._outputs(cam, frame)) for cam, frame in batch]
        compiled = len(est.compiled_shapes)
        results = pipeline.run(inputs, options)
        if len(est.compiled_shapes) > compiled:
            self.get_logger().info(f"compiled the network for input shape {est.compiled_shapes[-1]} "
                                   "(new image size or batch); this frame waited for it")
        for (cam, frame), result in zip(batch, results, strict=True):
            if self._stop.is_set():
                return
            for problem in result.problems:
                self._report(cam, problem.text())
            try:
                self._publish(cam, frame, result)
            except RCLError:
                if self.context.ok():
                    raise
                return  # SIGINT shut the context down while we were publishing; main() stops the worker next
            except Exception as exc:  # noqa: BLE001 - one camera's failure never costs the others their outputs
                self._report(cam, f"publishing failed: {type(exc).__name__}: {exc}")

    def _outputs(self, cam: Camera, frame: Frame) -> tuple[str, ...]:
        """Return the outputs to compute for a frame: depth always, the others while enabled and subscribed."""
        rt = self._runtime
        outputs = ["depth", "camera_info"]
        if rt["cloud.enabled"] and cam.points_pub.get_subscription_count() > 0:
            outputs.append("points")
        if rt["colored.enabled"] and cam.colored_pub.get_subscription_count() > 0:
            outputs.append("colored")
        if len(cam.infos) == 0 and not self._fallback_fov(cam):
            outputs = [o for o in outputs if o not in ("camera_info", "points")]
        return tuple(outputs)

    def _camera_info(self, cam: Camera, frame: Frame):
        """Return the camera_info paired with the frame by stamp, the FOV fallback pinhole, or None."""
        info = cam.infos.lookup(Time.from_msg(frame.msg.header.stamp).nanoseconds)
        if info is None and self._fallback_fov(cam) and hasattr(frame.msg, "width"):
            fov = self._runtime["camera.fallback_fov_deg"]
            return CameraInfoFields.from_fov(frame.msg.width, frame.msg.height, fov)
        if info is None and self._fallback_fov(cam):  # compressed: size known after decoding
            return None
        return info

    def _fallback_fov(self, cam: Camera) -> bool:
        """Return True when no camera_info came within the grace period and the FOV fallback is on (warned once)."""
        if len(cam.infos) or cam.first_frame is None or time.monotonic() - cam.first_frame < CAMERA_INFO_GRACE_S:
            return False
        fov = self._runtime["camera.fallback_fov_deg"]
        if not cam.warned_no_info:
            cam.warned_no_info = True
            topic = self.resolve_topic_name(node_params.camera_topic(cam.namespace, "camera_info"))
            then = (f"using an ideal pinhole with a {fov} degree field of view (camera.fallback_fov_deg)" if fov > 0
                    else "publishing depth only; set camera.fallback_fov_deg for a cloud without camera_info")
            self.get_logger().warning(f"no camera_info on {topic} after {CAMERA_INFO_GRACE_S:.0f} s: {then}")
        return fov > 0

    def _publish(self, cam: Camera, frame: Frame, result) -> None:
        """Publish what the pipeline produced for one frame, each with the input image's header."""
        header = frame.msg.header
        t0 = time.perf_counter()
        msgs = ((cam.info_pub, result.camera_info and ros_adapter.camera_info_msg(header, result.camera_info)),
                (cam.depth_pub, result.depth is not None and ros_adapter.depth_msg(header, result.depth)),
                (cam.points_pub, result.cloud and ros_adapter.cloud_msg(header, result.cloud)),
                (cam.colored_pub, result.colored is not None and ros_adapter.rgb_msg(header, result.colored)))
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
        latency = node_diagnostics.stamp_latency(self.get_clock().now().nanoseconds,
                                                 Time.from_msg(header.stamp).nanoseconds)
        if latency.problem and not cam.stamp_problem:
            self.get_logger().warning(f"{cam.label}: {latency.problem}; latency is not reported")
        cam.stamp_problem = latency.problem
        if latency.seconds is not None:
            cam.stats.add("latency", latency.seconds)
        cam.stats.count("out")

    def _report(self, cam: Camera, message: str) -> None:
        """Record a frame problem for diagnostics; log it once, then at most every ERROR_LOG_PERIOD_S."""
        now = time.monotonic()
        cam.last_error, cam.last_error_time = message, now
        cam.stats.count("errors")
        key = f"{cam.label}: {message}"
        last = self._error_logged.get(key)
        if last is None or now - last >= ERROR_LOG_PERIOD_S:
            self._error_logged[key] = now
            self.get_logger().error(f"{key} (repeats logged every {ERROR_LOG_PERIOD_S:.0f} s)")

    # ---------------------------------------------------------------- diagnostics

    def _publish_diagnostics(self) -> None:
        """Publish one status for the model and one per camera on /diagnostics."""
        _, _, means = self._stats.snapshot()
        ms = {name: f"{value * 1e3:.2f}" for name, value in means.items()}
        est = self._estimator
        fqn = self.get_fully_qualified_name()
        values = {"state": self._status, "model": self.get_parameter("model.checkpoint").value,
                  "device": str(est.device) if est else "-",
                  "precision": str(est.dtype).replace("torch.", "") if est else "-",
                  "input size": est.input_size if est else "-",
                  "batch size": f"{means.get('batch_size', 0):.2f}"}
        for stage in ("inference", "decode", "upload", "depth", "cloud", "colorize", "publish"):
            values[f"{stage} ms"] = ms.get(stage, "-")
        failure = self._failure or ("; ".join(self._invalid.values()) if self._invalid else "")
        worker_alive = self._worker is not None and self._worker.is_alive()
        state = node_diagnostics.model_state(self._status, failure, worker_alive, self._active)
        statuses = [ros_adapter.diagnostic_status(f"{fqn}: model", fqn, state.level, state.message, values)]
        now = time.monotonic()
        for index, cam in enumerate(self._cameras):
            _, rates, cam_means = cam.stats.snapshot()
            recent = cam.last_error if now - cam.last_error_time < RECENT_ERROR_S else ""
            idle = (f"no images on {cam.label}" if cam.frames_in == 0 and now - self._activated_at > NO_INPUT_WARN_S
                    else "")
            cstate = node_diagnostics.camera_state(self._active, self._status, recent, idle, cam.stamp_problem)
            latency = f"{cam_means['latency'] * 1e3:.1f}" if "latency" in cam_means else "-"
            statuses.append(ros_adapter.diagnostic_status(f"{fqn}: camera {cam.label}", fqn, cstate.level,
                                                          cstate.message, {
                "input rate hz": f"{rates.get('in', 0.0):.2f}",
                "output rate hz": f"{rates.get('out', 0.0):.2f}",
                "latency ms": latency if not cam.stamp_problem else f"unknown: {cam.stamp_problem}",
                "frames received": self._slots.received[index] if self._slots else 0,
                "frames dropped": self._slots.dropped[index] if self._slots else 0,
                "camera_info": "received" if len(cam.infos) else "missing",
                "error rate hz": f"{rates.get('errors', 0.0):.2f}",
                "last error": cam.last_error or "-",
            }))
        self._diag_pub.publish(ros_adapter.diagnostic_array(self.get_clock().now().to_msg(), statuses))


def main(args=None) -> None:
    """Run the node until SIGINT or shutdown; with `autostart` it configures and activates itself."""
    rclpy.init(args=args)  # rclpy.init is a context manager only from Jazzy on; try/finally works on Humble too
    node = None
    try:
        node = DepthAnythingNode()
        if node.get_parameter("autostart").value:
            if node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
                node.trigger_activate()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:
        # SIGINT shuts the context down asynchronously; spin() can then fail inside rclpy (a wait set on the dead
        # context, a message conversion interrupted by KeyboardInterrupt) instead of raising the exceptions above
        if rclpy.ok():
            raise
    finally:
        if node is not None:
            node.stop()
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
