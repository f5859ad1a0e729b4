"""`bag evaluate`: predicted metric depth (the model's, or a recorded topic) against a bag's ground-truth depth."""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from depth_anything_ros.bag import bagfile, messages
from depth_anything_ros.bag.bagfile import BagError
from depth_anything_ros.bag.frames import Frame, FrameBatcher, read_frame, stamp_text
from depth_anything_ros.bag.ground_truth import camera_mismatch, gt_depth, paired_stamps, read_stamps, resize_to_gt
from depth_anything_ros.bag.process import MODEL_KEY, camera_info_history, pick_camera_info_topic
from depth_anything_ros.bag.progress import Progress
from depth_anything_ros.frame.metrics import (
    ALIGN_MODES,
    METRIC_NAMES,
    AlignmentFit,
    confidence_deciles,
    confidence_sample,
    evaluate_frame,
    fit_alignment,
    mean_metrics,
    valid_mask,
)
from depth_anything_ros.frame.pipeline import FrameInput, FrameOptions, FramePipeline, rgb8_of_message
from depth_anything_ros.frame.provenance import model_label, model_provenance, package_version

CONFIDENCE_PIXELS = 20_000  # valid pixels a frame sampled for the error-by-confidence table


@dataclass
class EvaluateOptions:
    """What to compare and how."""

    gt_topic: str
    image_topic: str | None = None
    pred_topic: str | None = None
    align: str = "none"
    min_depth: float = 0.001
    max_depth: float = 20.0
    stamp_tolerance: float = 0.0
    batch: int = 1
    report: Path | None = None
    progress: bool = True
    confidence: bool = False  # also the model's depth/confidence: AbsRel by confidence decile


@dataclass
class FrameResult:
    """Metrics of one prediction / ground-truth pair; `aligned` after the bag's alignment, when asked."""

    index: int
    stamp: int
    gt_stamp: int
    valid_pixels: int
    frame_scale: float  # least-squares scale of this frame alone
    metrics: dict[str, float]
    aligned: dict[str, float] | None = None


@dataclass
class Evaluation:
    """Everything `bag evaluate` found out."""

    bag: Path
    gt_topic: str
    source: str  # "model on <topic>" or "topic <topic>"
    options: EvaluateOptions
    frames: list[FrameResult] = field(default_factory=list)
    skipped: int = 0  # pairs with fewer than MIN_VALID_PIXELS valid ground-truth pixels
    unpaired_predictions: int = 0
    unpaired_gt: int = 0
    scale: float = 1.0  # alignment applied for `aligned` (scale * pred + shift)
    shift: float = 0.0
    depth_scale: float | None = None  # pure least-squares scale: the node's depth.scale that corrects the bag
    overall: dict[str, float] = field(default_factory=dict)
    overall_aligned: dict[str, float] | None = None
    report_files: list[Path] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)  # package version, bag, topics, model (see provenance.py)
    warnings: list[str] = field(default_factory=list)  # e.g. ground truth from another camera
    confidence_pixels: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (confidence, AbsRel)

    @property
    def confidence_deciles(self) -> list[dict] | None:
        """AbsRel of the sampled valid pixels in ten equal-count bins of rising confidence (with --confidence)."""
        if not self.confidence_pixels:
            return None
        return confidence_deciles(*(np.concatenate(a) for a in zip(*self.confidence_pixels, strict=True)))

    @property
    def scale_stability(self) -> dict[str, float] | None:
        """Per-frame least-squares scales: mean, std and the largest frame-to-frame change (absolute, relative)."""
        scales = np.array([f.frame_scale for f in self.frames if math.isfinite(f.frame_scale)])
        if scales.size == 0:
            return None
        steps = np.abs(np.diff(scales))
        relative = steps / scales[:-1] if scales.size > 1 else steps
        return {"frames": int(scales.size), "mean": float(scales.mean()), "std": float(scales.std()),
                "max_jump": float(steps.max(initial=0.0)), "max_jump_relative": float(relative.max(initial=0.0))}

    @property
    def model(self) -> dict | None:
        """The model that made the predictions, when known."""
        return self.provenance.get("model")

    def text(self) -> str:
        """Human-readable summary."""
        o = self.options
        lines = [f"bag {self.bag}: prediction from {self.source} vs ground truth {self.gt_topic}",
                 f"frames evaluated {len(self.frames)}, skipped (too few valid pixels) {self.skipped}, unpaired "
                 f"predictions {self.unpaired_predictions}, unpaired ground truth {self.unpaired_gt}; "
                 f"range [{o.min_depth:g}, {o.max_depth:g}] m"]
        lines += [f"warning: {w}" for w in self.warnings]
        lines.append(f"model: {model_label(self.model)}")
        lines.append("metrics (mean over frames): " + _format(self.overall))
        stability = self.scale_stability
        if stability is not None:
            lines.append(f"per-frame scale: mean {stability['mean']:.4f}, std {stability['std']:.4f}, largest "
                         f"frame-to-frame change {stability['max_jump']:.4f} ({stability['max_jump_relative']:.1%})"
                         " — a std or change of a few % means one fixed depth.scale cannot fit every frame")
        if self.depth_scale is not None:
            lines.append(f"least-squares scale of prediction to ground truth: {self.depth_scale:.6f}  ->  set "
                         f"depth.scale to {self.depth_scale:.6f} (times the depth.scale the predictions were made "
                         "with, if not 1)")
        if self.overall_aligned is not None:
            how = f"scale {self.scale:.6f}" + (f", shift {self.shift:+.4f} m" if o.align == "scale_shift" else "")
            lines.append(f"metrics after alignment ({how}): " + _format(self.overall_aligned))
        deciles = self.confidence_deciles
        if deciles is not None:
            lines.append(f"AbsRel by depth/confidence decile ({CONFIDENCE_PIXELS} random valid pixels a frame):")
            lines += [f"  {r['bin']:2d}: confidence {r['confidence_min']:.3f} .. {r['confidence_max']:.3f}  AbsRel "
                      f"{r['abs_rel']:.4f}  ({r['pixels']} pixels)" for r in deciles]
            if self.model and self.model.get("synthetic"):
                lines.append("  SYNTHETIC WEIGHTS: this table shows nothing about real accuracy or confidence")
        lines += [f"report: {p}" for p in self.report_files]
        return "\n".join(lines)

    def to_json(self) -> dict:
        """metrics.json content."""
        o = self.options
        return {"bag": str(self.bag), "gt_topic": self.gt_topic, "prediction": self.source, "align": o.align,
                "min_depth": o.min_depth, "max_depth": o.max_depth, "stamp_tolerance_s": o.stamp_tolerance,
                "frames_evaluated": len(self.frames), "frames_skipped": self.skipped,
                "unpaired_predictions": self.unpaired_predictions, "unpaired_gt": self.unpaired_gt,
                "overall": self.overall, "alignment": {"scale": self.scale, "shift": self.shift,
                                                       "depth_scale": self.depth_scale},
                "overall_aligned": self.overall_aligned, "warnings": self.warnings, "provenance": self.provenance,
                "scale_stability": self.scale_stability, "confidence_deciles": self.confidence_deciles}


def _format(m: dict[str, float]) -> str:
    return ", ".join(f"{k} {m[k]:.4f}" for k in METRIC_NAMES)


class FrameStore:
    """Keeps each evaluated frame's arrays on disk (a temporary directory) for alignment and the report plots."""

    def __init__(self):
        self._dir = tempfile.TemporaryDirectory(prefix="depth_anything_eval_")
        self.path = Path(self._dir.name)

    def put(self, index: int, pred: np.ndarray, gt: np.ndarray, rgb: np.ndarray | None) -> None:
        """Save pred, gt (H,W) float32 metres and rgb (H,W,3) uint8 or None."""
        arrays = {"pred": pred, "gt": gt} | ({"rgb": rgb} if rgb is not None else {})
        np.savez(self.path / f"{index}.npz", **arrays)

    def get(self, index: int) -> dict[str, np.ndarray]:
        """Arrays of one frame."""
        with np.load(self.path / f"{index}.npz") as data:
            return {k: data[k] for k in data.files}

    def close(self) -> None:
        """Delete the directory."""
        self._dir.cleanup()


def _source_topic(reader: object, opts: EvaluateOptions) -> tuple[str, bool]:
    """(prediction source topic, whether it is a recorded depth topic)."""
    if opts.pred_topic is not None:
        return bagfile.pick_topic(reader, opts.pred_topic, (messages.IMAGE,), "prediction", "--pred-topic"), True
    return bagfile.pick_image_topic(reader, opts.image_topic, exclude=(opts.gt_topic,)), False


def _panel_image_topic(reader: object, opts: EvaluateOptions, pred_topic: str) -> str | None:
    """Camera image topic shown beside recorded predictions in the report, if the bag has one."""
    colored = f"{bagfile.namespace_of(pred_topic)}/depth/colored"
    try:
        return bagfile.pick_image_topic(reader, opts.image_topic, exclude=(opts.gt_topic, pred_topic, colored))
    except BagError:
        return None


def evaluate_bag(path: str | Path, estimator: object | None, opts: EvaluateOptions) -> Evaluation:
    """Run the evaluation; estimator None means opts.pred_topic holds the predictions."""
    if opts.align not in ALIGN_MODES:
        raise BagError(f"unknown --align {opts.align!r}; expected one of {', '.join(ALIGN_MODES)}")
    if not 0.0 < opts.min_depth < opts.max_depth:
        raise BagError(f"need 0 < --gt-min-depth < --gt-max-depth, got {opts.min_depth} and {opts.max_depth}")
    if opts.stamp_tolerance < 0:
        raise BagError(f"--stamp-tolerance must not be negative, got {opts.stamp_tolerance}")
    if estimator is None and opts.pred_topic is None:
        raise BagError("give --pred-topic, or a model to run")
    if opts.confidence and opts.pred_topic is not None:
        raise BagError("--confidence needs the model run by bag evaluate, not --pred-topic")
    pipeline = None if estimator is None else FramePipeline(estimator)
    reader = bagfile.open_reader(path)
    store = FrameStore()
    try:
        bagfile.pick_topic(reader, opts.gt_topic, (messages.IMAGE,), "ground-truth depth", "--gt-topic")
        source, recorded = _source_topic(reader, opts)
        result = Evaluation(Path(path), opts.gt_topic, f"topic {source}" if recorded else f"model on {source}", opts)
        image_topic = _panel_image_topic(reader, opts, source) if recorded and opts.report is not None else None
        estimator = None if pipeline is None else pipeline.estimator
        result.provenance = _provenance(reader, source, recorded, opts, estimator)
        result.warnings = camera_mismatch(reader, _panel_image_topic(reader, opts, source) if recorded else source,
                                           opts.gt_topic)
        _evaluate(reader, source, recorded, image_topic, pipeline, opts, result, store)
        if opts.report is not None:
            from depth_anything_ros.bag.report import write_report

            result.report_files = write_report(opts.report, result, store)
    finally:
        store.close()
        reader.close()
    return result


def _evaluate(reader: object, source: str, recorded: bool, image_topic: str | None, pipeline: object | None,
              opts: EvaluateOptions, result: Evaluation, store: FrameStore) -> None:
    topics = {source, opts.gt_topic} | ({image_topic} if image_topic else set())
    conns = [c for c in reader.connections if c.topic in topics]
    stamps = read_stamps(reader, topics)
    pairs = paired_stamps(stamps, source, opts.gt_topic, opts.stamp_tolerance)
    result.unpaired_predictions = len(set(stamps[source]) - set(pairs))
    result.unpaired_gt = len(set(stamps[opts.gt_topic]) - set(pairs.values()))
    with_image = set(stamps[image_topic]) & set(pairs) if image_topic else set()
    waiting = {}  # gt stamp -> number of predictions still to pair with it
    for g in pairs.values():
        waiting[g] = waiting.get(g, 0) + 1
    gts: dict[int, np.ndarray] = {}
    images: dict[int, np.ndarray] = {}
    preds: dict[int, tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] = {}  # depth, rgb, confidence
    fit = AlignmentFit()
    batcher = FrameBatcher(opts.batch)
    infos = None  # the confidence and a model whose metres need the focal length (DA3) get camera_info
    if pipeline is not None and (pipeline.estimator.needs_focal or opts.confidence):  # as bag process pairs it
        infos = camera_info_history(reader, pick_camera_info_topic(reader, None, source))
    outputs = ("depth", "rgb", "confidence") if opts.confidence else ("depth", "rgb")
    rng = np.random.default_rng(0)  # the confidence table's pixel sample

    def match() -> None:
        for stamp in [s for s in preds if pairs[s] in gts and (s not in with_image or s in images)]:
            pred, rgb, confidence = preds.pop(stamp)
            rgb = images.pop(stamp, rgb)
            g = pairs[stamp]
            scored = _score(len(result.frames) + result.skipped, stamp, g, pred, gts[g], rgb, opts, result, fit,
                            store)
            if scored is not None and confidence is not None:
                conf = resize_to_gt(confidence, gts[g].shape)
                result.confidence_pixels.append(confidence_sample(scored, gts[g], conf, opts.min_depth,
                                                                  opts.max_depth, CONFIDENCE_PIXELS, rng))
            waiting[g] -= 1
            if waiting[g] == 0:
                del gts[g]

    def run(batch: list[Frame]) -> None:
        if batch:
            inputs = [FrameInput(camera=source, message=f.message, outputs=outputs,
                                 camera_info=None if infos is None else infos.latest_at(f.stamp)) for f in batch]
            for frame, out in zip(batch, pipeline.run(inputs, FrameOptions()), strict=True):
                if out.problems:
                    raise BagError(f"{source} message at {stamp_text(frame)}: "
                                   + "; ".join(p.text() for p in out.problems))
                preds[frame.stamp] = (out.depth, out.rgb, out.confidence)
            bar.update(len(batch))

    with Progress(len(pairs), "bag evaluate", opts.progress) as bar:
        for conn, log_time, raw in reader.messages(connections=conns):
            stamp = messages.header_stamp(raw)
            if conn.topic == opts.gt_topic and waiting.get(stamp, 0) > 0 and stamp not in gts:
                gts[stamp] = gt_depth(raw, conn.msgtype, conn.topic)
            if conn.topic == image_topic and stamp in with_image and stamp not in images:
                images[stamp] = _rgb_of(read_frame(raw, conn.msgtype, log_time), image_topic)
            if conn.topic == source and stamp in pairs and stamp not in preds:
                if recorded:
                    preds[stamp] = (gt_depth(raw, conn.msgtype, conn.topic), None, None)
                    bar.update(1)
                else:
                    for batch in batcher.add(read_frame(raw, conn.msgtype, log_time)):
                        run(batch)
            match()
        run(batcher.flush())
        match()
    result.overall = mean_metrics([f.metrics for f in result.frames])
    if opts.align != "none":
        result.depth_scale = fit.solve("scale")[0]
        result.scale, result.shift = fit.solve(opts.align)
        for f in result.frames:
            arrays = store.get(f.index)
            f.aligned = evaluate_frame(arrays["pred"], arrays["gt"], opts.min_depth, opts.max_depth,
                                       result.scale, result.shift)
        result.overall_aligned = mean_metrics([f.aligned for f in result.frames])


def _provenance(reader: object, source: str, recorded: bool, opts: EvaluateOptions, estimator) -> dict:
    """Package version, bag, topics and the model: the one run here, or the one `bag process` recorded in the bag."""
    if estimator is not None:
        model, origin = model_provenance(estimator), "run by bag evaluate"
    else:
        storage = getattr(reader, "storage", reader)  # rosbags' unified Reader keeps the directory reader there
        custom = getattr(getattr(storage, "metadata", None), "custom", None) or {}
        model = json.loads(custom[MODEL_KEY]) if MODEL_KEY in custom else None
        origin = "recorded by bag process in the bag's metadata" if model else "unknown (not recorded in the bag)"
    return {"package_version": package_version(), "bag": str(reader.path),
            "prediction_topic" if recorded else "image_topic": source, "gt_topic": opts.gt_topic,
            "model": model, "model_origin": origin}


def _rgb_of(frame: Frame, topic: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image message for the report panels (the pipeline's colour rule)."""
    try:
        return rgb8_of_message(frame.message)
    except ValueError as exc:
        raise BagError(f"{topic} message at {stamp_text(frame)}: {exc}") from exc


def _score(index: int, stamp: int, gt_stamp: int, pred: np.ndarray, gt: np.ndarray, rgb: np.ndarray | None,
           opts: EvaluateOptions, result: Evaluation, fit: AlignmentFit, store: FrameStore) -> np.ndarray | None:
    """Evaluate one pair; return the prediction at the ground truth's size (bilinear, as the official eval), or None."""
    if pred.shape != gt.shape:
        pred = resize_to_gt(pred, gt.shape)
        if rgb is not None:
            rgb = cv2.resize(rgb, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_AREA)
    metrics = evaluate_frame(pred, gt, opts.min_depth, opts.max_depth)
    if metrics is None:
        result.skipped += 1
        return None
    fit.add(pred, gt, opts.min_depth, opts.max_depth)
    try:
        frame_scale = fit_alignment(pred, gt, opts.min_depth, opts.max_depth, "scale")[0]
    except ValueError:
        frame_scale = float("nan")
    valid = int(valid_mask(gt, opts.min_depth, opts.max_depth).sum())
    result.frames.append(FrameResult(index, stamp, gt_stamp, valid, frame_scale, metrics))
    store.put(index, pred, gt, rgb)
    return pred
