"""The report of `evaluate`: one self-contained HTML page (no server, no network) and a PNG of the worst samples.

The page embeds, per sample, small JPEG/PNG data URIs of the image, the ground truth, the prediction and the
absolute-error map, a table of every sample's metrics (sortable by any column, worst AbsRel first) and colour bars
in metres: depth in the convention of frame/colorize.py (near warm, black = no depth), errors in viridis from 0 to
the 95th percentile of all errors.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from depth_anything_ros.frame.colorize import DEFAULT_COLORMAP, colorize, colormap_lut
from depth_anything_ros.frame.figures import ERROR_COLORMAP, new_figure, save, show_depth, show_error
from depth_anything_ros.frame.metrics import METRIC_NAMES
from depth_anything_ros.frame.provenance import model_label

THUMB_WIDTH = 320
WORST_IN_PNG = 3
COLUMNS = (*METRIC_NAMES, "psnr", "ssim")


def _uri(rgb: np.ndarray, kind: str) -> str:
    ok, data = cv2.imencode(f".{kind}", np.ascontiguousarray(rgb[..., ::-1]),
                            [cv2.IMWRITE_JPEG_QUALITY, 85] if kind == "jpg" else [])
    assert ok
    mime = "jpeg" if kind == "jpg" else "png"
    return f"data:image/{mime};base64," + base64.b64encode(data.tobytes()).decode()


def _thumb(a: np.ndarray) -> np.ndarray:
    height, width = a.shape[:2]
    if width <= THUMB_WIDTH:
        return a
    size = (THUMB_WIDTH, max(1, round(height * THUMB_WIDTH / width)))
    return cv2.resize(a, size, interpolation=cv2.INTER_AREA if a.ndim == 3 else cv2.INTER_NEAREST)


def _depth_rgb(depth: np.ndarray, top: float) -> np.ndarray:
    return colorize(torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32)), 0.0, top,
                    colormap_lut(DEFAULT_COLORMAP)).numpy()


def _error_rgb(error: np.ndarray, top: float) -> np.ndarray:
    lut = colormap_lut(ERROR_COLORMAP)
    index = np.clip(np.nan_to_num(error / top, nan=0.0) * 255.0, 0, 255).astype(np.uint8)
    out = lut[index]
    out[~np.isfinite(error)] = 0
    return out


def _gradient(lut: np.ndarray, reverse: bool) -> str:
    stops = lut[::-1] if reverse else lut
    colours = [f"rgb({r},{g},{b})" for r, g, b in stops[::17]]
    return f"linear-gradient(to right, {', '.join(colours)})"


def write_page(path: Path, result, arrays: Path) -> None:
    """Write report.html (and worst_samples.png beside it) from the result and its stored sample arrays."""
    top = result.protocol.max_depth
    errors = []
    for s in result.samples:
        with np.load(arrays / f"{s.index}.npz") as a:
            errors.append(np.abs(a["pred"] - a["gt"])[np.isfinite(a["gt"])])
    error_top = float(np.percentile(np.concatenate(errors), 95)) if errors else 1.0
    error_top = error_top if error_top > 0 else 1.0
    rows = []
    for s in result.samples:
        with np.load(arrays / f"{s.index}.npz") as a:
            pred, gt, rgb = a["pred"], a["gt"], a["rgb"]
        error = np.where(np.isfinite(gt), np.abs(pred - gt), np.nan)
        rows.append({"name": s.name, **{c: s.metrics[c] for c in COLUMNS},
                     "rgb": _uri(_thumb(rgb), "jpg"), "gt": _uri(_depth_rgb(_thumb(gt), top), "png"),
                     "pred": _uri(_depth_rgb(_thumb(pred), top), "png"),
                     "error": _uri(_error_rgb(_thumb(error), error_top), "png")})
    model = result.provenance.get("model")
    label = model_label(model)
    p = result.protocol
    summary = ", ".join(f"{k} {v:.4f}" for k, v in result.overall.items())
    page = PAGE.format(
        title=html.escape(f"evaluate {result.provenance.get('dataset', '')}"),
        model=html.escape(label), synthetic="synthetic" if model and model.get("synthetic") else "",
        protocol=html.escape(f"{result.provenance.get('format')} protocol {p.name}: crop {p.crop}, depth "
                             f"[{p.min_depth:g}, {p.max_depth:g}] m, align {result.align}; "
                             f"{len(result.samples)} samples"),
        summary=html.escape(summary), depth_bar=_gradient(colormap_lut(DEFAULT_COLORMAP), reverse=True),
        error_bar=_gradient(colormap_lut(ERROR_COLORMAP), reverse=False), depth_top=f"{top:g}",
        depth_mid=f"{top / 2:g}", error_top=f"{error_top:.3g}", error_mid=f"{error_top / 2:.3g}",
        data=json.dumps({"columns": COLUMNS, "rows": rows}).replace("</", "<\\/"))
    path.write_text(page)
    _worst_png(path.parent / "worst_samples.png", result, arrays, error_top, label, bool(model and
                                                                                          model.get("synthetic")))


def _worst_png(path: Path, result, arrays: Path, error_top: float, label: str, synthetic: bool) -> None:
    worst = sorted(result.samples, key=lambda s: -s.metrics["abs_rel"])[:WORST_IN_PNG]
    fig = new_figure((14, 3.2 * len(worst)))
    for row, s in enumerate(worst):
        with np.load(arrays / f"{s.index}.npz") as a:
            pred, gt, rgb = a["pred"], a["gt"], a["rgb"]
        axes = [fig.add_subplot(len(worst), 4, 4 * row + k + 1) for k in range(4)]
        axes[0].imshow(rgb)
        axes[0].set_title(f"{s.name}: AbsRel {s.metrics['abs_rel']:.3f}", fontsize=9)
        axes[0].axis("off")
        show_depth(fig, axes[1], gt, result.protocol.max_depth, "ground truth")
        show_depth(fig, axes[2], pred, result.protocol.max_depth, "prediction")
        show_error(fig, axes[3], np.where(np.isfinite(gt), np.abs(pred - gt), np.nan), error_top, "|error|", "m")
    save(fig, path, label, synthetic)


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1em; }}
.synthetic #model {{ color: #dc0000; font-weight: bold; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 2px 6px; text-align: right; }}
th {{ cursor: pointer; background: #eee; }}
tbody tr {{ cursor: pointer; }}
tbody tr:hover, tr.open {{ background: #ffd; }}
#detail {{ display: flex; gap: 8px; flex-wrap: wrap; margin: 1em 0; }}
#detail[hidden] {{ display: none; }}
#detail figure {{ margin: 0; }}
#overlay {{ position: relative; }}
#overlay img {{ display: block; }}
#detail img {{ width: 320px; image-rendering: pixelated; }}
#overlay #error-over {{ position: absolute; left: 0; top: 0; }}
.bar {{ width: 320px; height: 14px; }}
.ticks {{ width: 320px; display: flex; justify-content: space-between; font-size: 12px; }}
</style></head>
<body class="{synthetic}">
<h1>{title}</h1>
<p id="model">{model}</p>
<p id="protocol">{protocol}</p>
<p id="summary">{summary}</p>
<div id="bars">
 <div>depth (near warm, black = no depth)<div class="bar" id="depth-bar" style="background: {depth_bar}"></div>
  <div class="ticks"><span>0 m</span><span>{depth_mid} m</span><span>{depth_top} m</span></div></div>
 <div>absolute error<div class="bar" id="error-bar" style="background: {error_bar}"></div>
  <div class="ticks"><span>0 m</span><span>{error_mid} m</span><span>{error_top} m</span></div></div>
</div>
<div id="detail" hidden>
 <figure><div id="overlay"><img id="rgb"><img id="error-over"></div>
  <figcaption>image with error overlay, opacity <input id="opacity" type="range" min="0" max="100" value="50">
  </figcaption></figure>
 <figure><img id="gt"><figcaption>ground truth</figcaption></figure>
 <figure><img id="pred"><figcaption>prediction</figcaption></figure>
 <figure><img id="error"><figcaption>|prediction - ground truth|</figcaption></figure>
 <p id="detail-name"></p>
</div>
<table id="samples"><thead><tr id="head"></tr></thead><tbody></tbody></table>
<script>
const DATA = {data};
const higherBetter = c => c.startsWith("d") || c === "psnr" || c === "ssim";
let sortKey = "abs_rel", descending = true;
function worseFirst(c) {{ return !higherBetter(c); }}
function render() {{
  const rows = DATA.rows.slice().sort((a, b) => {{
    const x = a[sortKey], y = b[sortKey];
    const order = typeof x === "string" ? x.localeCompare(y) : x - y;
    return descending ? -order : order;
  }});
  const body = document.querySelector("#samples tbody");
  body.innerHTML = "";
  for (const row of rows) {{
    const tr = document.createElement("tr");
    tr.dataset.name = row.name;
    tr.innerHTML = "<td style='text-align:left'></td>" +
      DATA.columns.map(c => "<td>" + row[c].toFixed(4) + "</td>").join("");
    tr.firstChild.textContent = row.name;
    tr.addEventListener("click", () => openSample(row, tr));
    body.appendChild(tr);
  }}
}}
function openSample(row, tr) {{
  for (const k of ["rgb", "gt", "pred", "error"]) document.getElementById(k).src = row[k];
  document.getElementById("error-over").src = row.error;
  document.getElementById("detail-name").textContent = row.name;
  document.querySelectorAll("tr.open").forEach(t => t.classList.remove("open"));
  tr.classList.add("open");
  document.getElementById("detail").hidden = false;
}}
const head = document.getElementById("head");
for (const c of ["name", ...DATA.columns]) {{
  const th = document.createElement("th");
  th.textContent = c;
  th.dataset.key = c;
  th.addEventListener("click", () => {{
    descending = sortKey === c ? !descending : (c !== "name" && worseFirst(c));
    sortKey = c;
    render();
  }});
  head.appendChild(th);
}}
const over = document.getElementById("error-over"), slider = document.getElementById("opacity");
const setOpacity = () => {{ over.style.opacity = slider.value / 100; }};
slider.addEventListener("input", setOpacity);
setOpacity();
render();
</script>
</body></html>
"""
