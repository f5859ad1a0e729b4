"""The training loop of `train`: steps with a progress line, validation, best/last checkpoints, Ctrl-C and resume.

The state between two steps is the whole run: weights, optimizer moments, the step count (which fixes the learning
rate), the epoch's frame order and position in it, and the random generator of crops and flips. Ctrl-C (SIGINT)
asks the loop to stop after the current step; it then saves that state to resume.pt, which `--resume` loads to
continue with the same step, rate and random stream. A second Ctrl-C stops at once.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from depth_anything_ros.bag.bagfile import BagError
from depth_anything_ros.bag.progress import Progress
from depth_anything_ros.train import outputs
from depth_anything_ros.train.config import TrainConfig
from depth_anything_ros.train.recipe import (
    flip_batch,
    learning_rate,
    make_optimizer,
    set_learning_rate,
    train_sample,
    train_step,
)
from depth_anything_ros.train.validation import evaluate_frames

TRAIN_EVAL_FRAMES = 32  # training-set figures before/after use at most this many training frames, evenly spaced


@dataclass
class Plan:
    """Step counts of a run over a split."""

    per_step: int  # frames per optimizer step (batch x accumulation)
    per_epoch: int  # optimizer steps per epoch (the last incomplete batch of an epoch is dropped, as train.py)
    total: int
    val_every: int


def plan(config: TrainConfig, train_frames: int) -> Plan:
    """Step counts; BagError when an epoch would not hold one step."""
    per_step = config.recipe.batch_size * config.grad_accum
    per_epoch = train_frames // per_step
    if per_epoch == 0:
        raise BagError(f"{train_frames} training frame(s) are fewer than one step needs (--batch-size "
                       f"{config.recipe.batch_size} x --grad-accum {config.grad_accum}); record more or use less")
    total = config.steps or config.recipe.epochs * per_epoch
    return Plan(per_step, per_epoch, total, config.val_every or per_epoch)


def resident_mb() -> float | None:
    """Resident memory of this process in MiB (Linux /proc), None where unknown; logged per step."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class StopRequest:
    """SIGINT handler while the loop runs: the first Ctrl-C asks for a stop after the step, the second interrupts."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, *_) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


@dataclass
class RunResult:
    """How a run ended."""

    step: int
    total: int
    interrupted: bool
    steps_per_s: float
    frames_per_s: float
    before: dict
    after: dict | None = None
    best: dict | None = None
    worst_val_frame: int | None = None  # index into the split's frames


class Trainer:
    """One run over a split, writing into `out`."""

    def __init__(self, config: TrainConfig, out: Path, estimator: object, split: object, autocast: torch.dtype | None,
                 progress: bool = True):
        self.config, self.out, self.estimator, self.split = config, out, estimator, split
        self.recipe = config.recipe
        self.max_depth = config.gt_max_depth or estimator.max_depth
        self.plan = plan(config, len(split.train))
        self.autocast, self.progress = autocast, progress
        self.device = estimator.device
        self.model = estimator.model.train().requires_grad_(True)
        self.optimizer = make_optimizer(self.model, self.recipe)
        self.scaler = torch.amp.GradScaler("cuda") if autocast == torch.float16 else None
        self.rng = np.random.default_rng(config.seed)
        self.step, self.epoch, self.position = 0, 0, 0
        self.order = self.rng.permutation(split.train)
        self.before: dict | None = None
        self.best: dict | None = None
        self.last_val: list | None = None

    # ------------------------------------------------------------------------------------------------- state
    def state(self) -> dict:
        """Resumable state: plain tensors, numbers and strings (loads with weights_only=True)."""
        return {"step": self.step, "epoch": self.epoch, "position": self.position,
                "order": torch.as_tensor(self.order, dtype=torch.int64), "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "rng": json.dumps(self.rng.bit_generator.state),
                "torch_rng": torch.get_rng_state(), "scaler": self.scaler.state_dict() if self.scaler else {},
                "before": json.dumps(self.before), "best": json.dumps(self.best)}

    def restore(self, state: dict) -> None:
        """Continue from a state() saved by an interrupted run."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = json.loads(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        if self.scaler is not None and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch, self.position = int(state["step"]), int(state["epoch"]), int(state["position"])
        self.order = state["order"].numpy()
        self.before, self.best = json.loads(state["before"]), json.loads(state["best"])
        outputs.read_lines(self.out / outputs.LOG, up_to_step=self.step)  # drop lines of steps not saved
        outputs.read_lines(self.out / outputs.VAL, up_to_step=self.step)

    # -------------------------------------------------------------------------------------------------- steps
    def _indices(self) -> list[int]:
        """Return the next batch of training frame indices (a new shuffled epoch when no full batch is left)."""
        size = self.recipe.batch_size
        if self.position + size > self.plan.per_epoch * self.plan.per_step:
            self.order = self.rng.permutation(self.split.train)
            self.position, self.epoch = 0, self.epoch + 1
        batch = self.order[self.position:self.position + size]
        self.position += size
        return [int(i) for i in batch]

    def _micro_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        samples = [train_sample(self.split.frames[i].rgb, self.split.frames[i].gt, self.recipe, self.max_depth,
                                self.rng) for i in self._indices()]
        image, depth, valid = (torch.stack(t) for t in zip(*samples, strict=True))
        image, depth, valid = flip_batch(image, depth, valid, self.rng, self.recipe.flip_p)
        return image.to(self.device), depth.to(self.device), valid.to(self.device)

    def validate(self, indices: list[int] | None = None) -> tuple[dict, list]:
        """Mean and per-frame metrics on the validation frames (or `indices`)."""
        return evaluate_frames(self.estimator, self.split.frames, self.split.val if indices is None else indices,
                               self.recipe.min_depth, self.max_depth, self.autocast)

    def train_subset(self) -> list[int]:
        """Training frames used for the training-set figures: at most TRAIN_EVAL_FRAMES, evenly spaced in time."""
        train = sorted(self.split.train, key=lambda i: self.split.frames[i].stamp)
        count = min(len(train), TRAIN_EVAL_FRAMES)
        return [train[round(k * (len(train) - 1) / max(count - 1, 1))] for k in range(count)]

    def _validation_point(self) -> None:
        metrics, per_frame = self.validate()
        self.last_val = per_frame
        outputs.append_line(self.out / outputs.VAL, {"step": self.step, "epoch": self.epoch, "metrics": metrics})
        if self.best is None or metrics["abs_rel"] < self.best["metrics"]["abs_rel"]:
            self.best = {"step": self.step, "metrics": metrics}
            self._save("best", metrics)

    def _save(self, name: str, metrics: dict | None) -> Path:
        from depth_anything_ros.models.checkpoint_io import is_synthetic

        return outputs.save_checkpoint(
            self.out, name, self.model, self.estimator.encoder, self.estimator.max_depth,
            base_checkpoint=self.config.checkpoint, synthetic=is_synthetic(self.estimator.checkpoint_path),
            step=self.step, total_steps=self.plan.total, validation=metrics)

    def run(self) -> RunResult:
        """Train until the total step count or Ctrl-C; returns how it ended."""
        if self.before is None:
            val, _ = self.validate()
            self.before = {"validation": val, "train": self.validate(self.train_subset())[0]}
            outputs.append_line(self.out / outputs.VAL, {"step": 0, "epoch": 0, "metrics": val})
        start_step, busy = self.step, 0.0
        with StopRequest() as stop, Progress(self.plan.total, "train", self.progress, unit="steps",
                                             done=self.step) as bar:
            while self.step < self.plan.total and not stop.requested:
                began = time.monotonic()
                lr = learning_rate(self.step, self.plan.total, self.recipe.lr, self.recipe.power)
                set_learning_rate(self.optimizer, lr, self.recipe.head_lr_factor)
                batches = [self._micro_batch() for _ in range(self.config.grad_accum)]
                loss = train_step(self.model, self.optimizer, batches, self.recipe, self.autocast, self.scaler)
                self.step += 1
                busy += time.monotonic() - began
                fps = (self.step - start_step) * self.plan.per_step / busy
                outputs.append_line(self.out / outputs.LOG, {
                    "step": self.step, "epoch": self.epoch, "loss": loss, "lr": lr,
                    "head_lr": lr * self.recipe.head_lr_factor, "frames_per_s": fps, "rss_mb": resident_mb()})
                bar.note = f"loss {loss:.4f}" if loss is not None else "loss - (no valid pixel)"
                bar.note += f", lr {lr:.2e}, {fps:.1f} frames/s"
                bar.update(1)
                if self.step % self.plan.val_every == 0 or self.step == self.plan.total:
                    self._validation_point()
        steps_per_s = (self.step - start_step) / busy if busy > 0 else math.nan
        result = RunResult(self.step, self.plan.total, self.step < self.plan.total, steps_per_s,
                           steps_per_s * self.plan.per_step, self.before, best=self.best)
        self._save("last", self.best["metrics"] if self.best and self.best["step"] == self.step else None)
        if result.interrupted:
            outputs.save_tensors(self.out / outputs.RESUME, self.state())
            return result
        print(f"train: scoring the fine-tuned model on {len(self.train_subset())} training frames"
              f"{'' if self.last_val is not None else f' and {len(self.split.val)} validation frames'}",
              file=sys.stderr, flush=True)
        result.after = {"validation": self.validate()[0] if self.last_val is None else
                        outputs.read_lines(self.out / outputs.VAL)[-1]["metrics"],
                        "train": self.validate(self.train_subset())[0]}
        scores = [(m["abs_rel"], i) for m, i in zip(self.last_val or [], self.split.val, strict=True) if m]
        result.worst_val_frame = max(scores)[1] if scores else None
        return result
