"""Opening rosbag2 bags (mcap or sqlite3) with rosbags, adding topics and picking topics by type."""

from __future__ import annotations

from pathlib import Path

from rosbags.interfaces import Connection
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.rosbag2.errors import ReaderError

from depth_anything_ros.bag import messages
from depth_anything_ros.bag.messages import TYPESTORE

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


class BagError(RuntimeError):
    """A bag that cannot be used as asked; the message says which bag, topic or type and why."""


def open_reader(path: str | Path) -> Reader:
    """Open a rosbag2 directory for reading."""
    path = Path(path)
    if not path.exists():
        raise BagError(f"bag {path} does not exist")
    reader = Reader(path)
    try:
        reader.open()
    except ReaderError as exc:
        raise BagError(f"cannot read bag {path}: {exc}") from exc
    return reader


def open_writer(path: str | Path, storage: str = "mcap") -> Writer:
    """Create and open a new rosbag2 directory (version 9) in mcap or sqlite3 storage."""
    path = Path(path)
    if storage not in STORAGES:
        raise BagError(f"unknown storage {storage!r}; expected one of {', '.join(STORAGES)}")
    if path.exists():
        raise BagError(f"output {path} exists already; choose a new path (bags are never overwritten)")
    writer = Writer(path, version=9, storage_plugin=STORAGES[storage])
    writer.open()
    return writer


def add_topic(writer: Writer, topic: str, msgtype: str) -> Connection:
    """Add a topic whose message definition comes from our typestore."""
    return writer.add_connection(topic, msgtype, typestore=TYPESTORE)


def copy_topic(writer: Writer, conn: Connection) -> Connection | None:
    """Add a topic like an input bag's connection (its definition, hash and QoS); None if its type is unknowable."""
    qos = list(getattr(conn.ext, "offered_qos_profiles", None) or [])
    if conn.msgdef.data and conn.digest:
        return writer.add_connection(conn.topic, conn.msgtype, msgdef=conn.msgdef.data, rihs01=conn.digest,
                                     offered_qos_profiles=qos)
    if conn.msgtype in TYPESTORE.types:
        return writer.add_connection(conn.topic, conn.msgtype, typestore=TYPESTORE, offered_qos_profiles=qos)
    return None


def topics_of_type(reader: Reader, msgtypes: tuple[str, ...]) -> dict[str, str]:
    """Topic -> type of the bag's topics whose type is one of msgtypes."""
    return {c.topic: c.msgtype for c in reader.connections if c.msgtype in msgtypes}


def pick_topic(reader: Reader, requested: str | None, msgtypes: tuple[str, ...], what: str, option: str) -> str:
    """Return the requested topic (checked) or the only topic of msgtypes; BagError naming the candidates otherwise."""
    candidates = topics_of_type(reader, msgtypes)
    listing = ", ".join(f"{t} ({m})" for t, m in sorted(candidates.items())) or "none"
    if requested is not None:
        types = {c.msgtype for c in reader.connections if c.topic == requested}
        if not types:
            raise BagError(f"{what} topic {requested} is not in bag {reader.path}; {what} topics: {listing}")
        if not types & set(msgtypes):
            raise BagError(f"{what} topic {requested} has type {', '.join(sorted(types))}, "
                           f"expected {' or '.join(msgtypes)}")
        return requested
    if len(candidates) == 1:
        return next(iter(candidates))
    if not candidates:
        raise BagError(f"bag {reader.path} has no {what} topic ({' or '.join(msgtypes)})")
    raise BagError(f"bag {reader.path} has several {what} topics, choose one with {option}: {listing}")


DEPTH_ENCODINGS = ("16UC1", "32FC1")


def is_depth_topic(reader: Reader, topic: str) -> bool:
    """Whether a topic holds depth images (its first message is an Image in 16UC1 or 32FC1)."""
    conns = [c for c in reader.connections if c.topic == topic and c.msgtype == messages.IMAGE]
    if not conns:  # rosbags reads every connection when given none
        return False
    for conn, _, raw in reader.messages(connections=conns):
        return messages.deserialize(raw, conn.msgtype).encoding.upper() in DEPTH_ENCODINGS
    return False


def pick_image_topic(reader: Reader, requested: str | None, exclude: tuple[str, ...] = ()) -> str:
    """Return the requested camera image topic (checked) or the only Image/CompressedImage topic that is not depth."""
    if requested is not None:
        return pick_topic(reader, requested, messages.IMAGE_TYPES, "image", "--image-topic")
    images = topics_of_type(reader, messages.IMAGE_TYPES)
    colour = sorted(t for t in images if t not in exclude and not is_depth_topic(reader, t))
    if len(colour) == 1:
        return colour[0]
    if not colour:
        raise BagError(f"bag {reader.path} has no camera image topic (sensor_msgs/msg/Image or CompressedImage "
                       "that is not depth)")
    raise BagError(f"bag {reader.path} has several image topics, choose one with --image-topic: {', '.join(colour)}")


def namespace_of(topic: str) -> str:
    """Namespace an image topic lives in: /camera/image -> /camera, /cam/image_raw/compressed -> /cam."""
    base = topic[: -len("/compressed")] if topic.endswith("/compressed") else topic
    parent = base.rsplit("/", 1)[0]
    return parent
