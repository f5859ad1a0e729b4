"""The training loop of `train`: steps with a progress line, validation, best/last checkpoints, Ctrl-C and resume.

The state between two steps is the whole run: weights, optimizer moments, the step count (which fixes the learning
rate) and the position in the epoch. The frame order of an epoch is drawn from (seed, epoch) and the crops and flips
of micro-batch m of a step from (seed, step, m), so the run does not depend on how many processes share it: N
processes (train/distributed.py) each take their own micro-batches of every step, and together they run the steps
of one process that accumulates N times as many. Ctrl-C (SIGINT) or SIGTERM on any process asks every process to
stop after the current step; the state then goes to resume.pt, which `--resume` loads to continue with the same
step and rate. A second Ctrl-C stops at once. A process that loses the others (one died) saves the state of the
last finished step before it exits.
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
from depth_anything_ros.frame.metrics import mean_metrics
from depth_anything_ros.train import outputs
from depth_anything_ros.train.config import TrainConfig
from depth_anything_ros.train.distributed import CollectiveError, Ranks
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


def plan(config: TrainConfig, train_frames: int, processes: int = 1) -> Plan:
    """Step counts of `processes` processes together; BagError when an epoch would not hold one step."""
    per_step = config.recipe.batch_size * config.grad_accum * processes
    per_epoch = train_frames // per_step
    if per_epoch == 0:
        many = f" x {processes} processes" if processes > 1 else ""
        raise BagError(f"{train_frames} training frame(s) are fewer than one step needs (--batch-size "
                       f"{config.recipe.batch_size} x --grad-accum {config.grad_accum}{many}); record more or use "
                       "less")
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
    """SIGINT/SIGTERM handler while the loop runs: the first asks for a stop after the step, a second interrupts."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def _handle(self, *_) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


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
                 progress: bool = True, ranks: Ranks | None = None):
        self.config, self.out, self.estimator, self.split = config, out, estimator, split
        self.ranks = ranks or Ranks()
        self.recipe = config.recipe
        self.max_depth = config.gt_max_depth or estimator.max_depth
        self.plan = plan(config, len(split.train), self.ranks.world)
        self.autocast, self.progress = autocast, progress and self.ranks.main
        self.device = estimator.device
        self.model = estimator.model.train().requires_grad_(True)
        self.net = self.ranks.wrap(self.model)  # what the steps run: the model, or its DDP wrapper
        self.optimizer = make_optimizer(self.model, self.recipe)
        self.scaler = torch.amp.GradScaler("cuda") if autocast == torch.float16 else None
        self.step, self.epoch, self.position = 0, 0, 0  # position: frames of the epoch's order used (all processes)
        self.order = self._epoch_order(0)
        self.before: dict | None = None
        self.best: dict | None = None
        self.last_val: list | None = None

    # ------------------------------------------------------------------------------------------------- state
    def state(self) -> dict:
        """Resumable state: plain tensors, numbers and strings (loads with weights_only=True)."""
        return {"step": self.step, "epoch": self.epoch, "position": self.position,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "world": self.ranks.world,
                "torch_rng": torch.get_rng_state(), "scaler": self.scaler.state_dict() if self.scaler else {},
                "before": json.dumps(self.before), "best": json.dumps(self.best)}

    def restore(self, state: dict) -> None:
        """Continue from a state() saved by an interrupted run."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        if self.scaler is not None and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch, self.position = int(state["step"]), int(state["epoch"]), int(state["position"])
        self.order = self._epoch_order(self.epoch)
        self.before, self.best = json.loads(state["before"]), json.loads(state["best"])
        if self.ranks.main:
            outputs.read_lines(self.out / outputs.LOG, up_to_step=self.step)  # drop lines of steps not saved
            outputs.read_lines(self.out / outputs.VAL, up_to_step=self.step)

    # -------------------------------------------------------------------------------------------------- steps
    def _epoch_order(self, epoch: int) -> np.ndarray:
        """Training frame indices of an epoch in their shuffled order, drawn from (seed, epoch)."""
        return np.random.default_rng([self.config.seed, epoch]).permutation(self.split.train)

    def _micro_batches(self) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Return this process's micro-batches of the next step."""
        size, accum = self.recipe.batch_size, self.config.grad_accum
        batches = []
        for m in range(self.ranks.rank * accum, (self.ranks.rank + 1) * accum):  # m: the step's micro-batch
            rng = np.random.default_rng([self.config.seed, self.step, m])
            start = self.position + m * size
            samples = [train_sample(self.split.frames[int(i)].rgb, self.split.frames[int(i)].gt, self.recipe,
                                    self.max_depth, rng) for i in self.order[start:start + size]]
            image, depth, valid = (torch.stack(t) for t in zip(*samples, strict=True))
            image, depth, valid = flip_batch(image, depth, valid, rng, self.recipe.flip_p)
            batches.append((image.to(self.device), depth.to(self.device), valid.to(self.device)))
        return batches

    def validate(self, indices: list[int] | None = None) -> tuple[dict, list]:
        """Mean and per-frame metrics on the validation frames (or `indices`), each process scoring its share."""
        indices = self.split.val if indices is None else indices
        _, mine = evaluate_frames(self.estimator, self.split.frames, self.ranks.shard(indices), self.recipe.min_depth,
                                  self.max_depth, self.autocast)
        per_frame = self.ranks.unshard(self.ranks.gather(mine, "gathering the validation metrics"))
        return mean_metrics([m for m in per_frame if m is not None]), per_frame

    def train_subset(self) -> list[int]:
        """Training frames used for the training-set figures: at most TRAIN_EVAL_FRAMES, evenly spaced in time."""
        train = sorted(self.split.train, key=lambda i: self.split.frames[i].stamp)
        count = min(len(train), TRAIN_EVAL_FRAMES)
        return [train[round(k * (len(train) - 1) / max(count - 1, 1))] for k in range(count)]

    def _validation_point(self) -> None:
        metrics, per_frame = self.validate()
        self.last_val = per_frame
        if self.ranks.main:
            outputs.append_line(self.out / outputs.VAL, {"step": self.step, "epoch": self.epoch, "metrics": metrics})
        if self.best is None or metrics["abs_rel"] < self.best["metrics"]["abs_rel"]:
            self.best = {"step": self.step, "metrics": metrics}
            self._save("best", metrics)

    def _save(self, name: str, metrics: dict | None) -> None:
        """Write checkpoint NAME (the main process only)."""
        from depth_anything_ros.models.checkpoint_io import is_synthetic

        if not self.ranks.main:
            return
        outputs.save_checkpoint(
            self.out, name, self.model, self.estimator.encoder, self.estimator.max_depth,
            base_checkpoint=self.config.checkpoint, synthetic=is_synthetic(self.estimator.checkpoint_path),
            step=self.step, total_steps=self.plan.total, validation=metrics)

    def _step(self) -> tuple[float | None, float]:
        """Run one optimizer step; return its loss (mean over the processes) and learning rate."""
        if self.position + self.plan.per_step > self.plan.per_epoch * self.plan.per_step:  # no full step left
            self.epoch += 1
            self.position, self.order = 0, self._epoch_order(self.epoch)
        lr = learning_rate(self.step, self.plan.total, self.recipe.lr, self.recipe.power)
        set_learning_rate(self.optimizer, lr, self.recipe.head_lr_factor)
        try:
            loss = train_step(self.net, self.optimizer, self._micro_batches(), self.recipe, self.autocast,
                              self.scaler, self.ranks)
        except RuntimeError as exc:
            if not self.ranks.distributed:
                raise
            raise self.ranks.failure("averaging the gradients", exc) from None
        self.step, self.position = self.step + 1, self.position + self.plan.per_step
        return loss, lr

    def run(self) -> RunResult:
        """Train until the total step count or Ctrl-C; returns how it ended."""
        if self.before is None:
            val, _ = self.validate()
            self.before = {"validation": val, "train": self.validate(self.train_subset())[0]}
            if self.ranks.main:
                outputs.append_line(self.out / outputs.VAL, {"step": 0, "epoch": 0, "metrics": val})
        start_step, busy = self.step, 0.0
        with StopRequest() as stop, Progress(self.plan.total, "train", self.progress, unit="steps",
                                             done=self.step) as bar:
            try:
                while self.step < self.plan.total and not self.ranks.any(stop.requested):
                    began = time.monotonic()
                    loss, lr = self._step()
                    busy += time.monotonic() - began
                    fps = (self.step - start_step) * self.plan.per_step / busy
                    bar.note = f"loss {loss:.4f}" if loss is not None else "loss - (no valid pixel)"
                    bar.note += f", lr {lr:.2e}, {fps:.1f} frames/s"
                    bar.update(1)
                    if self.ranks.main:
                        outputs.append_line(self.out / outputs.LOG, {
                            "step": self.step, "epoch": self.epoch, "loss": loss, "lr": lr,
                            "head_lr": lr * self.recipe.head_lr_factor, "frames_per_s": fps,
                            "rss_mb": resident_mb()})
                    if self.step % self.plan.val_every == 0 or self.step == self.plan.total:
                        self._validation_point()
            except CollectiveError as exc:  # the others are gone: keep the last finished step resumable
                outputs.save_tensors(self.out / outputs.RESUME, self.state(), unique=f"rank{self.ranks.rank}")
                raise CollectiveError(f"{exc}; saved step {self.step} to {self.out / outputs.RESUME}: continue "
                                      f"with: depth-anything-ros train --resume {self.out}") from None
        steps_per_s = (self.step - start_step) / busy if busy > 0 else math.nan
        result = RunResult(self.step, self.plan.total, self.step < self.plan.total, steps_per_s,
                           steps_per_s * self.plan.per_step, self.before, best=self.best)
        self._save("last", self.best["metrics"] if self.best and self.best["step"] == self.step else None)
        if result.interrupted:
            if self.ranks.main:
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
