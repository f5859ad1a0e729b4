"""bag process on bags whose message definitions differ from ROS 2 Kilted's: one definition per type in the output.

The input bags are written here: ROS 1 bags converted by rosbags-convert with its defaults (they keep `float64[] D`,
`K`, `R`, `P` in sensor_msgs/CameraInfo), and rosbag2 bags mixing definitions. Every output is checked through
two readers that share no code with ours: rosbags' AnyReader (which refuses a bag with two definitions of a type)
and mcap + mcap-ros2-support (mcap files directly, sqlite3 bags through their stored definitions).
"""

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from bag_helpers import INPUT_SIZE, SMALL
from mcap.reader import make_reader
from mcap.records import Schema
from mcap.writer import Writer as McapWriter
from mcap_ros2.decoder import DecoderFactory
from rosbags.convert.commands import command as rosbags_convert
from rosbags.highlevel import AnyReader
from rosbags.interfaces import Nodetype
from rosbags.rosbag1 import Writer as Writer1
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from depth_anything_ros.bag import bagfile, definitions, messages
from depth_anything_ros.bag.bagfile import BagError
from depth_anything_ros.bag.process import ProcessOptions, process_bag
from depth_anything_ros.models.v2.estimator import DepthEstimator

W, H, FRAMES = SMALL["width"], SMALL["height"], 3
STAMP0 = 1_700_000_000_000_000_000
K = (201.5, 0.0, 79.25, 0.0, 203.75, 59.5, 0.0, 0.0, 1.0)
D = (0.011, -0.022, 0.0033, -0.0044, 0.0055)
R = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
P = (201.5, 0.0, 79.25, 0.0, 0.0, 203.75, 59.5, 0.0, 0.0, 0.0, 1.0, 0.0)
K_OTHER = (150.0, 0.0, 80.0, 0.0, 151.0, 60.0, 0.0, 0.0, 1.0)
ROS1 = get_typestore(Stores.ROS1_NOETIC)
OUT = ("/camera/depth", "/camera/depth/camera_info", "/camera/points", "/camera/depth/colored")

# Definition texts as a ROS 2 bag written with other definitions holds them (get_types_from_msg syntax).
SEQ_HEADER = ("=" * 80 + "\nMSG: std_msgs/Header\nuint32 seq\nbuiltin_interfaces/Time stamp\nstring frame_id\n"
              + "=" * 80 + "\nMSG: builtin_interfaces/Time\nint32 sec\nuint32 nanosec\n")
TAGGED = "std_msgs/Header header\nstring label\nfloat64[] values\n" + SEQ_HEADER
COUNT = "int32 count\n"
INT_STRING = "int32 data\n"  # std_msgs/String of a definition Kilted's cannot become (string data)


@pytest.fixture(scope="module")
def estimator(synthetic_vits_checkpoint):
    return DepthEstimator(synthetic_vits_checkpoint, encoder="vits", max_depth=20.0, device="cpu",
                          input_size=INPUT_SIZE)


def images() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(FRAMES)]


def stamp(k: int) -> int:
    return STAMP0 + k * 100_000_000


def store_of(msgdef: str, msgtype: str):
    """Return a typestore holding a definition text's types (the writer of such a bag had these)."""
    store = get_typestore(Stores.EMPTY)
    store.register(get_types_from_msg(msgdef, msgtype))
    return store


def give_own_schema(bag: Path, topic: str, msgdef: str) -> None:
    """Rewrite a bag's mcap file so that `topic` has a schema of its own holding msgdef, named like its type.

    rosbags writes one schema per type; an mcap file has one per channel, e.g. after merging two recordings.
    """
    file = storage_file(bag)
    with file.open("rb") as f:
        records = list(make_reader(f).iter_messages())
    with file.open("wb") as f:
        writer = McapWriter(f)
        writer.start(profile="ros2", library="test_bag_definitions")
        schemas, channels = {}, {}
        for schema, channel, message in records:
            if channel.id not in channels:
                data = msgdef.encode() if channel.topic == topic else schema.data
                if (schema.name, data) not in schemas:
                    schemas[schema.name, data] = writer.register_schema(schema.name, schema.encoding, data)
                channels[channel.id] = writer.register_channel(channel.topic, channel.message_encoding,
                                                               schemas[schema.name, data], channel.metadata)
            writer.add_message(channels[channel.id], message.log_time, message.data, message.publish_time,
                               message.sequence)
        writer.finish()


def write_ros1_bag(path: Path) -> Path:
    """Write a ROS 1 bag (rosbags' ROS1 Noetic types): images, camera_info with D, K, R, P, a std_msgs/String."""
    t = ROS1.types
    with Writer1(path) as writer:
        conns = {topic: writer.add_connection(topic, msgtype, typestore=ROS1) for topic, msgtype in (
            ("/camera/image", messages.IMAGE), ("/camera/camera_info", messages.CAMERA_INFO),
            ("/chatter", "std_msgs/msg/String"))}
        for k, rgb in enumerate(images()):
            sec, nsec = divmod(stamp(k), 1_000_000_000)
            hdr = t["std_msgs/msg/Header"](seq=k, stamp=t["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec),
                                           frame_id="camera_optical")
            image = t[messages.IMAGE](header=hdr, height=H, width=W, encoding="rgb8", is_bigendian=0, step=3 * W,
                                      data=rgb.reshape(-1))
            roi = t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
            info = t[messages.CAMERA_INFO](header=hdr, height=H, width=W, distortion_model="plumb_bob",
                                           D=np.array(D), K=np.array(K), R=np.array(R), P=np.array(P),
                                           binning_x=0, binning_y=0, roi=roi)
            chatter = t["std_msgs/msg/String"](data=f"frame {k}")
            for topic, msg in (("/camera/camera_info", info), ("/camera/image", image), ("/chatter", chatter)):
                writer.write(conns[topic], stamp(k), ROS1.serialize_ros1(msg, conns[topic].msgtype))
    return path


def converted_ros1_bag(tmp_path: Path, storage: str) -> Path:
    """Return the ROS 1 bag converted to rosbag2 by rosbags-convert with its defaults (only the storage chosen)."""
    dst = tmp_path / f"converted_{storage}"
    assert rosbags_convert(srcs=[write_ros1_bag(tmp_path / "in.bag")], dst=dst, dst_storage=storage) == 0
    return dst


def info_message(store, hdr, k: tuple, upper: bool):
    t = store.types
    names = ("D", "K", "R", "P") if upper else ("d", "k", "r", "p")
    roi = t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return t[messages.CAMERA_INFO](header=hdr, height=H, width=W, distortion_model="plumb_bob", binning_x=0,
                                   binning_y=0, roi=roi, **dict(zip(names, map(np.array, (D, k, R, P)), strict=True)))


def write_mixed_bag(path: Path, storage: str) -> Path:
    """Write a rosbag2 bag of mixed definitions.

    Kilted Image; CameraInfo in ROS 1 names with a ROS 1 Header (seq); a type of our own nesting that Header;
    one of our own that Kilted lacks; a std_msgs/String whose data is an int32.
    """
    info_def = ROS1.generate_msgdef(messages.CAMERA_INFO, ros_version=2)[0]
    assert "uint32 seq" in info_def and "float64[9] K" in info_def
    stores = {"info": store_of(info_def, messages.CAMERA_INFO), "tagged": store_of(TAGGED, "test_msgs/msg/Tagged"),
              "count": store_of(COUNT, "test_msgs/msg/Count"), "odd": store_of(INT_STRING, "std_msgs/msg/String")}
    writer = Writer(path, version=9, storage_plugin=StoragePlugin[storage.upper()])
    writer.open()
    image_conn = bagfile.add_topic(writer, "/camera/image", messages.IMAGE)
    conns = {"info": writer.add_connection("/camera/camera_info", messages.CAMERA_INFO, typestore=stores["info"]),
             "tagged": writer.add_connection("/tagged", "test_msgs/msg/Tagged", typestore=stores["tagged"]),
             "count": writer.add_connection("/count", "test_msgs/msg/Count", typestore=stores["count"]),
             "odd": writer.add_connection("/odd", "std_msgs/msg/String", typestore=stores["odd"])}
    for k, rgb in enumerate(images()):
        image = messages.image(messages.header(stamp(k), "camera_optical"),
                               {"height": H, "width": W, "encoding": "rgb8", "is_bigendian": 0, "step": 3 * W,
                                "data": rgb})
        writer.write(image_conn, stamp(k), messages.serialize(image))
        sec, nsec = divmod(stamp(k), 1_000_000_000)
        msgs = {}
        for key in ("info", "tagged"):
            t = stores[key].types
            hdr = t["std_msgs/msg/Header"](seq=100 + k, stamp=t["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec),
                                           frame_id="camera_optical")
            msgs[key] = info_message(stores[key], hdr, K, upper=True) if key == "info" else t["test_msgs/msg/Tagged"](
                header=hdr, label=f"tag {k}", values=np.array([k, 0.5 * k]))
        msgs["count"] = stores["count"].types["test_msgs/msg/Count"](count=10 * k)
        msgs["odd"] = stores["odd"].types["std_msgs/msg/String"](data=-k)
        for key, msg in msgs.items():
            writer.write(conns[key], stamp(k), stores[key].serialize_cdr(msg, conns[key].msgtype))
    writer.close()
    return path


def storage_file(bag: Path) -> Path:
    return next(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))


def ros2_decoded(bag: Path) -> tuple[dict[str, list], dict[str, str]]:
    """Decode every topic with mcap-ros2-support: (topic -> messages, topic -> why it does not decode).

    mcap files are read with mcap's reader; sqlite3 bags with each type's stored definition as a schema.
    """
    factory, decoded, failed = DecoderFactory(), {}, {}
    file = storage_file(bag)
    if file.suffix == ".mcap":
        with file.open("rb") as f:
            reader = make_reader(f)
            for schema, channel, message in reader.iter_messages():
                stream = [(channel.topic, schema, message.data)]
                _decode(factory, stream, decoded, failed)
        return decoded, failed
    db = sqlite3.connect(file)
    try:
        rows = db.execute("SELECT id, topic_type, encoding, encoded_message_definition FROM message_definitions")
        defs = {name: Schema(id=i, name=name, encoding=enc, data=text.encode()) for i, name, enc, text in rows}
        rows = db.execute("SELECT topics.name, topics.type, messages.data FROM messages JOIN topics ON "
                          "topics.id = messages.topic_id ORDER BY messages.timestamp")
        _decode(factory, [(topic, defs[msgtype], data) for topic, msgtype, data in rows], decoded, failed)
    finally:
        db.close()
    return decoded, failed


def _decode(factory, stream, decoded: dict, failed: dict) -> None:
    for topic, schema, data in stream:
        if topic in failed:
            continue
        try:
            decoded.setdefault(topic, []).append(factory.decoder_for("cdr", schema)(data))
        except Exception as exc:  # noqa: BLE001 - any failure of the foreign decoder is the finding
            failed[topic] = f"{type(exc).__name__}: {exc}"
            decoded.pop(topic, None)


def any_decoded(bag: Path) -> dict[str, list]:
    """Topic -> messages, read with rosbags' AnyReader (it raises on two definitions of one type)."""
    out: dict[str, list] = {}
    with AnyReader([bag]) as reader:
        for conn, _, raw in reader.messages():
            out.setdefault(conn.topic, []).append(reader.deserialize(raw, conn.msgtype))
    return out


def raw_messages(bag: Path) -> dict[str, list[bytes]]:
    """Topic -> stored bytes, with rosbags' plain Reader (no conversion)."""
    out: dict[str, list[bytes]] = {}
    with Reader(bag) as reader:
        for conn, _, raw in reader.messages():
            out.setdefault(conn.topic, []).append(bytes(raw))
    return out


def assert_one_definition_per_type(bag: Path) -> dict[str, str]:
    """Every type, nested ones included, has one definition (fields) and one hash in the bag; type -> text."""
    fields, texts, digests = {}, {}, {}
    with Reader(bag) as reader:
        for conn in reader.connections:
            texts.setdefault(conn.msgtype, set()).add(conn.msgdef.data)
            digests.setdefault(conn.msgtype, set()).add(conn.digest)
            for name, (_, f) in get_types_from_msg(conn.msgdef.data, conn.msgtype).items():
                fields.setdefault(name, set()).add(repr(f))
    for table in (fields, texts, digests):
        assert {name: len(v) for name, v in table.items() if len(v) != 1} == {}
    if storage_file(bag).suffix == ".mcap":
        with storage_file(bag).open("rb") as f:
            schemas = make_reader(f).get_summary().schemas.values()
        names = [s.name for s in schemas]
        assert len(names) == len(set(names)), names
    return {msgtype: text.pop() for msgtype, text in texts.items()}


def assert_ros2_decodes_what_the_input_did(src: Path, out: Path) -> dict[str, list]:
    """Every output topic decodes with mcap-ros2-support, among them every input topic that did."""
    before, _ = ros2_decoded(src)
    after, failed = ros2_decoded(out)
    assert failed == {}
    assert set(before) <= set(after)
    return after


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_ros1_converted_bag_gets_the_ros2_camera_info(tmp_path, estimator, storage):
    src = converted_ros1_bag(tmp_path, storage)
    with Reader(src) as reader:  # what rosbags-convert keeps: the ROS 1 names
        info_def = next(c.msgdef.data for c in reader.connections if c.topic == "/camera/camera_info")
    assert "float64[] D\nfloat64[9] K\nfloat64[9] R\nfloat64[12] P" in info_def
    assert set(any_decoded(src)) == {"/camera/image", "/camera/camera_info", "/chatter"}  # the input opens
    _, input_failed = ros2_decoded(src)
    assert set(input_failed) == {"/camera/camera_info"} and "'D' is an invalid field name" in input_failed[
        "/camera/camera_info"]

    summary = process_bag(src, tmp_path / "out", estimator, ProcessOptions(storage=storage, progress=False))
    assert summary.frames_done == FRAMES
    assert summary.converted == {"/camera/camera_info": "sensor_msgs/msg/CameraInfo converted to the ROS 2 Kilted "
                                                        "definition (D -> d, K -> k, R -> r, P -> p)"}
    assert (summary.kept, summary.not_copied) == ({}, {})
    assert f"  /camera/camera_info: {summary.converted['/camera/camera_info']}" in summary.text()

    out = tmp_path / "out"
    texts = assert_one_definition_per_type(out)
    assert texts[messages.CAMERA_INFO] == messages.definition(messages.CAMERA_INFO)[0]
    raw_in, raw_out = raw_messages(src), raw_messages(out)
    for topic in ("/camera/image", "/camera/camera_info", "/chatter"):  # same wire format: bytes unchanged
        assert raw_out[topic] == raw_in[topic]
    rgb = images()
    for decoded in (any_decoded(out), assert_ros2_decodes_what_the_input_did(src, out)):
        assert set(decoded) == {"/camera/image", "/camera/camera_info", "/chatter", *OUT}
        for topic in ("/camera/camera_info", "/camera/depth/camera_info"):
            infos = decoded[topic]
            assert len(infos) == FRAMES
            for k, info in enumerate(infos):
                assert (tuple(info.k), tuple(info.d), tuple(info.r), tuple(info.p)) == (K, D, R, P)
                assert (info.header.stamp.sec * 10**9 + info.header.stamp.nanosec, info.header.frame_id) == (
                    stamp(k), "camera_optical")
        assert [bytes(m.data) for m in decoded["/camera/image"]] == [x.tobytes() for x in rgb]
        assert [m.data for m in decoded["/chatter"]] == [f"frame {k}" for k in range(FRAMES)]
        assert [len(m.data) for m in decoded["/camera/depth"]] == [4 * W * H] * FRAMES


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_mixing_definitions(tmp_path, estimator, storage):
    src = write_mixed_bag(tmp_path / "in", storage)
    summary = process_bag(src, tmp_path / "out", estimator, ProcessOptions(storage=storage, progress=False))
    assert summary.frames_done == FRAMES
    assert summary.converted == {
        "/camera/camera_info": "sensor_msgs/msg/CameraInfo converted to the ROS 2 Kilted definition "
                               "(header.seq dropped, D -> d, K -> k, R -> r, P -> p)",
        "/tagged": "test_msgs/msg/Tagged converted to the ROS 2 Kilted definition (header.seq dropped)"}
    assert summary.kept == {"/odd": "std_msgs/msg/String kept in the bag's own definition: field data is int32 in "
                                    "the bag, string in ROS 2 Kilted, so it cannot become ROS 2 Kilted's"}
    assert summary.not_copied == {}
    assert "  /odd: std_msgs/msg/String kept in the bag's own definition" in summary.text()

    out = tmp_path / "out"
    texts = assert_one_definition_per_type(out)
    assert texts["std_msgs/msg/String"] == INT_STRING and texts["test_msgs/msg/Count"] == COUNT
    assert "seq" not in texts["test_msgs/msg/Tagged"] and "string label" in texts["test_msgs/msg/Tagged"]
    raw_in, raw_out = raw_messages(src), raw_messages(out)
    assert raw_out["/camera/camera_info"] != raw_in["/camera/camera_info"]  # re-serialized without seq
    for topic in ("/camera/image", "/count", "/odd"):
        assert raw_out[topic] == raw_in[topic]
    for decoded in (any_decoded(out), assert_ros2_decodes_what_the_input_did(src, out)):
        assert set(decoded) == {"/camera/image", "/camera/camera_info", "/tagged", "/count", "/odd", *OUT}
        for topic in ("/camera/camera_info", "/camera/depth/camera_info"):  # the pipeline read the converted one
            for k, info in enumerate(decoded[topic]):
                assert (tuple(info.k), tuple(info.d), tuple(info.p)) == (K, D, P)
                assert info.header.stamp.sec * 10**9 + info.header.stamp.nanosec == stamp(k)
        assert [(m.label, list(m.values), m.header.stamp.nanosec, m.header.frame_id) for m in decoded["/tagged"]] == [
            (f"tag {k}", [k, 0.5 * k], stamp(k) % 10**9, "camera_optical") for k in range(FRAMES)]
        assert [m.count for m in decoded["/count"]] == [0, 10, 20]
        assert [m.data for m in decoded["/odd"]] == [0, -1, -2]


def two_camera_infos_bag(path: Path, other_def: str) -> Path:
    """Write an mcap bag: /camera/image, /camera/camera_info (Kilted, K), /other/camera_info (other_def, K_OTHER)."""
    writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    image_conn = bagfile.add_topic(writer, "/camera/image", messages.IMAGE)
    info_conn = bagfile.add_topic(writer, "/camera/camera_info", messages.CAMERA_INFO)
    other = store_of(other_def, messages.CAMERA_INFO)
    other_conn = writer.add_connection("/other/camera_info", messages.CAMERA_INFO, msgdef=other_def,
                                       rihs01=other.hash_rihs01(messages.CAMERA_INFO))
    for k, rgb in enumerate(images()):
        hdr = messages.header(stamp(k), "camera_optical")
        image = messages.image(hdr, {"height": H, "width": W, "encoding": "rgb8", "is_bigendian": 0, "step": 3 * W,
                                     "data": rgb})
        writer.write(image_conn, stamp(k), messages.serialize(image))
        writer.write(info_conn, stamp(k), messages.serialize(info_message(messages.TYPESTORE, hdr, K, upper=False)))
        t = other.types
        sec, nsec = divmod(stamp(k), 1_000_000_000)
        other_hdr = t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec),
                                             frame_id="camera_optical")
        matrices = {}
        for name, desc in other.fielddefs[messages.CAMERA_INFO][1]:
            value = {"d": D, "k": K_OTHER, "r": R, "p": P}.get(name.lower())
            if value is not None:  # a string field gets the numbers as text
                matrices[name] = " ".join(map(str, value)) if desc[0] == Nodetype.BASE else np.array(value)
        roi = t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
        msg = t[messages.CAMERA_INFO](header=other_hdr, height=H, width=W, distortion_model="plumb_bob", binning_x=0,
                                      binning_y=0, roi=roi, **matrices)
        writer.write(other_conn, stamp(k), other.serialize_cdr(msg, messages.CAMERA_INFO))
    writer.close()
    give_own_schema(path, "/other/camera_info", other_def)
    return path


ROS1_INFO = ROS1.generate_msgdef(messages.CAMERA_INFO, ros_version=2)[0].replace(
    "uint32 seq\n", "")  # ROS 1 names, ROS 2 Header: what rosbags-convert writes
STRING_K_INFO = messages.definition(messages.CAMERA_INFO)[0].replace("float64[9] k\n", "string k\n")


def test_one_type_with_two_definitions_in_the_input(tmp_path, estimator):
    assert "float64[9] K" in ROS1_INFO and "seq" not in ROS1_INFO
    src = two_camera_infos_bag(tmp_path / "in", ROS1_INFO)
    with storage_file(src).open("rb") as f:  # the input holds two schemas named sensor_msgs/msg/CameraInfo
        summary = make_reader(f).get_summary()
    schemas = {c.topic: summary.schemas[c.schema_id] for c in summary.channels.values()}
    assert schemas["/other/camera_info"].name == schemas["/camera/camera_info"].name == messages.CAMERA_INFO
    assert schemas["/other/camera_info"].data.decode() == ROS1_INFO
    assert schemas["/camera/camera_info"].data.decode() == messages.definition(messages.CAMERA_INFO)[0]
    summary = process_bag(src, tmp_path / "out", estimator,
                          ProcessOptions(camera_info_topic="/other/camera_info", progress=False))
    assert list(summary.converted) == ["/other/camera_info"] and summary.not_copied == {}
    out = tmp_path / "out"
    assert_one_definition_per_type(out)
    for decoded in (any_decoded(out), assert_ros2_decodes_what_the_input_did(src, out)):
        assert [tuple(m.k) for m in decoded["/camera/camera_info"]] == [K] * FRAMES
        assert [tuple(m.k) for m in decoded["/other/camera_info"]] == [K_OTHER] * FRAMES
        assert [tuple(m.k) for m in decoded["/camera/depth/camera_info"]] == [K_OTHER] * FRAMES  # the one chosen


def test_a_definition_that_cannot_be_converted(tmp_path, estimator):
    src = two_camera_infos_bag(tmp_path / "in", STRING_K_INFO)
    with pytest.raises(BagError, match=r"input topic /other/camera_info: sensor_msgs/msg/CameraInfo kept in the "
                                       r"bag's own definition: field k is string in the bag, float64\[9\] in ROS 2 "
                                       r"Kilted.*the outputs write sensor_msgs/msg/CameraInfo in ROS 2 Kilted's "
                                       r"definition and a bag holds one definition per type"):
        process_bag(src, tmp_path / "out", estimator, ProcessOptions(camera_info_topic="/camera/camera_info",
                                                                     progress=False))
    with pytest.raises(BagError, match=r"cannot read /other/camera_info: sensor_msgs/msg/CameraInfo kept in the "
                                       r"bag's own definition: field k is string"):
        process_bag(src, tmp_path / "out2", estimator, ProcessOptions(camera_info_topic="/other/camera_info",
                                                                      outputs=("depth",), progress=False))
    assert not (tmp_path / "out").exists() and not (tmp_path / "out2").exists()

    # Without CameraInfo among the outputs the topic copied first keeps the type's one definition.
    summary = process_bag(src, tmp_path / "depth_only", estimator,
                          ProcessOptions(camera_info_topic="/camera/camera_info", outputs=("depth", "colored"),
                                         progress=False))
    assert summary.not_copied == {"/other/camera_info": "its definition of sensor_msgs/msg/CameraInfo differs from "
                                                        "that of /camera/camera_info, copied first"}
    assert "  not copied: /other/camera_info (its definition" in summary.text()
    decoded = any_decoded(tmp_path / "depth_only")
    assert set(decoded) == {"/camera/image", "/camera/camera_info", "/camera/depth", "/camera/depth/colored"}
    assert_one_definition_per_type(tmp_path / "depth_only")


def test_a_writer_refuses_a_second_definition_of_a_type(tmp_path):
    src = two_camera_infos_bag(tmp_path / "in", STRING_K_INFO)
    reader = bagfile.open_reader(src)
    try:
        other = next(c for c in reader.connections if c.topic == "/other/camera_info")
        definition = reader.definitions[other.id]
        assert (definition.status, definition.msgdef) == (definitions.OWN, STRING_K_INFO)
        writer = bagfile.open_writer(tmp_path / "out")
        try:
            bagfile.copy_topic(writer, other, definition)
            with pytest.raises(BagError, match="cannot add /camera/depth/camera_info: /other/camera_info holds "
                                               "another definition of sensor_msgs/msg/CameraInfo"):
                bagfile.add_topic(writer, "/camera/depth/camera_info", messages.CAMERA_INFO)
        finally:
            writer.close()
    finally:
        reader.close()
