"""VDAEstimator: a Video Depth Anything metric model on one device, frames of a stream in, metres out (no ROS).

It keeps DepthEstimator's interface; `estimate_stream` adds the temporal state: each frame attends to the hidden
states of the past frames of its StreamState (models/vda/temporal.py), exactly as the official
infer_video_depth_one. Without a stream (`estimate_raw`, `estimate`) every image is the first frame of a new stream.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping

import torch

from depth_anything_ros.models.input_size import check_input_size
from depth_anything_ros.models.v2.estimator import AUTO, DepthEstimator, resolve_device, resolve_precision
from depth_anything_ros.models.vda.checkpoint import load_vda_state_dict
from depth_anything_ros.models.vda.network import VideoDepthAnything
from depth_anything_ros.models.vda.preprocess import network_input, network_size, upsample_depth
from depth_anything_ros.models.vda.temporal import OfflineWindows, StreamState

_log = logging.getLogger(__name__)
DEFAULT_INPUT_SIZE = 518  # the official infer_video_depth(_one) default
COLOUR_MAX_DEPTH = 80.0  # far end of the colourised depth (the metric models learnt Virtual KITTI and IRS)


class StreamSizeError(ValueError):
    """A frame of another size than its stream's first frame (the stream must be reset first)."""


class VDAEstimator(DepthEstimator):
    """Video Depth Anything metric on one device; preprocessing on the CPU as the official code (float32 cubic)."""

    temporal = True

    def __init__(self, checkpoint: str | os.PathLike | Mapping[str, torch.Tensor], encoder: str | None = None,
                 device: str = AUTO, precision: str = AUTO, input_size: int = DEFAULT_INPUT_SIZE,
                 compile: bool | str = AUTO, download: bool = True):
        """Load a vda-metric-* variant, an official .pth/.safetensors file or a state_dict (relative ones refused)."""
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
        self.input_size = check_input_size(input_size)
        state, self.encoder, self.checkpoint_path = load_vda_state_dict(checkpoint, encoder, download)
        model = VideoDepthAnything(self.encoder)
        model.load_state_dict(state)
        self.model = model.to(device=self.device, dtype=self.dtype).eval().requires_grad_(False)
        self.max_depth = COLOUR_MAX_DEPTH
        self.compiled = self.device.type == "cuda" if compile == AUTO else bool(compile)
        self._forward = torch.compile(self.model, dynamic=False) if self.compiled else self.model
        self.compiled_shapes: list[tuple[int, ...]] = []
        self._staging: torch.Tensor | None = None
        self._staging_free = torch.cuda.Event() if self.device.type == "cuda" else None

    @property
    def is_metric(self) -> bool:
        """Always True: the relu head outputs metres."""
        return True

    def new_stream(self) -> StreamState:
        """Return an empty stream: its first frame starts the temporal context."""
        return StreamState()

    def estimate_stream(self, raw: torch.Tensor, encoding: str, stream: StreamState,
                        commit: bool = True) -> torch.Tensor:
        """(1, H, W[, C]) raw frame, the camera's stream -> (1, H, W) float32 metres on the device.

        The frame attends to the stream's past frames; with `commit` its hidden states join the stream (False: a
        look at the frame that leaves the stream as it was, e.g. the mirrored image of the confidence output).
        StreamSizeError when the frame's size differs from the stream's.
        """
        if raw.shape[0] != 1:
            raise ValueError(f"a stream takes one frame at a time, got {raw.shape[0]}")
        size = (int(raw.shape[1]), int(raw.shape[2]))
        if stream.size not in (None, size):
            raise StreamSizeError(f"frame of {size[1]}x{size[0]} pixels in a stream of {stream.size[1]}x"
                                  f"{stream.size[0]} frames: reset the stream first")
        x = network_input(raw, encoding, network_size(*size, self.input_size)).to(self.device, self.dtype)
        with torch.inference_mode():
            depth, states = self._forward(x[:, None], stream.past())
        if commit:
            stream.size = size
            stream.push(states)
        return upsample_depth(depth[:, 0], size)

    def estimate_clip(self, raws: Iterable[torch.Tensor], encoding: str) -> Iterator[torch.Tensor]:
        """(1, H, W[, C]) raw frames of one clip, in order -> each frame's (H, W) float32 metres, official windows.

        Windows of 32 frames overlapping by 10, blended over 8 (models/vda/temporal.py); at most one window of
        network inputs is held. StreamSizeError when a frame's size differs from the first one's.
        """
        clip = self.offline_clip()
        for raw in raws:
            yield from clip.push(raw, encoding)
        yield from clip.finish()

    def offline_clip(self) -> OfflineClip:
        """Return an empty clip for official offline (windowed) inference, fed one frame at a time."""
        return OfflineClip(self)

    def estimate_raw(self, raw: torch.Tensor, encoding: str = "rgb8") -> torch.Tensor:
        """(B, H, W[, C]) raw tensor -> (B, H, W) float32 metres; each image alone, as a new stream's first frame."""
        return torch.cat([self.estimate_stream(raw[i:i + 1], encoding, StreamState(), commit=False)
                          for i in range(raw.shape[0])])

    def warmup(self, height: int, width: int, batch: int = 1) -> None:
        """Run a first frame and a streamed frame of height x width now (compilation for both shapes)."""
        raw = torch.zeros((1, height, width, 3), dtype=torch.uint8, device=self.device)
        stream = StreamState()
        for _ in range(2):
            self.estimate_stream(raw, "rgb8", stream)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


class OfflineClip:
    """One clip of same-size frames through the official offline windows of a VDAEstimator."""

    def __init__(self, estimator: VDAEstimator):
        self.estimator = estimator
        self.size: tuple[int, int] | None = None  # (H, W) of the clip's frames
        self.windows = OfflineWindows(self._run)

    def push(self, raw: torch.Tensor, encoding: str) -> list[torch.Tensor]:
        """Add a (1, H, W[, C]) raw frame; return the (H, W) depths now final. StreamSizeError for another size."""
        size = (int(raw.shape[1]), int(raw.shape[2]))
        if self.size not in (None, size):
            raise StreamSizeError(f"frame of {size[1]}x{size[0]} pixels in a clip of {self.size[1]}x{self.size[0]} "
                                  "frames")
        self.size = size
        est = self.estimator
        return self.windows.push(network_input(raw, encoding, network_size(*size, est.input_size))[0])

    def finish(self) -> list[torch.Tensor]:
        """Run the last window(s) and return every remaining depth."""
        return self.windows.finish()

    def _run(self, window: torch.Tensor) -> torch.Tensor:
        """(WINDOW, 3, h, w) network inputs -> (WINDOW, H, W) float32 metres on the device."""
        est = self.estimator
        with torch.inference_mode():
            depth, _ = est._forward(window[None].to(est.device, est.dtype))
        return upsample_depth(depth[0], self.size)
