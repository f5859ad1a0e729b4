"""`bag process` of several bags at once: one worker process per device, each with its own model, a bag at a time.

Each bag goes through `process_bag` exactly as in a run of one bag, so a bag's output does not depend on which
worker or device made it (byte-identical messages to a sequential run on the same kind of device). Workers are
spawned (CUDA needs it), take the next bag from a shared queue, and report a summary or the error of each bag.
"""

from __future__ import annotations

import argparse
import multiprocessing
import queue
import sys
from dataclasses import dataclass
from pathlib import Path

from depth_anything_ros.bag.bagfile import BagError


@dataclass
class BagOutcome:
    """What became of one input bag: its summary text, or the one-line error that stopped it."""

    input: Path
    output: Path
    device: str
    summary: str = ""
    error: str = ""
    interrupted: bool = False


def _worker(index: int, device: str, args: argparse.Namespace, opts: object, jobs: object, results: object) -> None:
    """Load the model on `device`, then process bags from `jobs` until it is empty, one outcome each."""
    from depth_anything_ros.bag.process import process_bag
    from depth_anything_ros.cli_options import make_estimator
    from depth_anything_ros.models.checkpoint_io import CheckpointError

    try:
        estimator = make_estimator(argparse.Namespace(**{**vars(args), "device": device}),
                                   announce_synthetic=index == 0,
                                   allow_relative=opts.frame.scale.mode == "reference")
    except (BagError, CheckpointError, ValueError, OSError) as exc:
        results.put(("failed", device, f"worker on {device}: {exc}"))
        return
    while True:
        try:
            src, dst = jobs.get_nowait()
        except queue.Empty:
            break
        outcome = BagOutcome(src, dst, device)
        try:
            summary = process_bag(src, dst, estimator, opts)
            outcome.summary, outcome.interrupted = summary.text(), summary.interrupted
        except (BagError, ValueError, OSError) as exc:
            outcome.error = str(exc)
        except KeyboardInterrupt:
            outcome.error, outcome.interrupted = "interrupted before the bag was opened", True
        results.put(("bag", device, outcome))
        if outcome.interrupted:  # Ctrl-C reached every worker: no new bag
            break
    results.put(("done", device, None))


def process_bags(jobs: list[tuple[Path, Path]], devices: list[str], args: argparse.Namespace,
                 opts: object) -> list[BagOutcome]:
    """Process (input, output) bag pairs on one worker per device; outcomes in input order."""
    context = multiprocessing.get_context("spawn")
    job_queue, results = context.Queue(), context.Queue()
    for job in jobs:
        job_queue.put(job)
    workers = [context.Process(target=_worker, args=(i, device, args, opts, job_queue, results), daemon=True)
               for i, device in enumerate(devices)]
    for worker in workers:
        worker.start()
    outcomes, running, failures, interrupted = {}, len(workers), [], False
    try:
        while running:
            try:
                kind, device, value = results.get()
            except KeyboardInterrupt:  # the workers got it too: each ends its bag validly and stops
                if interrupted:
                    raise
                interrupted = True
                print("bag process: interrupted; the workers finish their current bags (Ctrl-C again to abort)",
                      file=sys.stderr)
                continue
            if kind == "bag":
                outcomes[value.input] = value
                print(f"bag process: {value.input} on {device}: "
                      f"{'error: ' + value.error if value.error else 'done'}", file=sys.stderr)
            elif kind == "failed":
                failures.append(value)
                running -= 1
            else:
                running -= 1
    finally:
        for worker in workers:
            worker.join()
    if failures and len(failures) == len(workers):
        raise BagError("; ".join(failures))
    for message in failures:
        print(f"bag process: {message}; the other workers took its bags", file=sys.stderr)
    return [outcomes.get(src) or BagOutcome(src, dst, "", error="not processed: every worker stopped")
            for src, dst in jobs]
