"""Opening rosbag2 bags (mcap or sqlite3) with rosbags, adding topics and picking topics by type.

Every bag we write holds one definition per message type (nested types included): readers open it with
ROS 2 Kilted's (messages.TYPESTORE) for the types it has, converting a bag's other definitions of them
(bag.definitions), and `plan_copies` decides what a copied topic is written with.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

from rosbags.interfaces import Connection, MessageDefinition, MessageDefinitionFormat
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.rosbag2.errors import ReaderError
from rosbags.serde import SerdeError

from depth_anything_ros.bag import definitions, messages
from depth_anything_ros.bag.definitions import UNKNOWN, Definition
from depth_anything_ros.bag.messages import TYPESTORE_NAME

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


class BagError(RuntimeError):
    """A bag that cannot be used as asked; the message says which bag, topic or type and why."""


class BagReader(Reader):
    """rosbags Reader whose messages() gives every connection's CDR bytes in ROS 2 Kilted's definition.

    `definitions[conn.id]` (definitions.describe) says how each connection's definition compares with Kilted's;
    the messages of a CONVERTED one are converted as they are read (raw bytes when only names differ), so
    messages.deserialize reads them; an OWN or UNKNOWN one's bytes come as they are.
    """

    definitions: dict[int, Definition]

    def open(self) -> None:
        """Open the bag and compare each connection's definition with Kilted's."""
        super().open()
        stored = self._stored_definitions()
        self.definitions = {}
        described: dict[tuple, Definition] = {}
        for conn in self.connections:
            conn = conn._replace(msgdef=stored.get((conn.topic, conn.msgtype), conn.msgdef))
            key = (conn.msgtype, conn.msgdef.format, conn.msgdef.data, conn.digest)
            if key not in described:
                described[key] = definitions.describe(conn)
            self.definitions[conn.id] = described[key]

    def _stored_definitions(self) -> dict[tuple[str, str], MessageDefinition]:
        """(topic, type) -> the definition its storage file holds (an mcap file has one per channel).

        rosbags' directory reader gives every connection of a type the first definition it finds of it; bags merged
        from several recordings can hold several.
        """
        found: dict[tuple[str, str], MessageDefinition] = {}
        for storage in getattr(self.storage, "storages", ()):
            for conn in storage.connections:
                if conn.msgdef.format != MessageDefinitionFormat.NONE:
                    found.setdefault((conn.topic, conn.msgtype), conn.msgdef)
        return found

    def messages(self, connections: Iterable[Connection] = (), start: int | None = None,
                 stop: int | None = None) -> Iterator[tuple[Connection, int, bytes | memoryview]]:
        """Messages (connection, log time ns, CDR bytes) like rosbags', converted where `definitions` says."""
        return self._converted(super().messages(connections, start, stop))

    def _converted(self, stream: Iterator) -> Iterator[tuple[Connection, int, bytes | memoryview]]:
        for conn, log_time, raw in stream:
            convert = self.definitions[conn.id].convert
            if convert is not None:
                try:
                    raw = convert(raw)
                except (SerdeError, ValueError, TypeError, IndexError, KeyError, struct.error) as exc:
                    raise BagError(f"cannot convert the {conn.topic} message at log time {log_time} ns from the "
                                   f"bag's definition of {conn.msgtype} to {TYPESTORE_NAME}'s: {exc}") from exc
            yield conn, log_time, raw


def check_bag_path(path: str | Path) -> Path:
    """Return `path` if it looks like a rosbag2 directory (holds metadata.yaml); BagError saying what it is instead.

    Cheap (no file is parsed), so front-ends call it before loading a model.
    """
    path = Path(path)
    if not path.exists():
        raise BagError(f"bag {path} does not exist")
    if not path.is_dir():
        hint = (f"; pass its bag directory {path.parent}" if (path.parent / "metadata.yaml").is_file()
                else "; a rosbag2 bag is a directory holding metadata.yaml and .mcap or .db3 files")
        raise BagError(f"{path} is a file, not a bag{hint}")
    if not (path / "metadata.yaml").is_file():
        raise BagError(f"{path} is not a bag: the directory has no metadata.yaml (a rosbag2 bag is a directory "
                       "holding metadata.yaml and .mcap or .db3 files)")
    return path


def open_reader(path: str | Path) -> Reader:
    """Open a rosbag2 directory for reading; BagError (one line) when it is not a readable bag."""
    path = check_bag_path(path)
    reader = BagReader(path)
    try:
        reader.open()
    except (ReaderError, OSError, ValueError, KeyError) as exc:
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BagError(f"cannot read bag {path}: {why}") from exc
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


def _add_connection(writer: Writer, topic: str, msgtype: str, msgdef: str, digest: str,
                    qos: list | tuple = ()) -> Connection:
    """Add a topic; BagError if the bag holds another definition of its type already (one per type and bag)."""
    other = next((c for c in writer.connections if c.msgtype == msgtype and c.digest != digest), None)
    if other is not None:
        raise BagError(f"cannot add {topic}: {other.topic} holds another definition of {msgtype} ({other.digest}, "
                       f"not {digest}), and a bag holds one definition per type")
    return writer.add_connection(topic, msgtype, msgdef=msgdef, rihs01=digest, offered_qos_profiles=list(qos))


def add_topic(writer: Writer, topic: str, msgtype: str) -> Connection:
    """Add a topic whose message definition comes from our typestore."""
    return _add_connection(writer, topic, msgtype, *messages.definition(msgtype))


def copy_topic(writer: Writer, conn: Connection, definition: Definition) -> Connection:
    """Add a topic like an input bag's connection (its QoS) with the definition plan_copies chose for it."""
    qos = list(getattr(conn.ext, "offered_qos_profiles", None) or [])
    return _add_connection(writer, conn.topic, conn.msgtype, definition.msgdef, definition.digest, qos)


def plan_copies(reader: BagReader, output_types: Iterable[str],
                read_topics: Iterable[str] = ()) -> tuple[dict[int, Definition], dict[str, str]]:
    """Decide which connections of an input bag a copy holds so that no type has two definitions in it.

    output_types: the types we write next to the copies, in Kilted's definitions; read_topics: topics whose
    messages are read with Kilted's definitions (the images and camera_info). Returns (connection id ->
    definition to copy it with, topic -> why it is not copied). BagError when a read topic is not in a ROS 2
    definition, or a topic keeps its own definition of a type the outputs write in Kilted's. A topic whose
    definition of some type differs from that of a topic copied before it (in connection order) is not copied.
    """
    read_topics = {t for t in read_topics if t is not None}
    reserved = definitions.kilted_types(set(output_types))
    fields = dict(reserved)  # type -> its fields in the output so far
    held = dict.fromkeys(reserved, "our outputs")  # type -> who put it there
    for conn in reader.connections:
        definition = reader.definitions[conn.id]
        if conn.topic in read_topics and not definition.ros2:
            raise BagError(f"cannot read {conn.topic}: {definition.note()}")
    copies: dict[int, Definition] = {}
    skipped: dict[str, str] = {}
    for conn in reader.connections:
        definition = reader.definitions[conn.id]
        if definition.status == UNKNOWN:
            skipped[conn.topic] = definition.reason
            continue
        clash = next((name for name, f in definition.types.items() if name in fields and fields[name] != f), None)
        if clash in reserved:
            raise BagError(f"input topic {conn.topic}: {definition.note()}; the outputs write {clash} in "
                           f"{TYPESTORE_NAME}'s definition and a bag holds one definition per type: convert "
                           f"{conn.topic} first or leave it out")
        if clash is not None:
            skipped[conn.topic] = f"its definition of {clash} differs from that of {held[clash]}, copied first"
            continue
        for name, f in definition.types.items():
            fields.setdefault(name, f)
            held.setdefault(name, conn.topic)
        copies[conn.id] = definition
    return copies, skipped


def definition_notes(reader: BagReader, copies: dict[int, Definition], status: str) -> dict[str, str]:
    """Topic -> note of the copied topics whose definition has `status` (CONVERTED, OWN, ...)."""
    return {c.topic: copies[c.id].note() for c in reader.connections
            if c.id in copies and copies[c.id].status == status}


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
            raise BagError(f"{what} topic {requested} is not in bag {reader.path}; {what} topics: {listing} "
                           f"(choose one with {option})")
        if not types & set(msgtypes):
            raise BagError(f"{what} topic {requested} ({option}) has type {', '.join(sorted(types))}, "
                           f"expected {' or '.join(msgtypes)}")
        return requested
    if len(candidates) == 1:
        return next(iter(candidates))
    if not candidates:
        raise BagError(f"bag {reader.path} has no {what} topic ({' or '.join(msgtypes)})")
    raise BagError(f"bag {reader.path} has several {what} topics, choose one with {option}: {listing}")


DEPTH_ENCODINGS = ("16UC1", "32FC1")


def is_depth_topic(reader: BagReader, topic: str) -> bool:
    """Whether a topic holds depth images (its first message is an Image in 16UC1 or 32FC1)."""
    conns = [c for c in reader.connections if c.topic == topic and c.msgtype == messages.IMAGE
             and reader.definitions[c.id].ros2]  # an image in a definition of its own is not decoded
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


def check_bag(path: Path) -> None:
    """Open and close an input bag (its metadata only), so a wrong path fails before a model loads for seconds."""
    open_reader(path).close()


_NAME_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_namespace(namespace: str, option: str = "--output-namespace") -> str:
    """Return the absolute form of a namespace ('cam' -> '/cam', '/' -> ''); BagError if it is not a ROS name."""
    tokens = namespace.strip("/").split("/") if namespace.strip("/") else []
    if "//" in namespace or not all(_NAME_TOKEN.fullmatch(t) for t in tokens):
        raise BagError(f"invalid {option} {namespace!r}: use a ROS namespace such as /camera or /robot/front "
                       "(letters, digits and _ between slashes, not starting with a digit)")
    return "".join(f"/{t}" for t in tokens)
