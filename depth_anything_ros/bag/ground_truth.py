"""Ground-truth depth in a bag: decoding it, pairing it with images by header stamp, checking it is their camera's.

Used by bag evaluate and train.
"""

from __future__ import annotations

import bisect

import cv2
import numpy as np

from depth_anything_ros.bag import bagfile, messages
from depth_anything_ros.bag.bagfile import BagError
from depth_anything_ros.frame import image_codec
from depth_anything_ros.frame.camera import Intrinsics, IntrinsicsError


def pair_stamps(pred: list[int], gt: list[int], tolerance_ns: int) -> dict[int, int]:
    """Prediction stamp -> nearest ground-truth stamp within tolerance (stamps in ns)."""
    gt = sorted(set(gt))
    pairs = {}
    for s in set(pred):
        i = bisect.bisect_left(gt, s)
        near = [g for g in gt[max(i - 1, 0): i + 1] if abs(g - s) <= tolerance_ns]
        if near:
            pairs[s] = min(near, key=lambda g: abs(g - s))
    return pairs


def read_stamps(reader: object, topics: set[str]) -> dict[str, list[int]]:
    """Header stamps (ns) of every message of the topics, in log-time order."""
    conns = [c for c in reader.connections if c.topic in topics]
    stamps: dict[str, list[int]] = {t: [] for t in topics}
    for conn, _, raw in reader.messages(connections=conns):
        stamps[conn.topic].append(messages.header_stamp(raw))
    return stamps


def paired_stamps(stamps: dict[str, list[int]], source: str, gt_topic: str, tolerance_s: float) -> dict[int, int]:
    """Source stamp -> ground-truth stamp (pair_stamps); BagError saying what to try when nothing pairs."""
    pairs = pair_stamps(stamps[source], stamps[gt_topic], round(tolerance_s * 1e9))
    if not pairs:
        raise BagError(f"no message of {source} has a ground-truth message on {gt_topic} with the same stamp "
                       f"(tolerance {tolerance_s:g} s); try --stamp-tolerance")
    return pairs


def gt_depth(raw: bytes | memoryview, msgtype: str, topic: str) -> np.ndarray:
    """(H, W) float32 metres (NaN invalid) of a ground-truth depth message (16UC1 mm or 32FC1 m); BagError else."""
    if msgtype != messages.IMAGE:
        raise BagError(f"depth topic {topic} has type {msgtype}, expected {messages.IMAGE} (16UC1 or 32FC1)")
    try:
        return image_codec.depth_from_image(messages.deserialize(raw, msgtype))
    except image_codec.ImageDecodeError as exc:
        raise BagError(f"{topic}: {exc}") from exc


def resize_to_gt(pred: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Prediction (H,W) resized (bilinear) to the ground truth's (h,w), as the official evaluation does."""
    return pred if pred.shape == tuple(shape) else cv2.resize(pred, (shape[1], shape[0]),
                                                              interpolation=cv2.INTER_LINEAR)


def camera_mismatch(reader: object, image_topic: str | None, gt_topic: str) -> list[str]:
    """Warnings when the ground truth looks like another camera's: another frame_id or other intrinsics."""
    if image_topic is None:
        return []
    first = {}
    for topic in (image_topic, gt_topic):
        conns = [c for c in reader.connections if c.topic == topic]
        for conn, _, raw in reader.messages(connections=conns):
            first[topic] = messages.deserialize(raw, conn.msgtype)
            break
    if len(first) < 2:
        return []
    warnings = []
    image_frame, gt_frame = first[image_topic].header.frame_id, first[gt_topic].header.frame_id
    if image_frame != gt_frame:
        warnings.append(f"ground truth {gt_topic} is in frame '{gt_frame}' but the images are in '{image_frame}': "
                        "if the depth is not aligned to the colour camera, every metric compares other pixels")
    infos = {}
    for topic in (image_topic, gt_topic):
        info_topic = f"{bagfile.namespace_of(topic)}/camera_info"
        conns = [c for c in reader.connections if c.topic == info_topic and c.msgtype == messages.CAMERA_INFO]
        for conn, _, raw in reader.messages(connections=conns):
            infos[topic] = messages.deserialize(raw, conn.msgtype)
            break
    if len(infos) == 2 and bagfile.namespace_of(image_topic) != bagfile.namespace_of(gt_topic):
        try:
            gt = Intrinsics.from_camera_info(infos[gt_topic])
            image = Intrinsics.from_camera_info(infos[image_topic]).scaled_to(gt.width, gt.height)
        except IntrinsicsError as exc:
            return [*warnings, f"cannot compare the intrinsics of the images and the ground truth: {exc}"]
        if max(abs(image.fx - gt.fx) / gt.fx, abs(image.fy - gt.fy) / gt.fy) > 0.01 or \
                max(abs(image.cx - gt.cx), abs(image.cy - gt.cy)) > 1.0:
            warnings.append(f"the ground truth's camera_info (fx {gt.fx:.1f}, cx {gt.cx:.1f}) differs from the "
                            f"images' (fx {image.fx:.1f}, cx {image.cx:.1f} at the same size): the depth seems to "
                            "come from another camera; record depth aligned to the colour image")
    return warnings
