"""Video Depth Anything (metric): DINOv2 encoder + DPT head with temporal attention, official state_dict keys.

Four temporal modules sit in the DPT head (after the reassembled third and fourth token maps, after the top two
fusion blocks). Each is GroupNorm -> linear -> one transformer block of two temporal self-attentions (sinusoidal
position table over up to 32 frames) and a GEGLU feed-forward -> linear, added to its input. Attention runs along
the frame axis at every feature-map position. For streaming, every attention also returns its normalised input
(the hidden state later frames attend to) and can take the hidden states of past frames as extra keys and values.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from depth_anything_ros.models.blocks import DinoV2, DPTHead
from depth_anything_ros.models.variants import encoder_spec

MAX_FRAMES = 32  # the position table's length: frames one forward pass (with cached ones) may span
HEADS = 8
GROUPS = 32
STATES_PER_MODULE = 2  # attentions per temporal module, each with its own hidden state
TEMPORAL_MODULES = 4
HiddenStates = list[torch.Tensor]  # TEMPORAL_MODULES * STATES_PER_MODULE tensors (B * h * w, T, C), module order


class PositionTable(nn.Module):
    """The sinusoidal table `pe` (1, MAX_FRAMES, C): sin on even channels, cos on odd ones (stored in checkpoints)."""

    def __init__(self, channels: int):
        super().__init__()
        position = torch.arange(MAX_FRAMES, dtype=torch.float32)[:, None]
        rate = torch.exp(torch.arange(0, channels, 2, dtype=torch.float32) * (-math.log(10000.0) / channels))
        table = torch.zeros(1, MAX_FRAMES, channels)
        table[0, :, 0::2] = torch.sin(position * rate)
        table[0, :, 1::2] = torch.cos(position * rate)
        self.register_buffer("pe", table)


class TemporalAttention(nn.Module):
    """Multi-head self-attention over frames; queries from the new frames, keys/values also from cached ones."""

    def __init__(self, channels: int):
        super().__init__()
        self.heads = HEADS
        self.to_q = nn.Linear(channels, channels, bias=False)
        self.to_k = nn.Linear(channels, channels, bias=False)
        self.to_v = nn.Linear(channels, channels, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels)])
        self.pos_encoder = PositionTable(channels)

    def forward(self, x: torch.Tensor, past: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Map x (N, T, C) normalised tokens, past (N, P, C) or None -> (N, T, C) update and x (the state)."""
        seq = x if past is None else torch.cat([past, x], dim=1)
        if seq.shape[1] > MAX_FRAMES:
            raise ValueError(f"temporal attention spans at most {MAX_FRAMES} frames, got {seq.shape[1]}")
        seq = seq + self.pos_encoder.pe[:, :seq.shape[1]].to(seq.dtype)
        n, t, c = x.shape

        def split(v: torch.Tensor) -> torch.Tensor:
            return v.reshape(n, v.shape[1], self.heads, c // self.heads).transpose(1, 2)

        q = split(self.to_q(seq[:, seq.shape[1] - t:]))
        out = F.scaled_dot_product_attention(q, split(self.to_k(seq)), split(self.to_v(seq)))
        return self.to_out[0](out.transpose(1, 2).reshape(n, t, c)), x


class GEGLU(nn.Module):
    """Linear to twice the width, then value x gelu(gate)."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., dim_in) -> (..., dim_out)."""
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU to 4x the width, then a linear back (keys net.0 and net.2; net.1 was a dropout)."""

    def __init__(self, dim: int):
        super().__init__()
        self.net = nn.ModuleDict({"0": GEGLU(dim, 4 * dim), "2": nn.Linear(4 * dim, dim)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., dim) -> (..., dim)."""
        return self.net["2"](self.net["0"](x))


class TemporalBlock(nn.Module):
    """Two pre-norm temporal attentions with residuals, then a pre-norm GEGLU feed-forward with residual."""

    def __init__(self, channels: int):
        super().__init__()
        self.attention_blocks = nn.ModuleList(TemporalAttention(channels) for _ in range(STATES_PER_MODULE))
        self.norms = nn.ModuleList(nn.LayerNorm(channels) for _ in range(STATES_PER_MODULE))
        self.ff = FeedForward(channels)
        self.ff_norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor, past: HiddenStates | None) -> tuple[torch.Tensor, HiddenStates]:
        """Map x (N, T, C) along frames -> (N, T, C) and the STATES_PER_MODULE hidden states (N, T, C)."""
        states = []
        for i, (attention, norm) in enumerate(zip(self.attention_blocks, self.norms, strict=True)):
            update, state = attention(norm(x), None if past is None else past[i])
            x = x + update
            states.append(state)
        return x + self.ff(self.ff_norm(x)), states


class TemporalTransformer(nn.Module):
    """GroupNorm -> proj_in -> TemporalBlock along frames -> proj_out, added to the input feature map."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.GroupNorm(GROUPS, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, channels)
        self.transformer_blocks = nn.ModuleList([TemporalBlock(channels)])
        self.proj_out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, frames: int, past: HiddenStates | None) -> tuple[torch.Tensor, HiddenStates]:
        """Map x (B * T, C, h, w), frames = T -> (B * T, C, h, w) and the hidden states (B * h * w, T, C)."""
        bt, c, h, w = x.shape
        tokens = self.proj_in(self.norm(x).permute(0, 2, 3, 1).reshape(bt, h * w, c))
        along_time = tokens.reshape(bt // frames, frames, h * w, c).transpose(1, 2).reshape(-1, frames, c)
        along_time, states = self.transformer_blocks[0](along_time, past)
        tokens = along_time.reshape(bt // frames, h * w, frames, c).transpose(1, 2).reshape(bt, h * w, c)
        return self.proj_out(tokens).reshape(bt, h, w, c).permute(0, 3, 1, 2) + x, states


class TemporalModule(nn.Module):
    """Holder of one TemporalTransformer (the official key level `motion_modules.i.temporal_transformer`)."""

    def __init__(self, channels: int):
        super().__init__()
        self.temporal_transformer = TemporalTransformer(channels)

    def forward(self, x: torch.Tensor, frames: int, past: HiddenStates | None) -> tuple[torch.Tensor, HiddenStates]:
        """(B * T, C, h, w) -> (B * T, C, h, w) and the hidden states."""
        return self.temporal_transformer(x, frames, past)


class TemporalDPTHead(DPTHead):
    """DPT head with temporal modules on layer 3, layer 4 and after the top two fusion blocks."""

    def __init__(self, encoder: str):
        spec = encoder_spec(encoder)
        super().__init__(spec)
        c, f = spec.out_channels, spec.features
        self.motion_modules = nn.ModuleList(TemporalModule(ch) for ch in (c[2], c[3], f, f))

    def forward(self, taps: list[torch.Tensor], grid_h: int, grid_w: int, frames: int,
                past: HiddenStates | None = None) -> tuple[torch.Tensor, HiddenStates]:
        """Four (B * T, gh * gw, D) maps -> (B * T, 1, 14gh, 14gw) float32 pre-activation and the hidden states."""
        s, mm = self.scratch, self.motion_modules
        k = STATES_PER_MODULE

        def slot(i: int) -> HiddenStates | None:
            return None if past is None else past[i * k:(i + 1) * k]

        feats = []
        for i, tokens in enumerate(taps):
            x = tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[-1], grid_h, grid_w)
            feats.append(self.resize_layers[i](self.projects[i](x)))
        feats[2], h0 = mm[0](feats[2], frames, slot(0))
        feats[3], h1 = mm[1](feats[3], frames, slot(1))
        l1, l2, l3, l4 = s.layer1_rn(feats[0]), s.layer2_rn(feats[1]), s.layer3_rn(feats[2]), s.layer4_rn(feats[3])
        path, h2 = mm[2](s.refinenet4(l4, None, l3.shape[2:]), frames, slot(2))
        path, h3 = mm[3](s.refinenet3(path, l3, l2.shape[2:]), frames, slot(3))
        path = s.refinenet1(s.refinenet2(path, l2, l1.shape[2:]), l1, None)
        out = F.interpolate(s.output_conv1(path), size=(grid_h * 14, grid_w * 14), mode="bilinear",
                            align_corners=True)
        conv_a, relu, conv_b = s.output_conv2
        out = relu(conv_a(out))
        return F.conv2d(out.float(), conv_b.weight.float(), conv_b.bias.float()), h0 + h1 + h2 + h3


class VideoDepthAnything(nn.Module):
    """Video Depth Anything: normalised frames (B, T, 3, H, W), H and W multiples of 14 -> metres (B, T, H, W).

    The output is relu(head), metric depth for the metric checkpoints. `past` holds the hidden states of earlier
    frames (each (B * h * w, P, C)) that the new frames attend to; the returned states are those of the new frames.
    """

    def __init__(self, encoder: str = "vits"):
        super().__init__()
        self.spec = encoder_spec(encoder)
        self.encoder = encoder
        self.pretrained = DinoV2(self.spec)
        self.head = TemporalDPTHead(encoder)

    def forward(self, x: torch.Tensor, past: HiddenStates | None = None) -> tuple[torch.Tensor, HiddenStates]:
        """(B, T, 3, H, W) in the model dtype -> (B, T, H, W) float32 metres and the new frames' hidden states."""
        b, t, _, h, w = x.shape
        grid_h, grid_w = h // self.spec.patch_size, w // self.spec.patch_size
        out, states = self.head(self.pretrained(x.flatten(0, 1)), grid_h, grid_w, t, past)
        return F.relu(out).reshape(b, t, grid_h * 14, grid_w * 14), states
