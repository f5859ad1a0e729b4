"""Video Depth Anything against outputs of the OFFICIAL code (same synthetic weights), float32 on the CPU.

test/data/vda_reference/README.md says how the reference was made (tools/make_vda_reference.py).
Bar: max |diff| <= 1e-4 m and mean |diff| <= 2e-5 m per 20 m of depth, for the bare network, streaming over 48
frames (the official infer_video_depth_one), a wide clip (the aspect-ratio rule) and offline windows.
"""

from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

from depth_anything_ros.models.vda import temporal
from depth_anything_ros.models.vda.checkpoint import synthetic_vda_state_dict
from depth_anything_ros.models.vda.estimator import VDAEstimator
from depth_anything_ros.models.vda.network import VideoDepthAnything

REF = np.load(Path(__file__).parent / "data" / "vda_reference" / "vda_reference.npz")
MAX_ABS = 1e-4  # metres per 20 m
MAX_MEAN = 2e-5
SUB = 2  # stream and offline references hold every 2nd pixel
INPUT_SIZE = 42
PROBE_KEYS = ("pretrained.pos_embed", "head.motion_modules.3.temporal_transformer.proj_out.weight",
              "head.scratch.output_conv2.2.weight")


@cache
def _weights(encoder: str) -> dict[str, torch.Tensor]:
    state = synthetic_vda_state_dict(encoder, seed=0)
    probe = np.stack([state[k].flatten()[:16].numpy() for k in PROBE_KEYS])
    np.testing.assert_allclose(probe, REF[f"probe_{encoder}"], rtol=1e-6, atol=1e-7,
                               err_msg="synthetic weights changed: rerun tools/make_vda_reference.py")
    return state


@cache
def _estimator() -> VDAEstimator:
    return VDAEstimator(_weights("vits"), device="cpu", precision="fp32", input_size=INPUT_SIZE, compile=False)


def _diffs(ours: np.ndarray, official: np.ndarray) -> tuple[float, float]:
    """(max, mean) |diff| in metres, after checking that the reference is not flat."""
    assert ours.shape == official.shape
    assert official.std() > 0.1 and official.max() < 20.0, "the reference must vary (and stay under 20 m)"
    diff = np.abs(ours.astype(np.float64) - official)
    return float(diff.max()), float(diff.mean())


def _assert_close(ours: np.ndarray, official: np.ndarray) -> None:
    worst, mean = _diffs(ours, official)
    assert worst <= MAX_ABS and mean <= MAX_MEAN, f"max |diff| {worst:.3g} m, mean {mean:.3g} m"


def _stream(frames: np.ndarray) -> np.ndarray:
    est, stream = _estimator(), temporal.StreamState()
    return np.stack([est.estimate_stream(torch.from_numpy(f)[None], "rgb8", stream)[0].numpy() for f in frames])


@pytest.mark.parametrize("encoder", ["vits", "vitb", "vitl"])
def test_network_equals_official_forward(encoder):
    model = VideoDepthAnything(encoder).eval()
    model.load_state_dict(_weights(encoder))
    with torch.inference_mode():
        depth, states = model(torch.from_numpy(REF["network_input"]))
    assert len(states) == 8 and all(s.shape[1] == 4 for s in states)  # 4 frames, 8 attentions
    _assert_close(depth.numpy(), REF[f"forward_{encoder}"])


def test_streaming_equals_official_infer_video_depth_one():
    """48 frames: the first fills the slots, from frame 11 slot 1 is dropped, after 42 the slot rule shows."""
    clip = REF["clip"][:REF["stream"].shape[0]]
    assert clip.shape[0] > temporal.MAX_SLOTS
    _assert_close(_stream(clip)[:, ::SUB, ::SUB], REF["stream"])


def test_streaming_wide_frames_take_the_smaller_input_size():
    assert _estimator().input_size == INPUT_SIZE
    _assert_close(_stream(REF["wide_clip"])[:, ::SUB, ::SUB], REF["wide"])


def test_a_broken_slot_rule_fails_the_comparison(monkeypatch):
    """Attending to the last 31 frames instead of the official choice: equal up to frame 30, then far off."""
    monkeypatch.setattr(temporal, "attended_slots", lambda slots: slots[-(temporal.WINDOW - 1):])
    clip = REF["clip"][:REF["stream"].shape[0]]
    ours = _stream(clip)[:, ::SUB, ::SUB]
    worst, _ = _diffs(ours[:30], REF["stream"][:30])
    assert worst <= MAX_ABS
    worst, mean = _diffs(ours, REF["stream"])
    assert worst > 100 * MAX_ABS and mean > 10 * MAX_MEAN


def test_offline_windows_equal_official_infer_video_depth():
    """60 frames: windows at 0, 22 and 44 (the last padded), keyframes, blending over 8 frames."""
    clip = REF["clip"][:REF["offline"].shape[0]]
    frames = (torch.from_numpy(f)[None] for f in clip)
    ours = np.stack([d.numpy() for d in _estimator().estimate_clip(frames, "rgb8")])
    _assert_close(ours[:, ::SUB, ::SUB], REF["offline"])
