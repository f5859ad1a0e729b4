"""The model's state_dict equals the official checkpoints' keys, shapes and dtypes for every encoder."""

import json
from pathlib import Path

import pytest
import torch

from depth_anything_ros.models.v2.network import DepthAnythingV2
from depth_anything_ros.models.variants import CHECKPOINTS, ENCODERS

REFERENCE = Path(__file__).resolve().parent / "data" / "checkpoint_keys"


def _reference(encoder: str) -> dict:
    return json.loads((REFERENCE / f"checkpoint_keys_{encoder}.json").read_text())


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
def test_state_dict_equals_official_keys_and_shapes(encoder):
    ref = _reference(encoder)
    with torch.device("meta"):
        state = DepthAnythingV2(encoder, max_depth=20.0).state_dict()
    assert list(state) == [k["name"] for k in ref["keys"]]
    for key in ref["keys"]:
        assert tuple(state[key["name"]].shape) == tuple(key["shape"]), key["name"]
        assert str(state[key["name"]].dtype) == f"torch.{key['dtype']}", key["name"]
    assert sum(t.numel() for t in state.values()) == ref["num_elements"]
    assert ENCODERS[encoder].features == ref["features"]
    assert list(ENCODERS[encoder].out_channels) == ref["out_channels"]


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
def test_relative_head_has_the_same_keys(encoder):
    with torch.device("meta"):
        metric = DepthAnythingV2(encoder, max_depth=20.0).state_dict()
        relative = DepthAnythingV2(encoder, max_depth=None).state_dict()
    assert {k: v.shape for k, v in metric.items()} == {k: v.shape for k, v in relative.items()}


def test_variant_table_is_consistent():
    for name, spec in CHECKPOINTS.items():
        assert spec.encoder in ENCODERS
        if spec.kind == "metric_focal":  # Depth Anything 3: test/test_da3_numerics.py
            assert (name, spec.repo_id, spec.format, spec.max_depth) == (
                "da3metric-large", "depth-anything/DA3METRIC-LARGE", "da3", None)
            continue
        if spec.kind == "metric_video":  # Video Depth Anything: test/test_vda_numerics.py
            size = {"vits": "Small", "vitb": "Base", "vitl": "Large"}[spec.encoder]
            assert (name, spec.repo_id, spec.filename, spec.format, spec.max_depth) == (
                f"vda-metric-{spec.encoder}", f"depth-anything/Metric-Video-Depth-Anything-{size}",
                f"metric_video_depth_anything_{spec.encoder}.pth", "vda", None)
            continue
        assert name.startswith(("hypersim-", "vkitti-", "relative-"))
        assert (spec.max_depth is None) == (spec.kind == "relative")
        assert spec.repo_id.startswith("depth-anything/Depth-Anything-V2-")
        assert ("-hf" in name) == spec.repo_id.endswith("-hf") == (spec.format == "hf")
    assert CHECKPOINTS["hypersim-vits"].repo_id == "depth-anything/Depth-Anything-V2-Metric-Hypersim-Small"
    assert CHECKPOINTS["hypersim-vits"].filename == "depth_anything_v2_metric_hypersim_vits.pth"
    assert CHECKPOINTS["vkitti-vitl"].max_depth == 80.0
    assert CHECKPOINTS["hypersim-vitb-hf"].repo_id == "depth-anything/Depth-Anything-V2-Metric-Indoor-Base-hf"
    assert CHECKPOINTS["vkitti-vits-hf"].files == ("config.json", "model.safetensors")


def test_forward_shapes_and_ranges():
    """(B, 3, H, W) -> (B, H, W); metric output lies in (0, max_depth), relative output is >= 0."""
    from depth_anything_ros.models.synthetic_weights import synthetic_state_dict

    state = synthetic_state_dict("vits", seed=0)
    x = torch.randn(2, 3, 42, 56, generator=torch.Generator().manual_seed(0))
    for max_depth in (20.0, None):
        model = DepthAnythingV2("vits", max_depth=max_depth).eval()
        model.load_state_dict(state)
        with torch.no_grad():
            depth = model(x)
        assert depth.shape == (2, 42, 56) and depth.dtype == torch.float32
        assert torch.isfinite(depth).all() and (depth >= 0).all()
        if max_depth is not None:
            assert (depth < max_depth).all()


def test_pure_bf16_model_stays_close_to_fp32():
    """model.to(bfloat16) runs without autocast and its float32 output stays near the fp32 one."""
    from depth_anything_ros.models.synthetic_weights import synthetic_state_dict

    model = DepthAnythingV2("vits", max_depth=20.0).eval()
    model.load_state_dict(synthetic_state_dict("vits", seed=0))
    x = torch.randn(1, 3, 70, 84, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model(x)
        low = model.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert low.dtype == torch.float32
    assert (low - ref).abs().mean() < 0.05 * 20.0
