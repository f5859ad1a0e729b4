"""Report of a `train` run: loss and learning-rate curves, validation metrics over steps, worst-frame panel (Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

CURVES = ("abs_rel", "d1", "rmse", "silog")


def _figure(size: tuple[float, float]) -> Figure:
    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path, footer: str, synthetic: bool) -> Path:
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.text(0.01, 0.01, footer, fontsize=8, color="red" if synthetic else "0.3",
             fontweight="bold" if synthetic else "normal")
    fig.savefig(path)
    return path


def write_report(directory: Path, log: list[dict], val: list[dict], panel: dict | None, footer: str,
                 synthetic: bool) -> list[Path]:
    """Write loss_lr.png, validation.png and (with `panel`) worst_val_frame.png into directory; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    fig = _figure((9, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    steps = [line["step"] for line in log if line["loss"] is not None]
    ax.plot(steps, [line["loss"] for line in log if line["loss"] is not None], color="tab:blue", lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("SiLog loss", color="tab:blue")
    lr = ax.twinx()
    lr.plot([line["step"] for line in log], [line["lr"] for line in log], color="tab:orange", lw=1)
    lr.set_ylabel("encoder learning rate (head: x factor)", color="tab:orange")
    ax.set_title("training loss and learning rate")
    files.append(_save(fig, directory / "loss_lr.png", footer, synthetic))

    fig = _figure((10, 6))
    for k, name in enumerate(CURVES, start=1):
        ax = fig.add_subplot(2, 2, k)
        ax.plot([line["step"] for line in val], [line["metrics"][name] for line in val], marker="o", ms=3)
        ax.set_title(f"validation {name}")
        ax.set_xlabel("step")
    files.append(_save(fig, directory / "validation.png", footer, synthetic))

    if panel is not None:
        files.append(_save(_panel(panel), directory / "worst_val_frame.png", footer, synthetic))
    return files


def _panel(panel: dict) -> Figure:
    """Draw image, ground truth, before, after and relative error after, on one depth colour scale."""
    gt, before, after = panel["gt"], panel["before"], panel["after"]
    finite = gt[np.isfinite(gt)]
    top = float(np.percentile(finite, 99)) if finite.size else float(np.nanmax(after))
    fig = _figure((16, 3.8))
    items = [("image", panel["rgb"], None), ("ground truth", gt, "turbo"),
             (f"before (AbsRel {panel['abs_rel_before']:.3f})", before, "turbo"),
             (f"after (AbsRel {panel['abs_rel_after']:.3f})", after, "turbo"),
             ("|after - gt| / gt", np.abs(after - gt) / gt, "magma")]
    for k, (title, image, cmap) in enumerate(items, start=1):
        ax = fig.add_subplot(1, len(items), k)
        if cmap is None:
            ax.imshow(image)
        else:
            limits = (0.0, 0.5) if cmap == "magma" else (0.0, top)
            shown = ax.imshow(image, cmap=cmap, vmin=limits[0], vmax=limits[1])
            fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"worst validation frame: {panel['bag']} stamp {panel['stamp'] * 1e-9:.3f} s", fontsize=10)
    return fig
