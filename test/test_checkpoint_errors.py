"""Checkpoint loading: every failure is one CheckpointError that says what is wrong and what to do."""

import json
import pickle
import random

import pytest
import torch
from safetensors.torch import save_file

from depth_anything_ros.models.checkpoint_io import CheckpointError
from depth_anything_ros.models.synthetic_weights import synthetic_state_dict, write_synthetic_checkpoint
from depth_anything_ros.models.v2.checkpoint import (
    from_hf_state_dict,
    load_checkpoint,
    load_state_dict,
    to_hf_state_dict,
)
from depth_anything_ros.models.variants import CHECKPOINTS


@pytest.fixture(scope="module")
def vits_state():
    return synthetic_state_dict("vits", seed=0)


@pytest.fixture(scope="module")
def vits_pth(tmp_path_factory):
    return write_synthetic_checkpoint(tmp_path_factory.mktemp("ckpt") / "synthetic_vits.pth", "vits", seed=0)


def _equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _no_torch_traceback(err: pytest.ExceptionInfo):
    assert err.value.__cause__ is None and err.value.__suppress_context__


class _WritesFile:
    """Pickles to a call of open(path, 'w'): unpickling it creates `path`."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


# -- reading good files -----------------------------------------------------------------------------------------


def test_pth_and_safetensors_round_trip(tmp_path, vits_state):
    for name in ("a.pth", "a.pt", "a.safetensors"):
        path = write_synthetic_checkpoint(tmp_path / name, "vits", seed=0)
        assert _equal(load_state_dict(path, "vits"), vits_state)


def test_synthetic_weights_are_deterministic(vits_state):
    assert _equal(synthetic_state_dict("vits", seed=0), vits_state)
    other = synthetic_state_dict("vits", seed=1)
    assert not torch.equal(other["pretrained.pos_embed"], vits_state["pretrained.pos_embed"])


def test_encoder_is_read_from_shapes(vits_pth):
    loaded = load_checkpoint(vits_pth)
    assert loaded.encoder == "vits" and loaded.kind is None and loaded.max_depth is None


def test_training_checkpoint_with_ddp_prefix(tmp_path, vits_state):
    path = tmp_path / "finetuned.pth"
    torch.save({"model": {f"module.{k}": v for k, v in vits_state.items()}, "epoch": 3}, path)
    assert _equal(load_state_dict(path, "vits"), vits_state)


def test_hf_names_round_trip(vits_state):
    hf = to_hf_state_dict(vits_state, "vits")
    assert "backbone.encoder.layer.0.attention.attention.query.weight" in hf
    assert "neck.fusion_stage.layers.3.projection.weight" in hf  # refinenet1 is the last fusion layer
    assert not any(k.startswith(("pretrained.", "depth_head.")) for k in hf)
    assert _equal(from_hf_state_dict(hf, "vits"), vits_state)
    del hf["backbone.embeddings.mask_token"]  # pre-training only; some exports drop it
    assert torch.equal(from_hf_state_dict(hf, "vits")["pretrained.mask_token"], torch.zeros(1, 384))
    del hf["backbone.encoder.layer.3.attention.attention.key.bias"]
    with pytest.raises(CheckpointError, match="lacks tensor 'backbone.encoder.layer.3.attention.attention.key.bias'"):
        from_hf_state_dict(hf, "vits")


def test_hf_folder_and_hf_named_safetensors(tmp_path, vits_state):
    folder = tmp_path / "Depth-Anything-V2-Metric-Indoor-Small-hf"
    folder.mkdir()
    save_file(to_hf_state_dict(vits_state, "vits"), str(folder / "model.safetensors"))
    config = {"model_type": "depth_anything", "depth_estimation_type": "metric", "max_depth": 20,
              "backbone_config": {"model_type": "dinov2", "hidden_size": 384}}
    (folder / "config.json").write_text(json.dumps(config))
    loaded = load_checkpoint(folder)
    assert loaded.encoder == "vits" and loaded.kind == "metric" and loaded.max_depth == 20.0
    assert _equal(loaded.state_dict, vits_state)
    assert _equal(load_state_dict(folder / "model.safetensors", "vits"), vits_state)

    with pytest.raises(CheckpointError, match=r"holds a 'vits' model .* pass encoder='vits'"):
        load_checkpoint(folder, "vitl")
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="lacks model.safetensors"):
        load_checkpoint(folder)


def test_variant_name_resolves_from_hub_cache(tmp_path, vits_state):
    spec = CHECKPOINTS["hypersim-vits"]
    repo = tmp_path / ("models--" + spec.repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    write_synthetic_checkpoint(snapshot / spec.filename, "vits", seed=0)
    loaded = load_checkpoint("hypersim-vits", cache_dir=tmp_path, download=False)
    assert loaded.encoder == "vits" and loaded.kind == "metric" and loaded.max_depth == 20.0
    assert _equal(loaded.state_dict, vits_state)


# -- errors -----------------------------------------------------------------------------------------------------


def test_missing_known_file_names_the_download_command(tmp_path):
    path = tmp_path / "models" / "depth_anything_v2_metric_vkitti_vitb.pth"
    with pytest.raises(CheckpointError) as err:
        load_state_dict(path, "vitb")
    msg = str(err.value)
    assert str(path) in msg
    assert (f"hf download depth-anything/Depth-Anything-V2-Metric-VKITTI-Base depth_anything_v2_metric_vkitti_vitb.pth "
            f"--local-dir {path.parent}") in msg


def test_missing_unknown_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"checkpoint file not found: .*mine\.pth"):
        load_state_dict(tmp_path / "mine.pth", "vits")


def test_variant_name_offline_names_the_command(tmp_path):
    with pytest.raises(CheckpointError) as err:
        load_checkpoint("vkitti-vitl", cache_dir=tmp_path, download=False)
    msg = str(err.value)
    assert "not in the Hugging Face cache" in msg
    assert ("hf download depth-anything/Depth-Anything-V2-Metric-VKITTI-Large "
            "depth_anything_v2_metric_vkitti_vitl.pth") in msg
    with pytest.raises(CheckpointError, match="hf download depth-anything/Depth-Anything-V2-Metric-Outdoor-Small-hf "
                                              "config.json model.safetensors"):
        load_checkpoint("vkitti-vits-hf", cache_dir=tmp_path, download=False)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_truncated_file(tmp_path, suffix):
    path = write_synthetic_checkpoint(tmp_path / f"cut{suffix}", "vits", seed=0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as err:
        load_state_dict(path, "vits")
    _no_torch_traceback(err)


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".safetensors"])
def test_garbage_file(tmp_path, suffix):
    # random bytes break torch's unpickler in many ways (IndexError, TypeError, UnpicklingError, ...): fixed seeds
    # make the test repeatable, and 300 of them cover the ways a damaged download fails
    path = tmp_path / f"garbage{suffix}"
    for seed in range(300):
        path.write_bytes(random.Random(seed).randbytes(4096))
        with pytest.raises(CheckpointError, match=str(path.name)) as err:
            load_state_dict(path, "vits")
        _no_torch_traceback(err)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.pth"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_state_dict(path, "vits")


@pytest.mark.parametrize("container", ["torch.save", "raw pickle"])
def test_malicious_pickle_is_refused_and_runs_no_code(tmp_path, vits_state, container):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pth"
    payload = {"pretrained.cls_token": vits_state["pretrained.cls_token"], "evil": _WritesFile(marker)}
    if container == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f)
    with pytest.raises(CheckpointError, match="refused to load .*could run code") as err:
        load_state_dict(path, "vits")
    _no_torch_traceback(err)
    assert not marker.exists()

    # the payload is live: an unsafe load does run it
    proof = tmp_path / "proof_it_runs"
    with open(tmp_path / "proof.pkl", "wb") as f:
        pickle.dump(_WritesFile(proof), f)
    with open(tmp_path / "proof.pkl", "rb") as f:
        pickle.load(f).close()
    assert proof.exists()


def test_wrong_encoder_names_first_mismatch_and_the_fitting_encoder(vits_pth):
    with pytest.raises(CheckpointError) as err:
        load_state_dict(vits_pth, "vitl")
    msg = str(err.value)
    assert "does not fit encoder 'vitl'" in msg
    assert "'pretrained.cls_token' has shape (1, 1, 384), expected (1, 1, 1024)" in msg
    assert "fit encoder 'vits'" in msg


def test_variant_with_other_encoder(tmp_path):
    with pytest.raises(CheckpointError, match="'hypersim-vitb' is a 'vitb' model but encoder 'vits'"):
        load_checkpoint("hypersim-vitb", "vits", cache_dir=tmp_path, download=False)


@pytest.mark.parametrize("name", ["model.ckpt", "model.bin", "model.onnx", "model"])
def test_wrong_extension(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"x")
    with pytest.raises(CheckpointError, match=r"unsupported checkpoint type .* expected a \.pth/\.pt file"):
        load_state_dict(path, "vits")


def test_missing_and_unexpected_keys(tmp_path, vits_state):
    partial = dict(vits_state)
    del partial["depth_head.scratch.output_conv1.bias"]
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match=r"1 missing tensor\(s\), first: depth_head.scratch.output_conv1.bias"):
        load_state_dict(tmp_path / "partial.pth", "vits")

    extra = {**vits_state, "depth_head.readout.weight": torch.zeros(3)}
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match=r"1 unexpected tensor\(s\), first: depth_head.readout.weight"):
        load_state_dict(tmp_path / "extra.pth", "vits")


def test_not_a_state_dict(tmp_path):
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(CheckpointError, match="holds a Tensor, not a state_dict"):
        load_state_dict(tmp_path / "tensor.pth", "vits")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not a Depth-Anything-V2 checkpoint"):
        load_checkpoint(tmp_path / "other.pth")


def test_variant_name_offline_with_download_allowed(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(CheckpointError, match="HF_HUB_OFFLINE is set.*hf download depth-anything/"
                                              "Depth-Anything-V2-Metric-Hypersim-Small"):
        load_checkpoint("hypersim-vits", cache_dir=tmp_path)
