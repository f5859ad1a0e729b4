"""Report figures (matplotlib, Agg, no pyplot) in the colour convention of frame/colorize.py: depth, errors, footer."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from depth_anything_ros.frame.colorize import (
    CONVENTION,
    DEFAULT_COLORMAP,
    FOOTER_RGB,
    INVALID_RGB,
    SYNTHETIC_RGB,
    colormap_lut,
)

ERROR_COLORMAP = "viridis"  # errors are no depth: another map, whose low end (dark violet) is not black


def new_figure(size: tuple[float, float]) -> Figure:
    """Return an Agg-backed Figure of `size` inches at 100 dpi."""
    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def depth_colormap(name: str = DEFAULT_COLORMAP) -> ListedColormap:
    """Return the matplotlib colormap of colorize(): low values (near) warm, NaN in INVALID_RGB."""
    return ListedColormap(colormap_lut(name)[::-1] / 255.0, name=f"{name} near warm").with_extremes(
        bad=np.asarray(INVALID_RGB) / 255.0)


def show_depth(fig: Figure, ax, depth: np.ndarray, top: float, title: str) -> None:
    """Draw (H, W) depth in metres on ax, 0 .. top m, with a colour bar labelled in metres."""
    shown = ax.imshow(np.ma.masked_invalid(np.where(depth > 0, depth, np.nan)), cmap=depth_colormap(), vmin=0.0,
                      vmax=top)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03).set_label("depth (m)")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def show_error(fig: Figure, ax, error: np.ndarray, top: float, title: str, unit: str) -> None:
    """Draw a (H, W) error map on ax, 0 .. top, with a colour bar labelled with `unit`; NaN (no ground truth) black."""
    cmap = ListedColormap(colormap_lut(ERROR_COLORMAP) / 255.0, name=ERROR_COLORMAP).with_extremes(
        bad=np.asarray(INVALID_RGB) / 255.0)
    shown = ax.imshow(np.ma.masked_invalid(error), cmap=cmap, vmin=0.0, vmax=top)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03).set_label(unit)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def save(fig: Figure, path, model: str, synthetic: bool) -> None:
    """Lay out fig, add the footer (model and colour convention; red and bold for synthetic weights), write path."""
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    colour = np.asarray(SYNTHETIC_RGB if synthetic else FOOTER_RGB) / 255.0
    fig.text(0.01, 0.01, f"{model} | {CONVENTION}", fontsize=8, color=colour,
             fontweight="bold" if synthetic else "normal")
    fig.savefig(path)
