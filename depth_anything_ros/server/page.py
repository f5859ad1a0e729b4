"""The web page and the Gradio APIs: /on_submit (the official demo's signature) and /estimate, on the same service."""

from __future__ import annotations

import contextlib
import shutil
import time
import uuid
from pathlib import Path

import gradio as gr

from depth_anything_ros.frame.colorize import COLORMAPS
from depth_anything_ros.frame.files import depth_gray_png_bytes, write_file
from depth_anything_ros.server.service import DepthService, Outcome
from depth_anything_ros.server.uploads import RequestError

ON_SUBMIT_DOC = ("The official Depth-Anything-V2 demo's API: image in; [image-slider pair (image, colourised depth), "
                 "grayscale depth PNG (8-bit, near bright, per image), 16-bit PNG] out. Unlike the official demo's "
                 "relative disparity, the 16-bit PNG holds METRIC depth in millimetres (0 = invalid).")
ESTIMATE_DOC = ("Metric depth of an image with optional intrinsics (fx fy cx cy in pixels, or fov: the horizontal "
                "field of view in degrees; neither: 60 degrees), colormap and cloud depth limits in metres (0: none); "
                "out: float32 TIFF (metres), 16-bit PNG (millimetres, 0 = invalid), PLY point cloud, preview PNG "
                "(image, colourised depth, colour bar in metres) and a JSON summary.")
# a request's output folder (the page links to it) is removed after this, as Gradio's delete_cache does with its files
KEEP_OUTPUTS_S = 1800
SUFFIXES = {"depth": "_depth.tiff", "depth_mm": "_depth_mm.png", "ply": ".ply", "preview": "_preview.png"}


def _stem(path: str) -> str:
    """Return a safe output name from an uploaded file's name."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(path).stem)[:64] or "image"


def depth_range_text(summary: dict) -> str:
    """Return the one line the page shows: depth range in metres, image size and where the intrinsics came from."""
    depth, image, intr = summary["depth_m"], summary["image"], summary["intrinsics"]
    if depth["min"] is None:
        return f"no valid depth ({image['width']}x{image['height']})"
    return (f"depth {depth['min']:.3f} - {depth['max']:.3f} m (median {depth['median']:.3f} m), "
            f"{image['width']}x{image['height']}, fx {intr['fx']:.1f} px ({intr['source']})")


def _params(fx, fy, cx, cy, fov, colormap, cloud_min_depth, cloud_max_depth) -> dict:
    """Return the service's parameters of the form's values; an intrinsic of 0 (the form's default) is not given."""
    intrinsics = {"fx": fx, "fy": fy, "cx": cx, "cy": cy, "fov": fov}
    return {**{name: None if value == 0 else value for name, value in intrinsics.items()}, "colormap": colormap,
            "cloud_min_depth": cloud_min_depth, "cloud_max_depth": cloud_max_depth}


class Page:
    """The Gradio handlers: each reads the uploaded file, runs the service, writes outputs into a folder of its own."""

    def __init__(self, service: DepthService, outputs: Path):
        self.service, self.outputs = service, outputs

    def _run(self, image: str | None, params: dict) -> tuple[Outcome, Path]:
        """Return the outcome of one request and a new output folder; gr.Error with the reason otherwise."""
        if not image:
            raise gr.Error("no image: upload one first")
        try:
            outcome = self.service.run(Path(image).read_bytes(), params)
        except RequestError as exc:
            raise gr.Error(str(exc)) from None
        cutoff = time.time() - KEEP_OUTPUTS_S
        for old in self.outputs.glob("*"):
            with contextlib.suppress(FileNotFoundError):  # another request's sweep may have removed it
                if old.stat().st_mtime < cutoff:
                    shutil.rmtree(old, ignore_errors=True)
        folder = self.outputs / uuid.uuid4().hex
        folder.mkdir(parents=True)
        return outcome, folder

    def _files(self, outcome: Outcome, folder: Path, name: str) -> dict[str, str]:
        """Write estimate's four outputs as NAME_depth.tiff, NAME_depth_mm.png, NAME.ply, NAME_preview.png; paths."""
        paths = {}
        for key, data in outcome.files().items():
            paths[key] = str(folder / f"{name}{SUFFIXES[key]}")
            write_file(paths[key], data)
        return paths

    def on_submit(self, image: str | None):
        """Return [(image, colourised depth), grayscale depth PNG, 16-bit millimetre PNG] as the official demo."""
        outcome, folder = self._run(image, {})
        name = _stem(image)
        gray, raw = folder / f"{name}_depth_gray.png", folder / f"{name}{SUFFIXES['depth_mm']}"
        write_file(gray, depth_gray_png_bytes(outcome.result.depth))
        write_file(raw, outcome.files(("depth_mm",))["depth_mm"])
        return [(outcome.result.rgb, outcome.result.colored), str(gray), str(raw)]

    def estimate(self, image: str | None, fx, fy, cx, cy, fov, colormap, cloud_min_depth, cloud_max_depth):
        """Return [TIFF, 16-bit mm PNG, PLY, preview PNG, JSON summary] of an image with intrinsics and options."""
        outcome, folder = self._run(image, _params(fx, fy, cx, cy, fov, colormap, cloud_min_depth, cloud_max_depth))
        paths = self._files(outcome, folder, _stem(image))
        return [paths["depth"], paths["depth_mm"], paths["ply"], paths["preview"], outcome.summary]

    def show(self, image: str | None, *options):
        """Return what the page shows: slider pair, depth range, preview, downloads and summary."""
        outcome, folder = self._run(image, _params(*options))
        paths = self._files(outcome, folder, _stem(image))
        return [(outcome.result.rgb, outcome.result.colored), depth_range_text(outcome.summary), paths["preview"],
                list(paths.values()), outcome.summary]


def _header(model: dict) -> str:
    """Return the page's Markdown header: the model, its licence, and the synthetic-weights warning when so."""
    head = (f"# Metric depth: depth_anything_ros\n**Model** `{model['checkpoint']}` ({model['encoder']}, "
            f"input {model['input_size']}, {model['precision']} on {model['device']}) · **licence** "
            f"{model['licence']} · upload an image, optionally give its intrinsics, and press *Estimate depth*.")
    if model["synthetic"]:
        head += ("\n\n<div id='synthetic-banner' style='background:#b00020;color:white;padding:8px;font-weight:bold'>"
                 "SYNTHETIC WEIGHTS: this checkpoint holds random weights; every depth shown is MEANINGLESS, only "
                 "the pipeline is real.</div>")
    return head


def build(service: DepthService, outputs: Path) -> gr.Blocks:
    """Return the page; its events give the APIs /on_submit and /estimate (and a private one for the page)."""
    page = Page(service, outputs)
    with gr.Blocks(title="depth_anything_ros: metric depth", delete_cache=(600, KEEP_OUTPUTS_S)) as blocks:
        gr.Markdown(_header(service.model))
        with gr.Row():
            image = gr.Image(label="Input image", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                             elem_id="input-image")
            slider = gr.ImageSlider(label="Image and metric depth (drag the slider)", type="numpy", format="png",
                                    elem_id="depth-slider")
        with gr.Accordion("Intrinsics and options", open=False):
            with gr.Row():
                intrinsics = [gr.Number(label=f"{name} (px; 0: not given)", value=0, elem_id=name)
                              for name in ("fx", "fy", "cx", "cy")]
                fov = gr.Number(label="fov: or the horizontal field of view (deg; 0: not given, 60 without fx..cy)",
                                value=0, elem_id="fov")
            with gr.Row():
                colormap = gr.Dropdown(list(COLORMAPS), value=service.options.colormap, label="colormap")
                cloud = [gr.Number(label="cloud min depth (m)", value=service.options.cloud_min_depth, minimum=0),
                         gr.Number(label="cloud max depth (m, 0: none)", value=service.options.cloud_max_depth,
                                   minimum=0)]
        button = gr.Button("Estimate depth", variant="primary", elem_id="estimate-button")
        depth_range = gr.Textbox(label="Depth range", interactive=False, elem_id="depth-range")
        preview = gr.Image(label="Preview: image, depth, colour bar in metres", type="filepath", format="png",
                           interactive=False, elem_id="preview")
        downloads = gr.File(label="Downloads: depth TIFF (float32 m), 16-bit PNG (mm), PLY, preview",
                            file_count="multiple", interactive=False, elem_id="downloads")
        summary = gr.JSON(label="Summary", elem_id="summary")
        inputs = [image, *intrinsics, fov, colormap, *cloud]
        button.click(page.show, inputs, [slider, depth_range, preview, downloads, summary], api_visibility="private")
        with gr.Row(visible=False):  # the APIs' own outputs, as the official demo's and as /estimate documents them
            gray, raw = gr.File(label="Grayscale depth map"), gr.File(label="16-bit raw output (millimetres)")
            files = [gr.File(label="Depth TIFF (m)"), gr.File(label="Depth 16-bit PNG (mm)"), gr.File(label="PLY")]
            api_preview = gr.Image(label="preview", type="filepath", format="png")
            api_summary = gr.JSON(label="summary")
            # the APIs take the file as it is, so that a file that is no image gets the service's own error
            api_image = gr.File(label="image", file_types=["image"], type="filepath")
            on_submit, estimate = gr.Button(), gr.Button()
        on_submit.click(page.on_submit, [api_image], [slider, gray, raw], api_name="on_submit",
                        api_description=ON_SUBMIT_DOC)
        estimate.click(page.estimate, [api_image, *inputs[1:]], [*files, api_preview, api_summary],
                       api_name="estimate", api_description=ESTIMATE_DOC)
    return blocks
