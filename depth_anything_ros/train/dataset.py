"""Training frames from rosbags and RGB-D datasets: images with their ground-truth depth, split, cached.

Datasets (datasets/registry.py) keep their official split where they have one (train vs test/val samples), else
their last --val-percent % of samples validate, as the last frames in time of the bags do.

Pairing, topic choice, ground-truth decoding and their errors are `bag evaluate`'s (bag/evaluate.py); the size rule
is the reference-depth one of `bag process --scale-reference` (scale.reference_pixels: the image's size or a
uniform resize of it). Each bag is decoded once: frames stay in memory up to the cache budget and the rest are
kept as uncompressed .npy files in a temporary folder, so no epoch decodes a bag again.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from depth_anything_ros.bag import bagfile, messages
from depth_anything_ros.bag.bagfile import BagError
from depth_anything_ros.bag.frames import read_frame
from depth_anything_ros.bag.ground_truth import gt_depth, paired_stamps, read_stamps
from depth_anything_ros.datasets.base import Dataset
from depth_anything_ros.datasets.registry import open_dataset
from depth_anything_ros.frame.metrics import MIN_VALID_PIXELS, valid_mask
from depth_anything_ros.frame.pipeline import rgb8_of_message
from depth_anything_ros.frame.scale import ReferenceSizeError, reference_pixels


@dataclass(frozen=True)
class PairedFrame:
    """One image with its ground truth: rgb (H,W,3) uint8, gt (h,w) float32 metres, NaN invalid."""

    bag: str
    stamp: int  # image header stamp, ns
    rgb: np.ndarray
    gt: np.ndarray


class FrameCache:
    """Frames in memory up to `budget_bytes`, the rest as .npy files in a temporary folder; indexable."""

    def __init__(self, budget_bytes: int):
        self.budget = int(budget_bytes)
        self.memory_bytes = 0
        self._items: list[PairedFrame | tuple[str, int, Path]] = []
        self._dir: tempfile.TemporaryDirectory | None = None

    def add(self, frame: PairedFrame) -> None:
        """Keep a frame (in memory while the budget lasts, else on disk)."""
        size = frame.rgb.nbytes + frame.gt.nbytes
        if self.memory_bytes + size <= self.budget:
            self.memory_bytes += size
            self._items.append(frame)
            return
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="depth_anything_train_")
        base = Path(self._dir.name) / str(len(self._items))
        np.save(f"{base}_rgb.npy", frame.rgb)
        np.save(f"{base}_gt.npy", frame.gt)
        self._items.append((frame.bag, frame.stamp, base))

    @property
    def on_disk(self) -> int:
        """Number of frames kept on disk."""
        return sum(1 for item in self._items if not isinstance(item, PairedFrame))

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> PairedFrame:
        item = self._items[index]
        if isinstance(item, PairedFrame):
            return item
        bag, stamp, base = item
        return PairedFrame(bag, stamp, np.load(f"{base}_rgb.npy"), np.load(f"{base}_gt.npy"))

    def close(self) -> None:
        """Delete the disk part."""
        if self._dir is not None:
            self._dir.cleanup()


@dataclass
class Split:
    """Frames in time order: the first ones train, the last `val_percent` % validate."""

    frames: FrameCache
    train: list[int]
    val: list[int]
    unpaired_images: int = 0
    too_few_valid: int = 0  # pairs dropped: fewer than MIN_VALID_PIXELS ground-truth pixels in range


def _check_size(path: Path, gt_topic: str, stamp: int, rgb: np.ndarray, gt: np.ndarray) -> None:
    try:
        reference_pixels(rgb.shape[:2], gt.shape)
    except ReferenceSizeError:
        raise BagError(f"{path}: ground truth {gt_topic} at stamp {stamp * 1e-9:.9f} is {gt.shape[1]}x"
                       f"{gt.shape[0]}, neither the image's {rgb.shape[1]}x{rgb.shape[0]} nor a uniform resize "
                       "of it; record depth aligned to the colour image") from None


def _read_bag(path: Path, gt_topic: str, image_topic: str | None, tolerance_s: float, keep) -> int:
    """Call keep(stamp, rgb, gt) for each paired frame of one bag as the bag streams; return the unpaired images."""
    reader = bagfile.open_reader(path)
    try:
        bagfile.pick_topic(reader, gt_topic, (messages.IMAGE,), "ground-truth depth", "--gt-topic")
        source = bagfile.pick_image_topic(reader, image_topic, exclude=(gt_topic,))
        stamps = read_stamps(reader, {source, gt_topic})
        pairs = paired_stamps(stamps, source, gt_topic, tolerance_s)
        unpaired = len(set(stamps[source]) - set(pairs))
        waiting: dict[int, int] = {}  # gt stamp -> images still to pair with it
        for g in pairs.values():
            waiting[g] = waiting.get(g, 0) + 1
        images: dict[int, np.ndarray] = {}
        gts: dict[int, np.ndarray] = {}
        conns = [c for c in reader.connections if c.topic in (source, gt_topic)]
        for conn, log_time, raw in reader.messages(connections=conns):
            stamp = messages.header_stamp(raw)
            if conn.topic == gt_topic and waiting.get(stamp, 0) > 0 and stamp not in gts:
                gts[stamp] = gt_depth(raw, conn.msgtype, conn.topic)
            elif conn.topic == source and stamp in pairs and stamp not in images:
                try:
                    images[stamp] = rgb8_of_message(read_frame(raw, conn.msgtype, log_time).message)
                except ValueError as exc:
                    raise BagError(f"{path}: {source} message at stamp {stamp * 1e-9:.9f}: {exc}") from None
            for ready in [s for s in images if pairs[s] in gts]:
                rgb, g = images.pop(ready), pairs[ready]
                _check_size(path, gt_topic, ready, rgb, gts[g])
                keep(ready, rgb, gts[g])
                pairs.pop(ready)
                waiting[g] -= 1
                if waiting[g] == 0:
                    del gts[g]
    finally:
        reader.close()
    return unpaired


def dataset_split(dataset: Dataset, val_percent: float) -> tuple[list[int], list[int]]:
    """(train, validation) sample indices: the official split when the dataset has one, else its last val_percent %."""
    labels = set(dataset.splits)
    if "train" in labels and labels & {"test", "val"}:
        return dataset.indices("train"), [i for i, s in enumerate(dataset.splits) if s in ("test", "val")]
    n_val = math.ceil(len(dataset) * val_percent / 100.0)
    if n_val >= len(dataset):
        raise BagError(f"{dataset.root}: {len(dataset)} sample(s) and no official split: --val-percent "
                       f"{val_percent:g} leaves none to train on")
    return list(range(len(dataset) - n_val)), list(range(len(dataset) - n_val, len(dataset)))


def load_split(bags: list[Path], gt_topic: str | None, image_topic: str | None, tolerance_s: float,
               min_depth: float, max_depth: float, val_percent: float, cache_bytes: int,
               datasets: list[Path] = (), dataset_format: str | None = None) -> Split:
    """Pair every bag's frames and read every dataset's samples, drop those without enough valid ground truth, split.

    Bags split by time (their last val_percent % of frames validate), datasets by dataset_split; BagError (or the
    readers' DatasetError) when unusable.
    """
    cache = FrameCache(cache_bytes)
    order: list[tuple[int, int]] = []  # (stamp, cache index)
    counts = {"unpaired": 0, "dropped": 0}
    fixed: dict[str, list[int]] = {"train": [], "val": []}  # dataset frames, split by dataset_split

    def keep(bag: str):
        def add(stamp: int, rgb: np.ndarray, gt: np.ndarray) -> None:
            if int(valid_mask(gt, min_depth, max_depth).sum()) < MIN_VALID_PIXELS:
                counts["dropped"] += 1
                return
            order.append((stamp, len(cache)))
            cache.add(PairedFrame(bag, stamp, rgb, gt))
        return add

    try:
        for path in bags:
            counts["unpaired"] += _read_bag(Path(path), gt_topic, image_topic, tolerance_s, keep(str(path)))
        if bags and not order:
            raise BagError(f"no paired frame has {MIN_VALID_PIXELS} or more valid ground-truth pixels (finite, "
                           f"inside [{min_depth:g}, {max_depth:g}] m) on {gt_topic}; check the topic and "
                           "--gt-min-depth / --gt-max-depth")
        n_val = math.ceil(len(order) * val_percent / 100.0)
        if order and n_val >= len(order):
            raise BagError(f"{len(order)} usable frame(s): --val-percent {val_percent:g} leaves none to train on")
        for path in datasets:
            dataset = open_dataset(path, dataset_format)
            for part, indices in zip(("train", "val"), dataset_split(dataset, val_percent), strict=True):
                for index in indices:
                    sample = dataset.load(index)
                    if int(valid_mask(sample.depth, min_depth, max_depth).sum()) < MIN_VALID_PIXELS:
                        counts["dropped"] += 1
                        continue
                    fixed[part].append(len(cache))
                    cache.add(PairedFrame(str(path), index, sample.rgb, sample.depth))
        if datasets and not fixed["train"]:
            raise BagError(f"no dataset training sample has {MIN_VALID_PIXELS} or more valid ground-truth pixels "
                           f"inside [{min_depth:g}, {max_depth:g}] m; check --gt-min-depth / --gt-max-depth")
    except BaseException:
        cache.close()
        raise
    indices = [i for _, i in sorted(order)]
    split = len(indices) - n_val
    return Split(cache, indices[:split] + fixed["train"], indices[split:] + fixed["val"], counts["unpaired"],
                 counts["dropped"])
