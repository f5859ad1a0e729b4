"""rclpy helpers of `bag play` and `bag record`: message classes by type name, QoS profiles, the node's lifetime."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator

import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from depth_anything_ros.bag.bagfile import BagError


def message_class(msgtype: str) -> type:
    """Return the rclpy message class of a type name such as 'sensor_msgs/msg/Image'."""
    parts = msgtype.split("/")
    if len(parts) != 3:
        raise BagError(f"cannot handle message type name {msgtype!r} (expected package/msg/Name)")
    package, kind, name = parts
    try:
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ImportError, AttributeError) as exc:
        raise BagError(f"message type {msgtype} is not installed in this ROS environment ({exc})") from exc


def qos(reliable: bool, depth: int = 100, transient_local: bool = False) -> QoSProfile:
    """KEEP_LAST profile of the given reliability and durability."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if transient_local else DurabilityPolicy.VOLATILE)


@contextlib.contextmanager
def ros_node(name: str) -> Iterator[Node]:
    """Yield an rclpy node in its own context, destroyed and shut down on exit."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node(name, context=context)
    try:
        yield node
    finally:
        node.destroy_node()
        with contextlib.suppress(Exception):
            rclpy.shutdown(context=context)
