"""Data-parallel training over processes (torchrun, accelerate launch): the process group, shards and reductions.

Launchers set WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; one process without them is a world of
one and needs no process group. Backend: NCCL on CUDA, gloo on the CPU. A collective that fails (another process
died, the network broke) or does not finish within the timeout becomes CollectiveError naming the collective.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from depth_anything_ros.bag.bagfile import BagError

DEFAULT_TIMEOUT_S = 300.0


class CollectiveError(BagError):
    """A collective operation across the training processes failed or timed out."""


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


@dataclass(frozen=True)
class Ranks:
    """This process's place in the training world; a world of one runs without a process group."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: str = "cpu"  # where the collectives' tensors live (cuda:N with NCCL)

    @property
    def main(self) -> bool:
        """Return True for the process that writes the run folder and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Return True when several processes train together."""
        return self.world > 1

    def model_device(self, device: str) -> str:
        """Device of this process's model: `--device` as given, with cuda/auto pinned to cuda:LOCAL_RANK."""
        if self.distributed and (device in ("cuda", "auto") and torch.cuda.is_available()):
            return f"cuda:{self.local_rank}"
        return device

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """DistributedDataParallel around the model when distributed (gradients averaged at each step), else it."""
        if not self.distributed:
            return model
        device = next(model.parameters()).device
        ids = [device.index] if device.type == "cuda" else None
        # the official network holds tensors its depth path never uses (DINOv2's mask_token): DDP must not wait for them
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)

    def no_sync(self, model: torch.nn.Module) -> contextlib.AbstractContextManager:
        """Context in which backward accumulates without averaging (every micro-batch but the last)."""
        return model.no_sync() if self.distributed else contextlib.nullcontext()

    def failure(self, what: str, exc: BaseException) -> CollectiveError:
        """Return the error of a failed exchange: which process, what it was doing, why."""
        return CollectiveError(f"rank {self.rank} of {self.world}: {what} across the training processes failed "
                               f"({_first_line(exc)}); another process stopped, or they are not in one run")

    def _run(self, what: str, collective):
        try:
            return collective()
        except (RuntimeError, ValueError) as exc:  # gloo/NCCL errors and timeouts are RuntimeErrors
            raise self.failure(what, exc) from None

    def sum(self, *values: float) -> list[float]:
        """Sum each value over the processes (float64)."""
        if not self.distributed:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        self._run("summing the step's loss", lambda: dist.all_reduce(tensor))
        return tensor.tolist()

    def any(self, flag: bool, what: str = "agreeing to stop") -> bool:
        """Return True on every process when any process passes True."""
        if not self.distributed:
            return flag
        tensor = torch.tensor([int(flag)], device=self.device)
        self._run(what, lambda: dist.all_reduce(tensor, op=dist.ReduceOp.MAX))
        return bool(tensor.item())

    def gather(self, value: object, what: str) -> list:
        """Every process's `value`, in rank order, on every process."""
        if not self.distributed:
            return [value]
        values = [None] * self.world
        self._run(what, lambda: dist.all_gather_object(values, value))
        return values

    def shard(self, items: list) -> list:
        """Return this process's share of items: every world-th one, starting at the rank."""
        return items[self.rank::self.world]

    def unshard(self, shards: list[list]) -> list:
        """Inverse of shard over the gathered shards of every rank: the items in their original order."""
        total = sum(len(s) for s in shards)
        return [shards[i % self.world][i // self.world] for i in range(total)]

    def close(self) -> None:
        """Leave the process group."""
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def join(device: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> Ranks:
    """Join the launcher's process group (WORLD_SIZE > 1), or return a world of one; BagError naming what failed."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise BagError(f"the launcher's WORLD_SIZE/RANK/LOCAL_RANK are not integers ({exc})") from None
    if world <= 1:
        return Ranks()
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
    try:
        if cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(seconds=timeout_s),
                                rank=rank, world_size=world)
    except (RuntimeError, ValueError) as exc:
        raise BagError(f"rank {rank} of {world}: cannot join the training processes at {where} within "
                       f"{timeout_s:g} s (--dist-timeout): {_first_line(exc)}") from None
    return Ranks(rank, world, local_rank, f"cuda:{local_rank}" if cuda else "cpu")
