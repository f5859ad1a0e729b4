"""DINOv2 ViT-14 encoder and DPT head: the building blocks every Depth Anything family shares."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from depth_anything_ros.models.variants import EncoderSpec

_LN_EPS = 1e-6
_POS_OFFSET = 0.1  # DINOv2 adds 0.1 to the target grid before computing the bicubic scale factor


class PatchEmbed(nn.Module):
    """Non-overlapping 14x14 patches -> tokens: (B, 3, H, W) -> (B, H/14 * W/14, D)."""

    def __init__(self, spec: EncoderSpec):
        super().__init__()
        self.proj = nn.Conv2d(3, spec.embed_dim, kernel_size=spec.patch_size, stride=spec.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, N, D), tokens in row-major patch order."""
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with one fused qkv projection."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, D) -> (B, N, D)."""
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, heads, N, D/heads)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    """Two-layer feed-forward network with exact (erf) GELU."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, D) -> (B, N, D)."""
        return self.fc2(F.gelu(self.fc1(x)))


class LayerScale(nn.Module):
    """Per-channel learned residual scale `gamma`."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, D) -> (B, N, D)."""
        return x * self.gamma


class Block(nn.Module):
    """Pre-norm transformer block: x + ls1(attn(norm1 x)), then x + ls2(mlp(norm2 x))."""

    def __init__(self, spec: EncoderSpec):
        super().__init__()
        self.norm1 = nn.LayerNorm(spec.embed_dim, eps=_LN_EPS)
        self.attn = Attention(spec.embed_dim, spec.num_heads)
        self.ls1 = LayerScale(spec.embed_dim)
        self.norm2 = nn.LayerNorm(spec.embed_dim, eps=_LN_EPS)
        self.mlp = Mlp(spec.embed_dim, spec.hidden_dim)
        self.ls2 = LayerScale(spec.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, D) -> (B, N, D)."""
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DinoV2(nn.Module):
    """DINOv2 ViT-14 backbone returning the normalised patch tokens of the chosen intermediate blocks."""

    def __init__(self, spec: EncoderSpec, mask_token: bool = True, norm_eps: float = _LN_EPS):
        """`mask_token` and the final LayerNorm's `norm_eps` differ between checkpoint families (V2: yes, 1e-6)."""
        super().__init__()
        self.spec = spec
        d = spec.embed_dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, spec.pretrain_grid ** 2 + 1, d))
        if mask_token:  # used only in DINOv2 pre-training; kept for the keys
            self.mask_token = nn.Parameter(torch.zeros(1, d))
        self.patch_embed = PatchEmbed(spec)
        self.blocks = nn.ModuleList(Block(spec) for _ in range(spec.depth))
        self.norm = nn.LayerNorm(d, eps=norm_eps)
        self._taps = frozenset(spec.intermediate_layers)

    def position_embedding(self, grid_h: int, grid_w: int, dtype: torch.dtype) -> torch.Tensor:
        """Position embedding for a grid_h x grid_w patch grid, (1, 1 + grid_h * grid_w, D).

        Bicubic resampling of the 37x37 table in float32 with scale factor (grid + 0.1) / 37 and no
        antialiasing, skipped only for the square 37x37 grid, as DINOv2 does.
        """
        n = self.spec.pretrain_grid
        if grid_h == grid_w == n:
            return self.pos_embed.to(dtype)
        pos = self.pos_embed.float()
        patch_pos = pos[:, 1:].reshape(1, n, n, -1).permute(0, 3, 1, 2)
        sqrt_n = math.sqrt(n * n)
        patch_pos = F.interpolate(
            patch_pos,
            scale_factor=((grid_h + _POS_OFFSET) / sqrt_n, (grid_w + _POS_OFFSET) / sqrt_n),
            mode="bicubic",
            antialias=False,
        )
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, -1)
        return torch.cat((pos[:, :1], patch_pos), dim=1).to(dtype)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) with H, W multiples of 14 -> four (B, H/14 * W/14, D) normalised patch-token maps."""
        grid_h, grid_w = x.shape[-2] // self.spec.patch_size, x.shape[-1] // self.spec.patch_size
        tokens = self.patch_embed(x)
        tokens = torch.cat((self.cls_token.expand(tokens.shape[0], -1, -1).to(tokens.dtype), tokens), dim=1)
        tokens = tokens + self.position_embedding(grid_h, grid_w, tokens.dtype)
        taps = []
        for i, block in enumerate(self.blocks):
            tokens = block(tokens)
            if i in self._taps:
                taps.append(self.norm(tokens)[:, 1:])
        return taps


class ResidualConvUnit(nn.Module):
    """Pre-activation residual unit: x + conv2(relu(conv1(relu(x))))."""

    def __init__(self, features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(features, features, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F, h, w) -> (B, F, h, w)."""
        return self.conv2(F.relu(self.conv1(F.relu(x)))) + x


class FusionBlock(nn.Module):
    """DPT feature fusion: add the refined skip feature, refine, upsample (align_corners=True), 1x1 conv."""

    def __init__(self, features: int, skip: bool = True):
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, kernel_size=1)
        if skip:  # the top block never gets a skip input; V2 checkpoints still hold its unit, DA3 ones do not
            self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None, size: tuple[int, int] | None) -> torch.Tensor:
        """(B, F, h, w) [+ skip (B, F, h, w)] -> (B, F, *size), or (B, F, 2h, 2w) when size is None."""
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        if size is None:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        else:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class DPTHead(nn.Module):
    """DPT decoder: four token maps -> (B, 1, 14*gh, 14*gw) activation before the metric/relative scaling."""

    def __init__(self, spec: EncoderSpec, top_skip_unit: bool = True):
        super().__init__()
        c = spec.out_channels
        f = spec.features
        self.projects = nn.ModuleList(nn.Conv2d(spec.embed_dim, ch, kernel_size=1) for ch in c)
        self.resize_layers = nn.ModuleList([
            nn.ConvTranspose2d(c[0], c[0], kernel_size=4, stride=4),
            nn.ConvTranspose2d(c[1], c[1], kernel_size=2, stride=2),
            nn.Identity(),
            nn.Conv2d(c[3], c[3], kernel_size=3, stride=2, padding=1),
        ])
        self.scratch = nn.Module()
        for i, ch in enumerate(c, start=1):
            setattr(self.scratch, f"layer{i}_rn", nn.Conv2d(ch, f, kernel_size=3, padding=1, bias=False))
        for i in range(1, 5):
            setattr(self.scratch, f"refinenet{i}", FusionBlock(f, skip=i < 4 or top_skip_unit))
        self.scratch.output_conv1 = nn.Conv2d(f, f // 2, kernel_size=3, padding=1)
        self.scratch.output_conv2 = nn.Sequential(
            nn.Conv2d(f // 2, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 1, kernel_size=1),
        )

    def neck(self, taps: list[torch.Tensor], grid_h: int, grid_w: int) -> torch.Tensor:
        """Four (B, gh*gw, D) maps -> (B, F/2, 14*gh, 14*gw) fused features that the output convolutions read."""
        s = self.scratch
        feats = []
        for i, tokens in enumerate(taps):
            x = tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[-1], grid_h, grid_w)
            feats.append(self.resize_layers[i](self.projects[i](x)))
        l1, l2, l3, l4 = s.layer1_rn(feats[0]), s.layer2_rn(feats[1]), s.layer3_rn(feats[2]), s.layer4_rn(feats[3])
        path = s.refinenet4(l4, None, l3.shape[2:])
        path = s.refinenet3(path, l3, l2.shape[2:])
        path = s.refinenet2(path, l2, l1.shape[2:])
        path = s.refinenet1(path, l1, None)
        out = s.output_conv1(path)
        return F.interpolate(out, size=(grid_h * 14, grid_w * 14), mode="bilinear", align_corners=True)

    def forward(self, taps: list[torch.Tensor], grid_h: int, grid_w: int) -> torch.Tensor:
        """Four (B, gh*gw, D) maps -> (B, 1, 14*gh, 14*gw) float32 pre-activation output."""
        conv_a, relu, conv_b = self.scratch.output_conv2
        out = relu(conv_a(self.neck(taps, grid_h, grid_w)))
        # the last 32 -> 1 projection runs in float32 so that fp16/bf16 models keep a fine depth resolution
        return F.conv2d(out.float(), conv_b.weight.float(), conv_b.bias.float())


