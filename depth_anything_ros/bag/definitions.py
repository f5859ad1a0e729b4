"""A bag's message definitions against ROS 2 Kilted's, and conversion of messages to them (rosbags, no rclpy).

A rosbag2 bag stores one definition per connection (sqlite3: per type, with a hash per topic; mcap: a schema per
channel). ROS 1 bags converted with `rosbags-convert` keep the ROS 1 field names (`float64[] D`, `K`, `R`, `P` in
sensor_msgs/CameraInfo), bags of other distributions or tools may differ too. `describe` compares the definition
of one connection, type by type (the top type and every nested one), with TYPESTORE's, by their fields (what the
RIHS01 hash covers), and says how its messages become ROS 2 Kilted ones:

- SAME: the fields are Kilted's (or, for a type Kilted lacks, the bag's own with Kilted's nested types): raw bytes.
- CONVERTED: Kilted knows some of its types with other fields; rosbags' converter rule (rosbags.convert, the
  `--dst-typestore` migration) maps them: same names first, then a removed field to an added one of the same
  type (D -> d), dropped fields go, added ones get default values. Raw bytes when the wire format and field order
  are unchanged (the ROS 1 CameraInfo), else deserialized with the bag's definition and serialized with Kilted's.
- OWN: a field cannot be mapped (e.g. a string that would become float64[9]): the bag's definition is kept.
- ASSUMED: the bag holds no definition of a type TYPESTORE has (older sqlite3 bags): taken as Kilted's.
- UNKNOWN: no usable definition at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

from rosbags.convert.converter import migrate_message
from rosbags.interfaces import Connection, MessageDefinitionFormat, Nodetype
from rosbags.typesys import Stores, TypesysError, get_types_from_idl, get_types_from_msg, get_typestore

from depth_anything_ros.bag import messages
from depth_anything_ros.bag.messages import TYPESTORE, TYPESTORE_NAME

SAME, CONVERTED, OWN, ASSUMED, UNKNOWN = "same", "converted", "own", "assumed", "unknown"
_IDL_SEPARATOR = "=" * 80 + "\n"

Fields = tuple  # frozen ((name, field description), ...) of one type
Typedef = tuple  # frozen (constants, fields) of one type, as rosbags' Typesdict values


@dataclass(frozen=True)
class Definition:
    """How the messages of one input connection read as ROS 2 Kilted ones and what a copy of them is written with."""

    msgtype: str
    status: str  # SAME, CONVERTED, OWN, ASSUMED or UNKNOWN
    msgdef: str = ""  # definition text to write the copied topic with ('' for UNKNOWN)
    digest: str = ""  # its RIHS01 hash
    types: Mapping[str, Fields] = field(default_factory=dict)  # every type msgdef holds -> its fields
    changes: tuple[str, ...] = ()  # CONVERTED: what changed, e.g. "D -> d", "header.seq dropped"
    reason: str = ""  # OWN and UNKNOWN: why
    convert: Callable[[bytes | memoryview], bytes] | None = None  # raw bytes -> written bytes; None: unchanged

    @property
    def ros2(self) -> bool:
        """Whether its messages, after `convert`, are in a ROS 2 definition: Kilted's for every type Kilted has."""
        return self.status in (SAME, CONVERTED, ASSUMED)

    def note(self) -> str:
        """One line for summaries: what was done to the type's definition."""
        if self.status == CONVERTED:
            return f"{self.msgtype} converted to the {TYPESTORE_NAME} definition ({', '.join(self.changes)})"
        if self.status == OWN:
            return f"{self.msgtype} kept in the bag's own definition: {self.reason}"
        if self.status == ASSUMED:
            return f"{self.msgtype} has no definition in the bag; taken as {TYPESTORE_NAME}'s"
        if self.status == UNKNOWN:
            return self.reason
        return f"{self.msgtype} in the {TYPESTORE_NAME} definition" if self.msgtype in TYPESTORE.fielddefs else (
            f"{self.msgtype} in the bag's definition")


class _Unmappable(ValueError):
    """A field of the bag's definition that rosbags' converter would replace by a default value."""


def describe(conn: Connection) -> Definition:
    """How the messages of an input connection become ROS 2 Kilted ones (see the module docstring)."""
    msgtype = conn.msgtype
    if conn.msgdef.format == MessageDefinitionFormat.NONE or not conn.msgdef.data:
        if msgtype not in TYPESTORE.fielddefs:
            return Definition(msgtype, UNKNOWN, reason=f"type {msgtype} has no definition in the bag")
        msgdef, digest = messages.definition(msgtype)
        if conn.digest and conn.digest != digest:
            return Definition(msgtype, UNKNOWN, reason=f"type {msgtype} has no definition in the bag and its hash "
                                                       f"{conn.digest} is not {TYPESTORE_NAME}'s {digest}")
        return Definition(msgtype, ASSUMED, msgdef, digest, _fields(_closure(_kilted(), msgtype)))
    try:
        bag = _closure(_parse(conn), msgtype)
        src = _store(bag)
        bag_digest = src.hash_rihs01(msgtype)
    except (TypesysError, KeyError, ValueError) as exc:
        return Definition(msgtype, UNKNOWN, reason=f"the bag's definition of {msgtype} cannot be read: {exc}")
    kilted = _kilted()
    if conn.digest and conn.digest != bag_digest:  # the definition text is another topic's (sqlite3 keeps one)
        if msgtype in kilted and conn.digest == messages.definition(msgtype)[1]:
            return Definition(msgtype, SAME, *messages.definition(msgtype), _fields(_closure(kilted, msgtype)))
        return Definition(msgtype, UNKNOWN, reason=f"the bag's definition of {msgtype} has hash {bag_digest}, "
                                                   f"not the topic's {conn.digest}")
    target = {name: typedef for name, typedef in bag.items() if name not in kilted}
    for name in bag:
        if name in kilted:
            target.update(_closure(kilted, name))
    if all(name in target and target[name][1] == typedef[1] for name, typedef in bag.items()):
        if msgtype in kilted:
            msgdef, digest = messages.definition(msgtype)
        else:
            msgdef, digest = conn.msgdef.data, bag_digest
        return Definition(msgtype, SAME, msgdef, digest, _fields(bag))
    try:
        changes = tuple(_changes(bag, target, msgtype, msgtype, ""))
    except _Unmappable as exc:
        return Definition(msgtype, OWN, conn.msgdef.data, bag_digest, _fields(bag),
                          reason=f"{exc}, so it cannot become {TYPESTORE_NAME}'s")
    dst = _store(target)
    convert = None if _passthrough(bag, target, msgtype, msgtype) else partial(_migrate, src, dst, msgtype, {})
    if msgtype in kilted:
        msgdef, digest = messages.definition(msgtype)
    else:
        msgdef, digest = dst.generate_msgdef(msgtype, ros_version=2)[0], dst.hash_rihs01(msgtype)
    return Definition(msgtype, CONVERTED, msgdef, digest, _fields(_closure(target, msgtype)), changes,
                      convert=convert)


def kilted_types(msgtypes: tuple[str, ...] | list[str] | set[str]) -> dict[str, Fields]:
    """Every type (nested ones too) of TYPESTORE's definitions of msgtypes -> its fields."""
    out: dict[str, Fields] = {}
    for msgtype in msgtypes:
        out.update(_fields(_closure(_kilted(), msgtype)))
    return out


def _fields(types: Mapping[str, Typedef]) -> dict[str, Fields]:
    return {name: typedef[1] for name, typedef in types.items()}


def _migrate(src: object, dst: object, msgtype: str, cache: dict, raw: bytes | memoryview) -> bytes:
    """CDR bytes in the bag's definition -> CDR bytes in the target's (rosbags.convert.converter.migrate_message)."""
    msg = src.deserialize_cdr(raw, msgtype)
    return bytes(dst.serialize_cdr(migrate_message(src, dst, msgtype, msgtype, cache, msg), msgtype))


def _parse(conn: Connection) -> dict:
    """Typesdict of a connection's definition text (ros2msg or ros2idl), as rosbags' AnyReader reads it."""
    text = conn.msgdef.data
    if conn.msgdef.format == MessageDefinitionFormat.MSG:
        return get_types_from_msg(text, conn.msgtype)
    typs: dict = {}
    if text.startswith(f"{_IDL_SEPARATOR}IDL: "):
        for part in text.split(_IDL_SEPARATOR)[1:]:
            typs.update(get_types_from_idl(part.split("\n", 1)[1]))
    else:
        typs.update(get_types_from_idl(text))
    return typs


_KILTED: dict[str, Typedef] = {}


def _kilted() -> dict[str, Typedef]:
    """TYPESTORE's types -> frozen (constants, fields)."""
    if not _KILTED:
        _KILTED.update({name: _freeze(value) for name, value in TYPESTORE.fielddefs.items()})
    return _KILTED


def _freeze(value: object) -> object:
    """Nested lists -> tuples, so field descriptions compare and hash."""
    return tuple(_freeze(v) for v in value) if isinstance(value, (list, tuple)) else value


def _nested(desc: tuple) -> str | None:
    """Type name a field description refers to (directly or as array/sequence element), else None."""
    kind, rest = desc
    if kind == Nodetype.NAME:
        return rest
    if kind in (Nodetype.ARRAY, Nodetype.SEQUENCE) and rest[0][0] == Nodetype.NAME:
        return rest[0][1]
    return None


def _closure(types: Mapping, msgtype: str) -> dict[str, Typedef]:
    """Map msgtype and every type it nests to frozen (constants, fields); KeyError naming a type not defined."""
    out: dict[str, Typedef] = {}
    todo = [msgtype]
    while todo:
        name = todo.pop()
        if name in out:
            continue
        if name not in types:
            raise KeyError(f"type {name} is used but not defined")
        out[name] = _freeze(types[name][:2])
        todo += [sub for _, desc in out[name][1] if (sub := _nested(desc)) is not None]
    return out


def _store(types: Mapping[str, Typedef]) -> object:
    """Return a typestore of its own holding exactly these types (the bag's names may differ from Kilted's)."""
    store = get_typestore(Stores.EMPTY)
    store.register({name: (list(consts), list(fields)) for name, (consts, fields) in types.items()})
    return store


def _plan(src: Fields, dst: Fields) -> list[tuple[str, tuple, str | None, tuple | None]]:
    """Return rosbags' migration plan (rosbags.convert.converter): per destination field, its source or None."""
    src_map, dst_map = dict(src), dict(dst)
    source = {name: name for name in dst_map if name in src_map}
    removed = [name for name, _ in src if name not in dst_map]
    for name, desc in dst:
        if name in source:
            continue
        source[name] = next((r for r in removed if src_map[r] == desc), None)
        if source[name] is not None:
            removed.remove(source[name])
    return [(name, desc, source[name], src_map.get(source[name] or "")) for name, desc in dst]


def _type_text(desc: tuple) -> str:
    kind, rest = desc
    if kind == Nodetype.BASE:
        return rest[0]
    if kind == Nodetype.NAME:
        return rest
    sub, size = rest
    return f"{_type_text(sub)}[{size if kind == Nodetype.ARRAY else f'<={size}' if size else ''}]"


def _changes(src: Mapping, dst: Mapping, src_type: str, dst_type: str, prefix: str) -> list[str]:
    """List what rosbags' converter changes from src_type to dst_type; _Unmappable for a field it would lose."""
    out: list[str] = []
    plan = _plan(src[src_type][1], dst[dst_type][1])
    for name, desc, src_name, src_desc in plan:
        path = f"{prefix}{name}"
        if src_name is None:
            out.append(f"{path} added (default value)")
            continue
        if src_name != name:
            out.append(f"{prefix}{src_name} -> {name}")
        out += _field_changes(src, dst, src_desc, desc, path)
    used = {src_name for _, _, src_name, _ in plan}
    dst_names = {name.lower(): desc for name, desc in dst[dst_type][1]}
    for name, desc in src[src_type][1]:
        if name not in used and name.lower() in dst_names:  # K (string) is no source of k, nor R of k
            raise _Unmappable(f"field {prefix}{name} is {_type_text(desc)} in the bag, "
                              f"{_type_text(dst_names[name.lower()])} in {TYPESTORE_NAME}")
        if name not in used:
            out.append(f"{prefix}{name} dropped")
    return out


def _field_changes(src: Mapping, dst: Mapping, s: tuple, d: tuple, path: str) -> list[str]:
    lost = _Unmappable(f"field {path} is {_type_text(s)} in the bag, {_type_text(d)} in {TYPESTORE_NAME}")
    is_string = lambda desc: desc[1][0] == "string"  # noqa: E731
    if d[0] == Nodetype.BASE:
        if s[0] != Nodetype.BASE or is_string(s) != is_string(d):
            raise lost
        return [] if s[1][0] == d[1][0] else [f"{path}: {s[1][0]} -> {d[1][0]}"]
    if d[0] == Nodetype.NAME:
        if s[0] != Nodetype.NAME:
            raise lost
        return _changes(src, dst, s[1], d[1], f"{path}.")
    if s[0] not in (Nodetype.ARRAY, Nodetype.SEQUENCE):
        raise lost
    ss, ds = s[1][0], d[1][0]
    if ss[0] != ds[0] or (ds[0] == Nodetype.BASE and is_string(ss) != is_string(ds)):
        raise lost
    out = [] if _type_text(s) == _type_text(d) else [f"{path}: {_type_text(s)} -> {_type_text(d)}"]
    if ds[0] == Nodetype.NAME:
        out += _changes(src, dst, ss[1], ds[1], f"{path}[].")
    return out


def _passthrough(src: Mapping, dst: Mapping, src_type: str, dst_type: str) -> bool:
    """Whether rosbags' conversion leaves the CDR bytes as they are.

    It does when each field maps to the one at its position with the same wire type (names may differ), recursively.
    """
    src_fields = src[src_type][1]
    plan = _plan(src_fields, dst[dst_type][1])
    if len(plan) != len(src_fields):
        return False
    for (_, d, src_name, s), (name, _) in zip(plan, src_fields, strict=True):
        if src_name != name or not _same_wire(src, dst, s, d):
            return False
    return True


def _same_wire(src: Mapping, dst: Mapping, s: tuple, d: tuple) -> bool:
    if s[0] != d[0]:
        return False
    if d[0] == Nodetype.BASE:
        return s[1] == d[1]
    if d[0] == Nodetype.NAME:
        return _passthrough(src, dst, s[1], d[1])
    return s[1][1] == d[1][1] and _same_wire(src, dst, s[1][0], d[1][0])
