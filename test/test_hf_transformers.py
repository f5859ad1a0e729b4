"""Transformers-format (-hf) checkpoints, checked against the transformers library itself, not our own mapping.

A DepthAnythingForDepthEstimation is built by transformers, every parameter is given distinct random values (so
two same-shaped tensors swapped by a wrong key mapping change the output), saved with save_pretrained, loaded by
DepthEstimator from the folder, and both forwards run on the same 518 x 518 input (no position-embedding
interpolation at the pre-training grid).
"""

import pytest
import torch

from depth_anything_ros.models.v2.estimator import DepthEstimator
from depth_anything_ros.models.variants import ENCODERS

transformers = pytest.importorskip("transformers")

MAX_DEPTH = 20  # an int: transformers 5 types DepthAnythingConfig.max_depth so (the hub files hold 20)
SIDE = 518  # 37 x 37 patches: the grid pos_embed was trained at


def _config(encoder: str):
    """Build the transformers config of a Depth-Anything-V2 metric model of one encoder size (as the hub -hf files)."""
    spec = ENCODERS[encoder]
    backbone = transformers.Dinov2Config(
        hidden_size=spec.embed_dim, num_hidden_layers=spec.depth, num_attention_heads=spec.num_heads,
        intermediate_size=spec.hidden_dim, patch_size=spec.patch_size, image_size=SIDE,
        out_indices=[i + 1 for i in spec.intermediate_layers], apply_layernorm=True, reshape_hidden_states=False,
        layerscale_value=1.0)
    return transformers.DepthAnythingConfig(
        backbone_config=backbone, patch_size=spec.patch_size, reassemble_hidden_size=spec.embed_dim,
        neck_hidden_sizes=list(spec.out_channels), fusion_hidden_size=spec.features,
        depth_estimation_type="metric", max_depth=MAX_DEPTH)


def _hf_model(encoder: str, seed: int):
    """Build a transformers model whose every tensor holds its own random values, so no two tensors are alike."""
    torch.manual_seed(seed)
    model = transformers.DepthAnythingForDepthEstimation(_config(encoder)).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            noise = torch.randn(param.shape, generator=gen)
            spread = float(param.std()) if param.numel() > 1 and float(param.std()) > 0 else 0.05
            param.add_(noise * 0.5 * spread)
        _spread_output(model, _input(seed))
    return model


def _spread_output(model, x: torch.Tensor) -> None:
    """Rescale the last 1x1 conv so its logits have zero mean, unit std on `x`: depths spread over (0, max_depth)."""
    conv = model.head.conv3
    logits = {}
    handle = conv.register_forward_hook(lambda _m, _i, out: logits.setdefault("out", out))
    model(pixel_values=x)
    handle.remove()
    mean, std = float(logits["out"].mean()), float(logits["out"].std())
    conv.weight.div_(std)
    conv.bias.sub_(mean).div_(std)


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf") / "Depth-Anything-V2-Metric-Indoor-Small-hf"
    model = _hf_model("vits", seed=3)
    model.save_pretrained(folder, safe_serialization=True)
    return folder, model


def _input(seed: int) -> torch.Tensor:
    """(1, 3, 518, 518) normalised-image-like network input."""
    return torch.randn((1, 3, SIDE, SIDE), generator=torch.Generator().manual_seed(seed))


def test_transformers_folder_gives_transformers_forward(hf_folder):
    folder, hf = hf_folder
    est = DepthEstimator(folder, device="cpu", precision="fp32", input_size=SIDE, compile=False)
    assert (est.encoder, est.max_depth) == ("vits", MAX_DEPTH)  # read from config.json, no parameters given
    x = _input(0)
    with torch.no_grad():
        theirs = hf(pixel_values=x).predicted_depth
        ours = est.model(x)
    assert ours.shape == theirs.shape == (1, SIDE, SIDE)
    assert float(theirs.std()) > 0.05, "the random model's output is flat: the comparison would prove nothing"
    diff = (ours - theirs).abs()
    print(f"output std {float(theirs.std()):.3f} m, max |ours - transformers| {float(diff.max()):.3g} m")
    assert float(diff.max()) <= 1e-5, f"max |ours - transformers| = {float(diff.max()):.3g} m"


def test_a_wrong_mapping_would_show(hf_folder, tmp_path):
    """The test above can fail: swapping two same-shaped tensors in the folder changes the output by far more."""
    folder, hf = hf_folder
    from safetensors.torch import load_file, save_file

    state = load_file(folder / "model.safetensors")
    a, b = "neck.fusion_stage.layers.0.projection.weight", "neck.fusion_stage.layers.1.projection.weight"
    assert state[a].shape == state[b].shape
    state[a], state[b] = state[b], state[a]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((folder / "config.json").read_text())
    save_file(state, broken / "model.safetensors")
    est = DepthEstimator(broken, device="cpu", precision="fp32", input_size=SIDE, compile=False)
    x = _input(1)
    with torch.no_grad():
        diff = (est.model(x) - hf(pixel_values=x).predicted_depth).abs()
    assert float(diff.max()) > 1e-3
