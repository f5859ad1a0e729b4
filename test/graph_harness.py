"""Graph test helpers: depth_anything_node in its own process and an in-process rclpy client that talks to it."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG = REPO_ROOT / "config" / "depth_anything.yaml"
WAIT_S = 60.0  # generous: CPU shared with other work; tests never assert on speed
# Fast DDS can drop a service response sent before the server has matched a new client's response reader
# (wait_for_service only sees the request side): an idempotent request without an answer is sent again.
RESEND_S = 10.0


def node_command(namespace: str, checkpoint, *params: str, params_file: Path = CONFIG) -> list[str]:
    """Return what launch runs for the node: params file, then `-p` overrides, then the namespace remap."""
    overrides = [arg for p in (f"model.checkpoint:={checkpoint}", *params) for arg in ("-p", p)]
    return [sys.executable, "-m", "depth_anything_ros.ros.node", "--ros-args", "--params-file", str(params_file),
            *overrides, "-r", f"__ns:={namespace}"]


class NodeProcess:
    """The node in a subprocess, its stdout and stderr in a log file."""

    def __init__(self, command: list[str], env: dict, log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_for_log(self, text: str, timeout: float = WAIT_S) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return True
            if self.proc.poll() is not None:
                return text in self.log()
            time.sleep(0.1)
        return False

    def interrupt(self, timeout: float = 30.0) -> tuple[int, float]:
        """Send SIGINT; return (exit code, seconds until the process was gone)."""
        start = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - start

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class Collector:
    """Messages received on one topic, with their receive times."""

    def __init__(self):
        self.messages: list = []
        self.times: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, msg) -> None:
        with self._lock:
            self.messages.append(msg)
            self.times.append(time.time())

    def snapshot(self) -> list:
        with self._lock:
            return list(self.messages)

    def by_stamp(self, stamp) -> list:
        key = (stamp.sec, stamp.nanosec)
        return [m for m in self.snapshot() if (m.header.stamp.sec, m.header.stamp.nanosec) == key]


RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)
BEST_EFFORT = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.BEST_EFFORT,
                         durability=DurabilityPolicy.VOLATILE)


class GraphClient:
    """An rclpy node in its own context, spun by a background thread."""

    def __init__(self, name: str):
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self._clients: dict[str, object] = {}
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except ExternalShutdownException:
            pass

    def publisher(self, msg_type, topic: str, qos: QoSProfile = RELIABLE):
        return self.node.create_publisher(msg_type, topic, qos)

    def collect(self, msg_type, topic: str, qos: QoSProfile = RELIABLE) -> Collector:
        collector = Collector()
        self.node.create_subscription(msg_type, topic, collector, qos)
        return collector

    def call(self, srv_type, name: str, request, timeout: float = WAIT_S):
        """Call an idempotent service; send the request again every RESEND_S without an answer."""
        future = self.call_async(srv_type, name, request, timeout)
        deadline = time.monotonic() + timeout
        while wait_future(future, min(RESEND_S, deadline - time.monotonic())) is None:
            assert time.monotonic() < deadline, f"service {name} did not answer"
            future = self.call_async(srv_type, name, request, timeout)
        return future.result()

    def call_async(self, srv_type, name: str, request, timeout: float = WAIT_S):
        """Send a request with this node's one client of `name` (kept: its DDS matching is done once)."""
        client = self._clients.get(name)
        if client is None:
            client = self._clients[name] = self.node.create_client(srv_type, name)
        assert client.wait_for_service(timeout_sec=timeout), f"service {name} not available"
        return client.call_async(request)

    def now(self):
        return self.node.get_clock().now().to_msg()

    def close(self) -> None:
        self._executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5)


def set_params(client: GraphClient, node_name: str, **values) -> list:
    """Set parameters of a remote node (`a__b=v` for `a.b`); return the SetParametersResult list."""
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    request = SetParameters.Request(parameters=[Parameter(k.replace("__", "."), value=v).to_parameter_msg()
                                                for k, v in values.items()])
    return client.call(SetParameters, f"{node_name}/set_parameters", request).results


def change_state(client: GraphClient, node_name: str, transition: int) -> bool:
    """Trigger a lifecycle transition (lifecycle_msgs/Transition id) of a remote node; True when it succeeded.

    Not idempotent: when the answer is lost, the node's state (get_state) says whether the transition happened.
    """
    from lifecycle_msgs.msg import State, Transition
    from lifecycle_msgs.srv import ChangeState, GetState

    goal = {Transition.TRANSITION_CONFIGURE: State.PRIMARY_STATE_INACTIVE,
            Transition.TRANSITION_ACTIVATE: State.PRIMARY_STATE_ACTIVE,
            Transition.TRANSITION_DEACTIVATE: State.PRIMARY_STATE_INACTIVE,
            Transition.TRANSITION_CLEANUP: State.PRIMARY_STATE_UNCONFIGURED}.get(transition)
    request = ChangeState.Request()
    request.transition.id = transition
    future = client.call_async(ChangeState, f"{node_name}/change_state", request)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        answer = wait_future(future, min(RESEND_S, deadline - time.monotonic()))
        if answer is not None:
            return answer.success
        state = client.call(GetState, f"{node_name}/get_state", GetState.Request()).current_state.id
        if goal is not None and state == goal:
            return True
    raise AssertionError(f"service {node_name}/change_state did not answer")


def wait_future(future, timeout: float):
    """Wait up to `timeout` s for an rclpy future spun by another thread; its result, or None."""
    deadline = time.monotonic() + timeout
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.01)
    return future.result() if future.done() else None


def wait_until(predicate, timeout: float = WAIT_S, period: float = 0.05):
    """Poll `predicate` until it returns something truthy (returned) or `timeout` passes (None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(period)
    return None


# ---------------------------------------------------------------- messages


def random_image(height: int, width: int, seed: int) -> np.ndarray:
    """Smooth-ish (H, W, 3) uint8 test picture: gradients plus noise, so the model output varies."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:height, 0:width]
    base = np.stack([u * 255 / max(width - 1, 1), v * 255 / max(height - 1, 1), (u + v) * 127 / (height + width)], -1)
    return np.clip(base + rng.normal(0, 30, (height, width, 3)), 0, 255).astype(np.uint8)


def image_msg(stamp, frame_id: str, pixels: np.ndarray, encoding: str = "rgb8", step: int | None = None,
              data: bytes | None = None) -> Image:
    height, width = pixels.shape[:2]
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=0)
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    row = pixels.reshape(height, -1).view(np.uint8)
    msg.step = row.shape[1] if step is None else step
    msg.data = row.tobytes() if data is None else data
    return msg


def compressed_msg(stamp, frame_id: str, data: bytes, fmt: str) -> CompressedImage:
    msg = CompressedImage(format=fmt)
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.data = data
    return msg


def camera_info_msg(header, width: int, height: int, k, p=None, d=(), model: str = "plumb_bob") -> CameraInfo:
    fx, _, cx, _, fy, cy = k[:6]
    msg = CameraInfo(header=header, width=width, height=height, distortion_model=model)
    msg.k = [float(v) for v in k]
    msg.p = [float(v) for v in (p if p is not None else [fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0])]
    msg.r = [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]
    msg.d = [float(v) for v in d]
    return msg


def depth_array(msg: Image) -> np.ndarray:
    """(H, W) float32 of a little-endian 32FC1 Image."""
    assert msg.encoding == "32FC1" and msg.is_bigendian == 0 and msg.step == 4 * msg.width
    return np.frombuffer(bytes(msg.data), "<f4").reshape(msg.height, msg.width)


def cloud_arrays(msg: PointCloud2) -> tuple[np.ndarray, np.ndarray | None]:
    """((H, W, 3) float32 xyz, (H, W, 3) uint8 RGB or None) of a little-endian PointCloud2."""
    assert not msg.is_bigendian
    offsets = {f.name: f.offset for f in msg.fields}
    buf = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, msg.point_step)
    xyz = np.stack([buf[..., offsets[a]:offsets[a] + 4].copy().view("<f4")[..., 0] for a in "xyz"], -1)
    if "rgb" not in offsets:
        return xyz, None
    bgr = buf[..., offsets["rgb"]:offsets["rgb"] + 3]
    return xyz, np.ascontiguousarray(bgr[..., ::-1])


def status_values(diagnostics: list, name_suffix: str) -> dict | None:
    """Key/values (plus 'level', 'message') of the newest DiagnosticStatus whose name ends with `name_suffix`."""
    for array in reversed(diagnostics):
        for status in array.status:
            if status.name.endswith(name_suffix):
                values = {kv.key: kv.value for kv in status.values}
                values["level"] = int.from_bytes(status.level, "little") if isinstance(status.level, bytes) else int(
                    status.level)
                values["message"] = status.message
                return values
    return None


class CameraIO:
    """Publishers to and collectors of one camera namespace of the node under test."""

    def __init__(self, client: GraphClient, prefix: str, compressed: bool = False, image_qos: QoSProfile = RELIABLE):
        self.client, self.prefix = client, prefix
        image_type, image_topic = (CompressedImage, f"{prefix}/image/compressed") if compressed else (
            Image, f"{prefix}/image")
        self.image_pub = client.publisher(image_type, image_topic, image_qos)
        self.info_pub = client.publisher(CameraInfo, f"{prefix}/camera_info", image_qos)
        self.depth = client.collect(Image, f"{prefix}/depth")
        self.info = client.collect(CameraInfo, f"{prefix}/depth/camera_info")
        self.points = client.collect(PointCloud2, f"{prefix}/points")
        self.colored = client.collect(Image, f"{prefix}/depth/colored")

    def outputs(self, stamp, names) -> dict | None:
        found = {}
        for name in names:
            messages = getattr(self, name).by_stamp(stamp)
            if not messages:
                return None
            found[name] = messages[-1]
        return found

    def roundtrip(self, make, names=("depth",), timeout: float = WAIT_S, predicate=None):
        """Publish frames of `make(stamp) -> (image, camera_info or None)` every 0.5 s until outputs `names` arrive.

        Returns (image, info, outputs) of the first frame whose outputs all arrived (and satisfy `predicate`).
        Repeating covers discovery: the first frames may reach nobody.
        """
        deadline = time.monotonic() + timeout
        sent = []
        while time.monotonic() < deadline:
            image, info = make(self.client.now())
            if info is not None:
                self.info_pub.publish(info)
            self.image_pub.publish(image)
            sent.append((image, info))
            end = min(time.monotonic() + 0.5, deadline)
            while time.monotonic() < end:
                for img, inf in reversed(sent):
                    found = self.outputs(img.header.stamp, names)
                    if found and (predicate is None or predicate(found)):
                        return img, inf, found
                time.sleep(0.02)
        raise AssertionError(f"no {', '.join(names)} on {self.prefix} within {timeout} s ({len(sent)} frames sent)")


def serving_node(env: dict, namespace: str, checkpoint, cameras: list[str], log_path: Path, max_depth: float = 20.0,
                 input_size: int = 70):
    """Yield a started node (CPU, synthetic checkpoint) serving `cameras` in `namespace`; stop it afterwards."""
    process = NodeProcess(node_command(namespace, checkpoint, f"model.max_depth:={max_depth}",
                                       f"model.input_size:={input_size}", "device:=cpu",
                                       "cameras:=[" + ",".join(cameras) + "]"), env, log_path)
    assert process.wait_for_log("loaded in"), process.log()
    yield process
    process.stop()
