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
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from depth_anything_ros import node_params, ros_adapter
from depth_anything_ros.camera import Intrinsics
from depth_anything_ros.checkpoint import CheckpointError
from depth_anything_ros.colorize import COLORMAPS, colorize, colormap_lut
from depth_anything_ros.estimator import DepthEstimator
from depth_anything_ros.frame_slot import LatestFrameSlots
from depth_anything_ros.geometry import PointCloudBuilder, ray_grid
from depth_anything_ros.image_codec import ImageDecodeError, decode_compressed, decode_image
from depth_anything_ros.preprocess import to_rgb8
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
    info: CameraInfo | None = None
    first_frame: float | None = None
    warned_no_info: bool = False
    warned_qos: bool = False
    frames_in: int = 0
    last_error: str = ""
    last_error_time: float = -math.inf
    rays_key: object = None
    rays: object = None
    stats: WindowStats = field(default_factory=WindowStats)
    cloud_builder: PointCloudBuilder = field(default_factory=PointCloudBuilder)  # keeps this camera's buffers


class DepthAnythingNode(LifecycleNode):
    """Metric depth, point cloud and colourised depth for one or more cameras from one Depth-Anything-V2 model."""

    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        for spec in node_params.PARAMS:
            self.declare_parameter(spec.name, spec.default, spec.descriptor())
        self._runtime = {s.name: self.get_parameter(s.name).value for s in node_params.PARAMS if s.runtime}
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._cameras: list[Camera] = []
        self._slots: LatestFrameSlots | None = None
        self._estimator = None
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._active = False
        self._activated_at = 0.0
        self._status = "unconfigured"
        self._error_logged: dict[str, float] = {}
        self._stats = WindowStats()
        self._qos_timer = None
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)

    # ---------------------------------------------------------------- parameters

    def _on_set_parameters(self, params) -> SetParametersResult:
        """Validate a parameter change; run-time parameters apply to the next frame, the others on reconfigure."""
        values = {p.name: p.value for p in params}
        current = {name: self.get_parameter(name).value for name in ("cloud.min_depth", "cloud.max_depth")}
        reason = node_params.validate({**current, **values}, COLORMAPS)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        for name, value in values.items():
            spec = node_params.SPECS.get(name)
            if spec is None:
                continue
            if spec.runtime:
                self._runtime[name] = value
            elif self._status != "unconfigured":
                self.get_logger().info(f"parameter {name} = {value!r} applies on reconfigure "
                                       "(deactivate, cleanup, configure, activate)")
        return SetParametersResult(successful=True)

    # ---------------------------------------------------------------- lifecycle

    def on_configure(self, state) -> TransitionCallbackReturn:
        """Read parameters and create the subscriptions and publishers of every camera."""
        self._config = {spec.name: self.get_parameter(spec.name).value for spec in node_params.PARAMS}
        reason = node_params.validate(self._config, COLORMAPS)
        if reason:
            self.get_logger().error(f"configure failed: {reason}")
            return TransitionCallbackReturn.FAILURE
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
                CameraInfo, topic(ns, "camera_info"), lambda msg, c=cam: setattr(c, "info", msg), self._input_qos)
            cam.depth_pub = self.create_lifecycle_publisher(Image, topic(ns, "depth"), OUTPUT_QOS)
            cam.info_pub = self.create_lifecycle_publisher(CameraInfo, topic(ns, "depth/camera_info"), OUTPUT_QOS)
            cam.points_pub = self.create_lifecycle_publisher(PointCloud2, topic(ns, "points"), OUTPUT_QOS)
            cam.colored_pub = self.create_lifecycle_publisher(Image, topic(ns, "depth/colored"), OUTPUT_QOS)
            self._cameras.append(cam)
        self._slots = LatestFrameSlots(list(range(len(self._cameras))))
        self._status = "inactive"
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
        except (CheckpointError, ValueError, RuntimeError, OSError) as exc:
            self._status = f"model not loaded: {exc}"
            self.get_logger().error(f"activate failed, cannot load model '{cfg['model.checkpoint']}': {exc}")
            return TransitionCallbackReturn.FAILURE
        est = self._estimator
        self.get_logger().info(
            f"model {cfg['model.checkpoint']} ({est.encoder}, max depth {est.max_depth} m) on {est.device} "
            f"{str(est.dtype).replace('torch.', '')}, input size {est.input_size}, loaded in "
            f"{time.monotonic() - start:.1f} s")
        for cam in self._cameras:
            if est.compiled and cam.info is not None:
                self._warmup(est, cam.info.height, cam.info.width)
        self._lut_name = None
        self._stop.clear()
        self._slots.reopen()
        self._active = True
        self._activated_at = time.monotonic()
        for cam in self._cameras:
            cam.first_frame, cam.warned_qos, cam.frames_in = None, False, 0
        self._worker = threading.Thread(target=self._work, name="depth_anything_worker", daemon=True)
        self._worker.start()
        self._qos_timer = self.create_timer(1.0, self._check_input)
        self._status = "active"
        return super().on_activate(state)

    def _warmup(self, est: DepthEstimator, height: int, width: int) -> None:
        """Compile and run the network once for a height x width camera before its first frame."""
        start = time.monotonic()
        est.warmup(height, width)
        self.get_logger().info(f"warmed up the compiled network for {width}x{height} images in "
                               f"{time.monotonic() - start:.1f} s")

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        """Stop processing and free the model (and its GPU memory)."""
        self._stop_processing()
        self._status = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        """Destroy every camera's subscriptions and publishers."""
        self._destroy_cameras()
        self._status = "unconfigured"
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
            self._estimator = None
            for cam in self._cameras:  # device buffers go with the model
                cam.rays_key = cam.rays = None
                cam.cloud_builder = PointCloudBuilder()
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
        """Worker loop: take the pending frames of all cameras, process them as batches, publish."""
        est, slots, cameras = self._estimator, self._slots, self._cameras
        while not self._stop.is_set():
            batch = slots.take(timeout=0.2)
            if batch and not self._stop.is_set():
                try:
                    self._process(est, [(cameras[i], frame) for i, frame in batch])
                except (RuntimeError, ValueError) as exc:  # e.g. CUDA out of memory: report, keep the worker alive
                    for i, _ in batch:
                        self._report(cameras[i], f"processing failed: {type(exc).__name__}: {exc}")

    def _process(self, est: DepthEstimator, batch: list[tuple[Camera, Frame]]) -> None:
        """Decode, run one forward pass per image size and publish every output of every frame in `batch`."""
        start = time.perf_counter()
        groups: dict[tuple, list] = {}
        for cam, frame in batch:
            try:
                if isinstance(frame.msg, CompressedImage):
                    image, encoding = decode_compressed(frame.msg)
                else:
                    image, encoding = decode_image(frame.msg)
            except ImageDecodeError as exc:
                self._report(cam, str(exc))
                continue
            groups.setdefault((image.shape, image.dtype.str, encoding), []).append((cam, frame, image))
        self._stats.add("decode", (time.perf_counter() - start) / len(batch))
        model_time = 0.0
        for (_, _, encoding), items in groups.items():
            t0 = time.perf_counter()
            raw = est.upload([image for _, _, image in items], encoding)  # (B, H, W[, C]) as it came
            t1 = time.perf_counter()
            compiled = len(est.compiled_shapes)
            depth = est.estimate_raw(raw, encoding)  # (B, H, W) float32 on the device
            if len(est.compiled_shapes) > compiled:
                self.get_logger().info(f"compiled the network for input shape {est.compiled_shapes[-1]} "
                                       "(new image size or batch); this frame waited for it")
            if est.device.type == "cuda":
                torch.cuda.synchronize(est.device)
            t2 = time.perf_counter()
            model_time += t2 - t1
            self._stats.add("upload", (t1 - t0) / len(items))
            self._stats.add("inference", t2 - t1)
            self._stats.add("batch_size", len(items))
            if self._stop.is_set():
                return
            for i, (cam, frame, _) in enumerate(items):
                self._publish(est, cam, frame, depth[i], raw[i:i + 1], encoding)
        done = [cam for group in groups.values() for cam, _, _ in group]
        if done:
            self._stats.add("non_model", (time.perf_counter() - start - model_time) / len(done))

    def _publish(self, est: DepthEstimator, cam: Camera, frame: Frame, depth, raw, encoding: str) -> None:
        """Publish depth, its camera_info, the cloud and the colourised depth of one frame (input header kept)."""
        header = frame.msg.header
        rt = self._runtime
        height, width = depth.shape
        t0 = time.perf_counter()
        if rt["depth.scale"] != 1.0:
            depth = depth * rt["depth.scale"]
        depth_msg = ros_adapter.depth_msg(header, depth.float().cpu().numpy())
        intr, source = self._intrinsics(cam, width, height)
        info_msg = ros_adapter.camera_info_msg(header, intr, source) if intr is not None else None
        t1 = time.perf_counter()
        cloud_msg = None
        if rt["cloud.enabled"] and intr is not None and cam.points_pub.get_subscription_count() > 0:
            rays = self._rays(cam, intr, depth.device)
            if rays is not None:
                colour = to_rgb8(raw, encoding)[0].permute(1, 2, 0) if rt["cloud.color"] else None
                max_depth = rt["cloud.max_depth"] if rt["cloud.max_depth"] > 0 else math.inf
                cloud = cam.cloud_builder.build(depth, rays, colour, stride=rt["cloud.stride"],
                                                  min_depth=rt["cloud.min_depth"], max_depth=max_depth,
                                                  organized=rt["cloud.organized"])
                cloud_msg = ros_adapter.cloud_msg(header, cloud)
        t2 = time.perf_counter()
        colored_msg = None
        if rt["colored.enabled"] and cam.colored_pub.get_subscription_count() > 0:
            colored_msg = ros_adapter.rgb_msg(header, self._colorize(est, depth, rt))
        t3 = time.perf_counter()
        if self._stop.is_set():
            return
        try:
            for pub, msg in ((cam.info_pub, info_msg), (cam.depth_pub, depth_msg), (cam.points_pub, cloud_msg),
                             (cam.colored_pub, colored_msg)):
                if msg is not None:
                    pub.publish(msg)
        except RCLError:
            if self.context.ok():
                raise
            return  # SIGINT shut the context down while we were publishing; main() stops the worker next
        t4 = time.perf_counter()
        self._stats.add("depth", t1 - t0)
        if cloud_msg is not None:
            self._stats.add("cloud", t2 - t1)
        if colored_msg is not None:
            self._stats.add("colorize", t3 - t2)
        self._stats.add("publish", t4 - t3)
        latency = (self.get_clock().now() - Time.from_msg(header.stamp)).nanoseconds * 1e-9
        cam.stats.add("latency", latency)
        cam.stats.count("out")

    def _intrinsics(self, cam: Camera, width: int, height: int):
        """Return (Intrinsics of a width x height image, the CameraInfo they come from or None) or (None, None)."""
        info = cam.info
        if info is not None:
            try:
                return Intrinsics.from_camera_info(info).scaled_to(width, height), info
            except ValueError as exc:
                self._report(cam, f"camera_info unusable for a {width}x{height} image: {exc}")
                return None, None
        if time.monotonic() - cam.first_frame < CAMERA_INFO_GRACE_S:
            return None, None
        fov = self._runtime["camera.fallback_fov_deg"]
        if not cam.warned_no_info:
            cam.warned_no_info = True
            topic = self.resolve_topic_name(node_params.camera_topic(cam.namespace, "camera_info"))
            then = (f"using an ideal pinhole with a {fov} degree field of view (camera.fallback_fov_deg)" if fov > 0
                    else "publishing depth only; set camera.fallback_fov_deg for a cloud without camera_info")
            self.get_logger().warning(f"no camera_info on {topic} after {CAMERA_INFO_GRACE_S:.0f} s: {then}")
        if fov > 0:
            return Intrinsics.from_fov(width, height, fov), None
        return None, None

    def _rays(self, cam: Camera, intr, device):
        """Return the cached (H, W, 3) float32 ray grid of `intr` on `device`, or None when it cannot be built."""
        undistort = self._runtime["camera.undistort"]
        key = (intr, undistort, str(device))
        if cam.rays_key != key:
            try:
                cam.rays = torch.from_numpy(ray_grid(intr, undistort)).to(device)
            except ValueError as exc:
                self._report(cam, f"cannot back-project with this camera_info: {exc}")
                return None
            cam.rays_key = key
        return cam.rays

    def _colorize(self, est: DepthEstimator, depth, rt):
        """Return the (H, W, 3) uint8 RGB colourised depth, range 0 .. the model's max depth x depth.scale."""
        if self._lut_name != rt["colored.colormap"]:
            self._lut = colormap_lut(rt["colored.colormap"])
            self._lut_name = rt["colored.colormap"]
        top = (est.max_depth or 1.0) * rt["depth.scale"]
        return colorize(depth, 0.0, top, self._lut).cpu().numpy()

    def _report(self, cam: Camera, message: str) -> None:
        """Record an input error for diagnostics; log it once, then at most every ERROR_LOG_PERIOD_S."""
        now = time.monotonic()
        cam.last_error, cam.last_error_time = message, now
        cam.stats.count("errors")
        key = f"{cam.label}: {message}"
        last = self._error_logged.get(key)
        if last is None or now - last >= ERROR_LOG_PERIOD_S:
            self._error_logged[key] = now
            self.get_logger().error(f"{key} (frame skipped; repeats logged every {ERROR_LOG_PERIOD_S:.0f} s)")

    # ---------------------------------------------------------------- diagnostics

    def _publish_diagnostics(self) -> None:
        """Publish one status for the model and one per camera on /diagnostics."""
        _, _, means = self._stats.snapshot()
        ms = {name: f"{value * 1e3:.2f}" for name, value in means.items()}
        est = self._estimator
        fqn = self.get_fully_qualified_name()
        values = {"state": self._status, "model": self._config_value("model.checkpoint"),
                  "device": str(est.device) if est else "-",
                  "precision": str(est.dtype).replace("torch.", "") if est else "-",
                  "input size": est.input_size if est else "-",
                  "batch size": f"{means.get('batch_size', 0):.2f}"}
        for stage in ("inference", "decode", "upload", "depth", "cloud", "colorize", "publish", "non_model"):
            values[f"{stage.replace('_', '-')} ms"] = ms.get(stage, "-")
        if self._status.startswith("model not loaded"):
            level, message = "ERROR", self._status
        else:
            level, message = "OK", self._status
        statuses = [ros_adapter.diagnostic_status(f"{fqn}: model", fqn, level, message, values)]
        now = time.monotonic()
        for index, cam in enumerate(self._cameras):
            _, rates, cam_means = cam.stats.snapshot()
            recent_error = now - cam.last_error_time < RECENT_ERROR_S
            if not self._active:
                level, message = "OK", self._status
            elif recent_error:
                level, message = "WARN", f"input error: {cam.last_error}"
            elif cam.frames_in == 0 and now - self._activated_at > NO_INPUT_WARN_S:
                level, message = "WARN", f"no images on {cam.label}"
            else:
                level, message = "OK", "processing"
            statuses.append(ros_adapter.diagnostic_status(f"{fqn}: camera {cam.label}", fqn, level, message, {
                "input rate hz": f"{rates.get('in', 0.0):.2f}",
                "output rate hz": f"{rates.get('out', 0.0):.2f}",
                "latency ms": f"{cam_means['latency'] * 1e3:.1f}" if "latency" in cam_means else "-",
                "frames received": self._slots.received[index] if self._slots else 0,
                "frames dropped": self._slots.dropped[index] if self._slots else 0,
                "camera_info": "received" if cam.info is not None else "missing",
                "error rate hz": f"{rates.get('errors', 0.0):.2f}",
                "last error": cam.last_error or "-",
            }))
        self._diag_pub.publish(ros_adapter.diagnostic_array(self.get_clock().now().to_msg(), statuses))

    def _config_value(self, name: str):
        return self.get_parameter(name).value


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
