"""End of a finished `train` run: the report, metrics.json (written last: it marks the run finished), the summary."""

from __future__ import annotations

import argparse
import sys

from depth_anything_ros.frame.metrics import METRIC_NAMES
from depth_anything_ros.frame.provenance import model_label, model_provenance, package_version
from depth_anything_ros.train import outputs
from depth_anything_ros.train.validation import predict


def _worst_panel(trainer: object, index: int, base: object) -> dict:
    """Arrays of the before/after panel of one validation frame (before: the base checkpoint, loaded again)."""
    from depth_anything_ros.frame.metrics import evaluate_frame

    frame = trainer.split.frames[index]
    before, after = predict(base, frame, trainer.autocast), predict(trainer.estimator, frame, trainer.autocast)
    low, high = trainer.recipe.min_depth, trainer.max_depth
    return {"rgb": frame.rgb, "gt": frame.gt, "before": before, "after": after, "bag": frame.bag,
            "stamp": frame.stamp, "abs_rel_before": evaluate_frame(before, frame.gt, low, high)["abs_rel"],
            "abs_rel_after": evaluate_frame(after, frame.gt, low, high)["abs_rel"]}


def _base_estimator(trainer: object) -> object:
    from depth_anything_ros.cli_options import make_estimator

    c = trainer.config
    return make_estimator(argparse.Namespace(
        checkpoint=c.checkpoint, encoder=c.encoder, model_max_depth=c.model_max_depth,
        input_size=c.recipe.input_size, device=str(trainer.device), precision="fp32", compile="off"),
        announce_synthetic=False)


def finish(trainer: object, result: object) -> str:
    """Write report/ and metrics.json into the run folder; return the summary text."""
    out = trainer.out
    model = model_provenance(trainer.estimator)
    print(f"train: writing the report into {out / outputs.REPORT} (the worst validation frame before and after, "
          "curves)", file=sys.stderr, flush=True)
    panel = None
    if result.worst_val_frame is not None:
        panel = _worst_panel(trainer, result.worst_val_frame, _base_estimator(trainer))
    footer = f"{model_label(model)} fine-tuned | depth_anything_ros {package_version()}"
    files = outputs.read_lines(out / outputs.LOG), outputs.read_lines(out / outputs.VAL)
    from depth_anything_ros.train.report import write_report

    report = write_report(out / outputs.REPORT, *files, panel, footer, bool(model.get("synthetic")))
    split = trainer.split
    metrics = {
        "finished": True, "steps": result.step, "steps_per_s": result.steps_per_s,
        "frames_per_s": result.frames_per_s, "before": result.before, "after": result.after, "best": result.best,
        "worst_val_frame": None if panel is None else {k: panel[k] for k in ("bag", "stamp", "abs_rel_before",
                                                                             "abs_rel_after")},
        "frames": {"train": len(split.train), "val": len(split.val), "unpaired_images": split.unpaired_images,
                   "too_few_valid_gt": split.too_few_valid, "cached_on_disk": split.frames.on_disk},
        "checkpoints": {"best": str(out / "best.pth"), "last": str(out / "last.pth")},
        "report": [str(p) for p in report], "config": trainer.config.to_json(),
        "provenance": {"package_version": package_version(), "base_model": model}}
    outputs.write_json(out / outputs.METRICS, metrics)
    (out / outputs.RESUME).unlink(missing_ok=True)  # a finished run has nothing to resume
    lines = [f"train: finished {result.step} steps, {result.steps_per_s:.2f} steps/s "
             f"({result.frames_per_s:.1f} frames/s)"]
    for split_name in ("validation", "train"):
        b, a = result.before[split_name], result.after[split_name]
        lines.append(f"{split_name} before -> after: " + ", ".join(
            f"{k} {b[k]:.4f} -> {a[k]:.4f}" for k in METRIC_NAMES if k in ("abs_rel", "d1", "rmse", "silog")))
    lines.append(f"best validation AbsRel {result.best['metrics']['abs_rel']:.4f} at step {result.best['step']}: "
                 f"{out / 'best.pth'}; last: {out / 'last.pth'}; report: {out / outputs.REPORT}; "
                 f"{out / outputs.METRICS}")
    return "\n".join(lines)
