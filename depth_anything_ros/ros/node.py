"""DepthAnythingNode: managed lifecycle node wiring camera topics to the frame pipeline, and its diagnostics.

Threads: the executor runs subscriptions, timers and services; subscription callbacks only put the newest frame
of their camera into a LatestFrameSlots; one FrameWorker thread (ros/worker.py) takes fair batches, runs the
pipeline and publishes. Parameters, lifecycle and diagnostics live here; per-frame decisions in frame/pipeline.py.
"""

from __future__ import annotations

import signal
import sys
import time

import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Vector3Stamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, LaserScan, PointCloud2

from depth_anything_ros.frame.colorize import COLORMAPS
from depth_anything_ros.frame.pipeline import FramePipeline
from depth_anything_ros.models.checkpoint_io import CheckpointError, is_synthetic
from depth_anything_ros.models.backends.loader import load_backend_estimator
from depth_anything_ros.models.backends.self_check import require_self_check
from depth_anything_ros.ros import diagnostics as node_diagnostics
from depth_anything_ros.ros import messages as ros_messages
from depth_anything_ros.ros import params as node_params
from depth_anything_ros.ros import scale as node_scale
from depth_anything_ros.ros.camera import Camera
from depth_anything_ros.ros.frame_slot import LatestFrameSlots
from depth_anything_ros.ros.stats import WindowStats
from depth_anything_ros.ros.worker import FrameWorker

try:  # Iron and newer
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks

NODE_NAME = "depth_anything"
NO_INPUT_WARN_S = 3.0  # active without images for this long: check publishers for incompatible QoS
DIAGNOSTICS_PERIOD_S = 1.0
OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)


def _scale_text(est) -> str:
    """Return what sets the model's metres, for the activation log line."""
    if est.needs_focal:
        return f"depth x focal / 300 from camera_info, sky {est.sky}"
    if getattr(est, "temporal", False):
        return f"temporal: each camera's frames attend to its past frames, colours up to {est.max_depth} m"
    return f"max depth {est.max_depth} m"


class DepthAnythingNode(LifecycleNode):
    """Metric depth, point cloud and colourised depth for one or more cameras from one Depth-Anything-V2 model."""

    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        self._invalid: dict[str, str] = {}  # parameter -> why its startup value was refused
        for spec in node_params.PARAMS:
            self._declare(spec)
        for name, reason in node_params.command_line_type_errors(sys.argv).items():
            self._invalid.setdefault(name, reason)
        self._runtime = {s.name: self.get_parameter(s.name).value for s in node_params.PARAMS if s.runtime}
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._cameras: list[Camera] = []
        self._slots: LatestFrameSlots | None = None
        self._estimator = None
        self._pipeline: FramePipeline | None = None
        self._synthetic = False  # the loaded checkpoint holds synthetic (random) weights
        self._self_check = None
        self._worker: FrameWorker | None = None
        self._active = False
        self._activated_at = 0.0
        self._status = "unconfigured"
        self._failure = ""  # reason of the last failed transition, "" after a successful one
        self._stats = WindowStats()
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
        est = self._estimator
        if not reason and est is not None and not est.is_metric and values.get("scale.mode", "reference") != \
                "reference":
            reason = "the loaded checkpoint is a relative model: scale.mode must stay reference"
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        if values.get("model.reset_temporal") is True and self._pipeline is not None:
            self._pipeline.reset_temporal()  # every camera's next frame starts a new stream
            self.get_logger().info("model.reset_temporal: temporal state of every camera reset")
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
        try:
            node_params.frame_options(self._runtime)
        except ValueError as exc:
            return self._fail("configure", str(exc))
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
            cam.reference_sub = self.create_subscription(
                Image, topic(ns, "reference_depth"), lambda msg, c=cam: self._on_reference(c, msg), self._input_qos)
            cam.scale_pub = self.create_lifecycle_publisher(Vector3Stamped, topic(ns, "depth/scale"), OUTPUT_QOS)
            cam.scan_pub = self.create_lifecycle_publisher(LaserScan, topic(ns, "scan"), OUTPUT_QOS)
            cam.confidence_pub = self.create_lifecycle_publisher(Image, topic(ns, "depth/confidence"), OUTPUT_QOS)
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
            self._estimator = load_backend_estimator(cfg["model.checkpoint"], **node_params.model_options(cfg))
            self._pipeline = FramePipeline(self._estimator, allow_relative=self._runtime["scale.mode"] == "reference")
            self._self_check = None  # at activation, for a non-torch backend: ERROR and FAILURE when it fails
            if cfg["model.backend"] != "torch" and cfg["model.self_check"]:
                self._self_check = require_self_check(self._estimator)
                self.get_logger().info(self._self_check.text())
        except (CheckpointError, ValueError, RuntimeError, OSError) as exc:
            self._estimator = self._pipeline = None
            self._status = "model not loaded"
            return self._fail("activate", f"model not loaded, cannot load model '{cfg['model.checkpoint']}': {exc}")
        est = self._estimator
        self.get_logger().info(
            f"model {cfg['model.checkpoint']} ({est.encoder}, {_scale_text(est)}) on {est.device} "
            f"{str(est.dtype).replace('torch.', '')}{node_params.precision_note(cfg, est)}, input size "
            f"{est.input_size}, loaded in {time.monotonic() - start:.1f} s")
        self._synthetic = is_synthetic(est.checkpoint_path)
        if self._synthetic:
            self.get_logger().warning(f"SYNTHETIC WEIGHTS in {est.checkpoint_path}: random weights with the official "
                                      "shapes, every depth and cloud is meaningless; use a real checkpoint")
        self._slots.reopen()
        self._active = True
        self._activated_at = time.monotonic()
        for cam in self._cameras:
            cam.first_frame, cam.warned_qos, cam.frames_in = None, False, 0
        self._worker = FrameWorker(self, self._pipeline, self._slots, self._cameras, self._runtime, self._stats)
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
        if self._slots is not None:
            self._slots.close()
            self._slots.clear()
        if self._worker is not None:
            self._worker.stop()  # never leaves it inside the model: exiting there aborts the process
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
            for sub in (cam.image_sub, cam.info_sub, cam.reference_sub):
                self.destroy_subscription(sub)
            for pub in (cam.depth_pub, cam.info_pub, cam.points_pub, cam.colored_pub, cam.scale_pub, cam.scan_pub,
                        cam.confidence_pub):
                self.destroy_lifecycle_publisher(pub)
        self._cameras = []
        self._slots = None

    # ---------------------------------------------------------------- input

    def _on_image(self, index: int, msg) -> None:
        """Keep only the newest frame of camera `index`; the worker does everything else."""
        if not self._active:
            return
        self._slots.put(index, self._cameras[index].add_frame(msg, time.monotonic()))

    def _on_camera_info(self, cam: Camera, msg: CameraInfo) -> None:
        """Keep the camera_info by stamp for the worker to pair with images."""
        cam.add_camera_info(Time.from_msg(msg.header.stamp).nanoseconds, msg)

    def _on_reference(self, cam: Camera, msg: Image) -> None:
        """Keep the reference depth by stamp for the worker to pair with images (decoded there)."""
        cam.references.add(Time.from_msg(msg.header.stamp).nanoseconds, msg)

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
                  "weights": ("SYNTHETIC" if self._synthetic else "checkpoint") if est else "-",
                  "backend": f"{est.backend} {','.join(getattr(est, 'providers', ()))}".strip() if est else "-",
                  "self-check": self._self_check.text() if self._self_check else "-",
                  "batch size": f"{means.get('batch_size', 0):.2f}"}
        for stage in ("inference", "decode", "upload", "scale", "depth", "gates", "scan", "cloud", "colorize",
                      "publish"):
            values[f"{stage} ms"] = ms.get(stage, "-")
        failure = self._failure or ("; ".join(self._invalid.values()) if self._invalid else "")
        worker_alive = self._worker is not None and self._worker.is_alive()
        state = node_diagnostics.model_state(self._status, failure, worker_alive, self._active)
        statuses = [ros_messages.diagnostic_status(f"{fqn}: model", fqn, state.level, state.message, values)]
        now = time.monotonic()
        for index, cam in enumerate(self._cameras):
            idle = (f"no images on {cam.label}" if cam.frames_in == 0 and now - self._activated_at > NO_INPUT_WARN_S
                    else "")
            cstate = node_diagnostics.camera_state(self._active, self._status, cam.recent_error(now), idle,
                                                   cam.stamp_problem, node_scale.stale_problem(cam.scale_state))
            counts = (self._slots.received[index], self._slots.dropped[index]) if self._slots else (0, 0)
            values = {**cam.diagnostic_values(*counts),
                      **node_scale.diagnostic_values(cam.scale_state, self._runtime["depth.scale"])}
            statuses.append(ros_messages.diagnostic_status(f"{fqn}: camera {cam.label}", fqn, cstate.level,
                                                          cstate.message, values))
        self._diag_pub.publish(ros_messages.diagnostic_array(self.get_clock().now().to_msg(), statuses))


class _InterruptOutsideSpin:
    """SIGINT handler: KeyboardInterrupt before spin(); during spin() rclpy's own handler shuts the context down."""

    def __init__(self):
        self.spinning = False

    def __call__(self, signum, frame):
        # rclpy's C handler (installed by rclpy.init on top of this one) shuts the context down and then calls this;
        # a KeyboardInterrupt raised inside spin() can land half way through rclpy's own objects (a Task whose
        # __init__ never finished prints a traceback from __del__), so inside spin() the context shutdown alone
        # ends spin() with ExternalShutdownException
        if not self.spinning:
            raise KeyboardInterrupt


def main(args=None) -> None:
    """Run the node until SIGINT or shutdown; with `autostart` it configures and activates itself."""
    interrupt = _InterruptOutsideSpin()
    signal.signal(signal.SIGINT, interrupt)
    rclpy.init(args=args)  # rclpy.init is a context manager only from Jazzy on; try/finally works on Humble too
    node = None
    try:
        node = DepthAnythingNode()
        if node.get_parameter("autostart").value:
            if node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
                node.trigger_activate()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        interrupt.spinning = True
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
