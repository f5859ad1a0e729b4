"""The one table of encoders and known checkpoints (Depth-Anything-V2, DA3 metric, Video Depth Anything metric)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EncoderSpec:
    """DINOv2 ViT-14 backbone and DPT head dimensions of one encoder size."""

    name: str
    embed_dim: int
    depth: int
    num_heads: int
    intermediate_layers: tuple[int, int, int, int]
    features: int
    out_channels: tuple[int, int, int, int]
    patch_size: int = 14
    mlp_ratio: int = 4
    pretrain_grid: int = 37  # pos_embed holds 37 x 37 patch positions (518 / 14) + 1 class token

    @property
    def hidden_dim(self) -> int:
        """Width of the MLP hidden layer."""
        return self.embed_dim * self.mlp_ratio


ENCODERS: dict[str, EncoderSpec] = {
    "vits": EncoderSpec("vits", 384, 12, 6, (2, 5, 8, 11), 64, (48, 96, 192, 384)),
    "vitb": EncoderSpec("vitb", 768, 12, 12, (2, 5, 8, 11), 128, (96, 192, 384, 768)),
    "vitl": EncoderSpec("vitl", 1024, 24, 16, (4, 11, 17, 23), 256, (256, 512, 1024, 1024)),
}

METRIC = "metric"
RELATIVE = "relative"
METRIC_FOCAL = "metric_focal"  # metres only with the focal length: depth = exp head x focal / 300 (DA3 metric)
METRIC_VIDEO = "metric_video"  # relu head in metres, temporal: each frame attends to past frames (Video Depth Anything)
FORMAT_PTH = "pth"
FORMAT_HF = "hf"
FORMAT_DA3 = "da3"  # the Depth-Anything-3 API's model.safetensors: every tensor under 'model.'
FORMAT_VDA = "vda"  # the official Video Depth Anything state_dict (.pth): 'pretrained.' and 'head.' tensors


@dataclass(frozen=True)
class CheckpointSpec:
    """A published checkpoint: where it lives on the Hugging Face hub and how to interpret its output."""

    name: str
    encoder: str
    repo_id: str
    filename: str
    kind: str  # METRIC (sigmoid x max_depth, metres), RELATIVE (ReLU, inverse depth), METRIC_FOCAL (DA3), METRIC_VIDEO
    max_depth: float | None  # the sigmoid head's scale; None for RELATIVE and METRIC_FOCAL (unbounded exp head)
    format: str  # FORMAT_PTH (official state_dict), FORMAT_HF (transformers folder) or FORMAT_DA3 (safetensors)
    licence: str = ""  # of the weights, as their Hugging Face model card states it

    @property
    def files(self) -> tuple[str, ...]:
        """Files of the hub repository that make up the checkpoint."""
        return ("config.json", self.filename) if self.format == FORMAT_HF else (self.filename,)

    def download_command(self, local_dir: str | None = None) -> str:
        """`hf` CLI command that fetches the checkpoint into the hub cache, or into `local_dir`."""
        cmd = f"hf download {self.repo_id} {' '.join(self.files)}"
        return cmd if local_dir is None else f"{cmd} --local-dir {local_dir}"


_SIZE_NAMES = {"vits": "Small", "vitb": "Base", "vitl": "Large"}
_V2_LICENCES = {"vits": "Apache-2.0", "vitb": "CC-BY-NC-4.0", "vitl": "CC-BY-NC-4.0"}
DA3_METRIC = "da3metric-large"
VDA_PREFIX = "vda-metric-"


def _build_checkpoints() -> dict[str, CheckpointSpec]:
    table: dict[str, CheckpointSpec] = {}
    for enc, size in _SIZE_NAMES.items():
        for scene, hub_scene, hf_scene, max_depth in (
            ("hypersim", "Hypersim", "Indoor", 20.0),
            ("vkitti", "VKITTI", "Outdoor", 80.0),
        ):
            name = f"{scene}-{enc}"
            table[name] = CheckpointSpec(
                name, enc, f"depth-anything/Depth-Anything-V2-Metric-{hub_scene}-{size}",
                f"depth_anything_v2_metric_{scene}_{enc}.pth", METRIC, max_depth, FORMAT_PTH, _V2_LICENCES[enc])
            table[f"{name}-hf"] = CheckpointSpec(
                f"{name}-hf", enc, f"depth-anything/Depth-Anything-V2-Metric-{hf_scene}-{size}-hf",
                "model.safetensors", METRIC, max_depth, FORMAT_HF, _V2_LICENCES[enc])
        table[f"relative-{enc}"] = CheckpointSpec(
            f"relative-{enc}", enc, f"depth-anything/Depth-Anything-V2-{size}",
            f"depth_anything_v2_{enc}.pth", RELATIVE, None, FORMAT_PTH, _V2_LICENCES[enc])
        table[f"relative-{enc}-hf"] = CheckpointSpec(
            f"relative-{enc}-hf", enc, f"depth-anything/Depth-Anything-V2-{size}-hf",
            "model.safetensors", RELATIVE, None, FORMAT_HF, _V2_LICENCES[enc])
    table[DA3_METRIC] = CheckpointSpec(DA3_METRIC, "vitl", "depth-anything/DA3METRIC-LARGE", "model.safetensors",
                                       METRIC_FOCAL, None, FORMAT_DA3, "Apache-2.0")
    for enc, size in _SIZE_NAMES.items():
        table[VDA_PREFIX + enc] = CheckpointSpec(
            VDA_PREFIX + enc, enc, f"depth-anything/Metric-Video-Depth-Anything-{size}",
            f"metric_video_depth_anything_{enc}.pth", METRIC_VIDEO, None, FORMAT_VDA, _V2_LICENCES[enc])
    return table


CHECKPOINTS: dict[str, CheckpointSpec] = _build_checkpoints()


def encoder_spec(encoder: str) -> EncoderSpec:
    """Look up an encoder by name, with an error listing the valid ones."""
    try:
        return ENCODERS[encoder]
    except KeyError:
        raise ValueError(f"unknown encoder {encoder!r}; expected one of {sorted(ENCODERS)}") from None
