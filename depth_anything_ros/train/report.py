"""Report of a `train` run: loss and learning-rate curves, validation metrics over steps, worst-frame panel (Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from depth_anything_ros.frame.figures import new_figure, save, show_depth, show_error

# validation metric -> axis label with its unit
CURVES = {"abs_rel": "AbsRel (unitless)", "d1": "δ1 (fraction of pixels)", "rmse": "RMSE (m)",
          "silog": "SiLog (unitless, × 100)"}


def write_report(directory: Path, log: list[dict], val: list[dict], panel: dict | None, footer: str,
                 synthetic: bool) -> list[Path]:
    """Write loss_lr.png, validation.png and (with `panel`) worst_val_frame.png into directory; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    figures = {"loss_lr.png": _loss_lr(log), "validation.png": _validation(val)}
    if panel is not None:
        figures["worst_val_frame.png"] = _panel(panel)
    for name, fig in figures.items():
        save(fig, directory / name, footer, synthetic)
    return [directory / name for name in figures]


def _loss_lr(log: list[dict]) -> Figure:
    """Draw the training loss and the learning rate over the steps."""
    fig = new_figure((9, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    steps = [line["step"] for line in log if line["loss"] is not None]
    ax.plot(steps, [line["loss"] for line in log if line["loss"] is not None], color="tab:blue", lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("SiLog loss", color="tab:blue")
    lr = ax.twinx()
    lr.plot([line["step"] for line in log], [line["lr"] for line in log], color="tab:orange", lw=1)
    lr.set_ylabel("encoder learning rate (head: x factor)", color="tab:orange")
    ax.set_title("training loss and learning rate")
    return fig


def _validation(val: list[dict]) -> Figure:
    """Draw the validation metrics over the steps, each axis labelled with its unit."""
    fig = new_figure((10, 6))
    for k, (name, label) in enumerate(CURVES.items(), start=1):
        ax = fig.add_subplot(2, 2, k)
        ax.plot([line["step"] for line in val], [line["metrics"][name] for line in val], marker="o", ms=3)
        ax.set_title(f"validation {name}")
        ax.set_xlabel("step")
        ax.set_ylabel(label)
    return fig


def _panel(panel: dict) -> Figure:
    """Draw image, ground truth, before, after (one depth scale, near warm) and the relative error after."""
    gt, before, after = panel["gt"], panel["before"], panel["after"]
    finite = gt[np.isfinite(gt)]
    top = float(np.percentile(finite, 99)) if finite.size else float(np.nanmax(after))
    fig = new_figure((16, 3.8))
    axes = [fig.add_subplot(1, 5, k) for k in range(1, 6)]
    axes[0].imshow(panel["rgb"])
    axes[0].set_title("image", fontsize=9)
    axes[0].axis("off")
    show_depth(fig, axes[1], gt, top, "ground truth")
    show_depth(fig, axes[2], before, top, f"before (AbsRel {panel['abs_rel_before']:.3f})")
    show_depth(fig, axes[3], after, top, f"after (AbsRel {panel['abs_rel_after']:.3f})")
    show_error(fig, axes[4], np.abs(after - gt) / gt, 0.5, "|after - gt| / gt", "relative error (unitless)")
    fig.suptitle(f"worst validation frame: {panel['bag']} stamp {panel['stamp'] * 1e-9:.3f} s", fontsize=10)
    return fig
