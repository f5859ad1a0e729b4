"""The official metric_depth fine-tuning recipe (Depth-Anything-V2 `metric_depth/train.py`), in torch only.

SiLog loss, AdamW with the encoder (parameters named `pretrained.*`) at the base rate and everything else at ten
times it, polynomial decay updated after each step as train.py does it, and the training sample: official
lower-bound resize (cubic image, nearest ground truth), a random square crop of the input size, and a random
horizontal flip of the whole batch.
"""

from __future__ import annotations

import contextlib

import cv2
import numpy as np
import torch

from depth_anything_ros.frame.metrics import valid_mask
from depth_anything_ros.models.image import network_input_size
from depth_anything_ros.models.v2.preprocess import network_input
from depth_anything_ros.train.config import Recipe
from depth_anything_ros.train.distributed import Ranks

ENCODER_PREFIX = "pretrained"  # official train.py: names containing it get the base rate


def silog_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, lambd: float = 0.5) -> torch.Tensor:
    """Scale-invariant log loss over mask: pred, target (B,H,W) metres, mask (B,H,W) bool -> scalar."""
    mask = mask.detach()
    diff = torch.log(target[mask]) - torch.log(pred[mask])
    return torch.sqrt(diff.pow(2).mean() - lambd * diff.mean().pow(2))


def parameter_groups(model: torch.nn.Module, lr: float, head_lr_factor: float) -> list[dict]:
    """Return [encoder group at lr, every other parameter at lr x head_lr_factor], in named_parameters order."""
    named = list(model.named_parameters())
    return [{"params": [p for n, p in named if ENCODER_PREFIX in n], "lr": lr},
            {"params": [p for n, p in named if ENCODER_PREFIX not in n], "lr": lr * head_lr_factor}]


def make_optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.AdamW:
    """AdamW over parameter_groups with the recipe's betas and weight decay."""
    return torch.optim.AdamW(parameter_groups(model, recipe.lr, recipe.head_lr_factor), lr=recipe.lr,
                             betas=recipe.betas, weight_decay=recipe.weight_decay)


def learning_rate(step: int, total_steps: int, lr: float, power: float = 0.9) -> float:
    """Return the encoder rate that optimizer step `step` (0-based) runs with.

    train.py sets lr x (1 - i / total) ** power after step i, so step 0 runs with the base rate from the
    optimizer's construction and step k >= 1 with the rate computed after step k - 1.
    """
    return lr * (1.0 - max(step - 1, 0) / total_steps) ** power


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float, head_lr_factor: float) -> None:
    """Set group 0 (encoder) to lr and group 1 (the rest) to lr x head_lr_factor."""
    optimizer.param_groups[0]["lr"] = lr
    optimizer.param_groups[1]["lr"] = lr * head_lr_factor


def train_sample(rgb: np.ndarray, gt: np.ndarray, recipe: Recipe, max_depth: float,
                 rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image (3,S,S) normalised, depth (S,S) metres, valid (S,S) bool) from rgb (H,W,3) uint8 and gt (h,w).

    The image goes to the official lower-bound network size (short side input_size, multiples of 14) with the
    inference cubic resize, the ground truth (the image's size or a uniform resize of it) to the same size with
    nearest neighbours, then one random S x S crop, S = input_size, is taken from both.
    """
    size = recipe.input_size
    h, w = network_input_size(rgb.shape[0], rgb.shape[1], size)
    image = network_input(torch.from_numpy(rgb)[None], "rgb8", (h, w))[0]
    depth = cv2.resize(gt, (w, h), interpolation=cv2.INTER_NEAREST)
    top = int(rng.integers(0, h - size + 1))
    left = int(rng.integers(0, w - size + 1))
    depth = depth[top:top + size, left:left + size]
    valid = valid_mask(depth, recipe.min_depth, max_depth)
    depth = np.where(valid, depth, 0.0).astype(np.float32)
    return (image[:, top:top + size, left:left + size].contiguous(), torch.from_numpy(depth),
            torch.from_numpy(valid))


def flip_batch(image: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor,
               rng: np.random.Generator, p: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mirror the whole batch left-right with probability p (one draw per batch, as train.py)."""
    if rng.random() < p:
        return image.flip(-1), depth.flip(-1), valid.flip(-1)
    return image, depth, valid


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               micro_batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], recipe: Recipe,
               autocast: torch.dtype | None = None, scaler: torch.amp.GradScaler | None = None,
               ranks: Ranks | None = None) -> float | None:
    """One optimizer step over gradient-accumulated micro-batches of (image (B,3,S,S), depth (B,S,S), valid (B,S,S)).

    Each micro-batch's SiLog loss is divided by their number before backward (train.py: one micro-batch).
    A micro-batch without a valid pixel adds nothing (the official loss would be NaN). Returns the summed loss,
    None when no micro-batch had a valid pixel (then no step is taken). `autocast` runs the forward pass in that
    dtype (CUDA bf16/fp16); `scaler` scales an fp16 loss. With `ranks` of several processes, `model` is their
    DistributedDataParallel wrapper: gradients are averaged over the processes at the last micro-batch (so N
    processes with A micro-batches each equal one process with N x A), and the returned loss is their mean.
    """
    ranks = ranks or Ranks()
    optimizer.zero_grad(set_to_none=True)
    total, used = 0.0, 0
    for index, (image, depth, valid) in enumerate(micro_batches):
        has_valid = bool(valid.any())
        if not has_valid and not ranks.distributed:
            continue
        last = index == len(micro_batches) - 1
        with contextlib.nullcontext() if last else ranks.no_sync(model):
            with torch.autocast(image.device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
                pred = model(image)
            # every process runs the same backward passes, so the averaging lines up; an empty one adds zero
            loss = (silog_loss(pred.float(), depth, valid, recipe.silog_lambda) if has_valid
                    else pred.float().sum() * 0.0) / len(micro_batches)
            (scaler.scale(loss) if scaler is not None else loss).backward()
        if has_valid:
            total += float(loss.detach())
            used += 1
    total, used = ranks.sum(total, used)
    if not used:
        return None
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return total / ranks.world
