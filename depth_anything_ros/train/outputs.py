"""The run folder of `train`: what it holds, atomic writes, checkpoints with metadata, the resumable state.

DIR/run.json (the options, written first), log.jsonl (one line per step), val.jsonl (one line per validation),
best.pth/best.json and last.pth/last.json (official state_dict + checkpoint_meta), resume.pt (optimizer, step,
random state), report/ (PNG plots) and metrics.json, written last: a folder without metrics.json is unfinished.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from depth_anything_ros.bag.bagfile import BagError
from depth_anything_ros.models.checkpoint_meta import write_meta

RUN = "run.json"
LOG = "log.jsonl"
VAL = "val.jsonl"
RESUME = "resume.pt"
METRICS = "metrics.json"
REPORT = "report"


def check_new_run_dir(out: Path) -> None:
    """Refuse an --out folder that exists and is not empty (it holds another run, or something else)."""
    if out.exists() and not out.is_dir():
        raise BagError(f"--out {out} is a file; give a new folder")
    if out.is_dir() and any(out.iterdir()):
        what = "a finished run" if (out / METRICS).exists() else "another run" if (out / RUN).exists() else "files"
        raise BagError(f"--out {out} holds {what}; choose a new folder (or continue an unfinished run with "
                       f"--resume {out})")


def check_resume_dir(out: Path) -> dict:
    """Return the recorded options of an unfinished run to resume; BagError when DIR is no run or a finished one."""
    if not (out / RUN).is_file():
        raise BagError(f"--resume {out}: no {RUN} there; it is not a train output folder")
    if (out / METRICS).exists():
        raise BagError(f"--resume {out}: the run is finished ({METRICS} exists); start a new one with --out")
    try:
        return json.loads((out / RUN).read_text())
    except ValueError as exc:
        raise BagError(f"--resume {out}: {RUN} is damaged ({exc})") from None


def write_json(path: Path, content: dict) -> None:
    """Write JSON through a temporary file and a rename, so a reader never sees half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(content, indent=2) + "\n")
    os.replace(tmp, path)


def save_tensors(path: Path, content: dict, unique: str = "") -> None:
    """torch.save through a temporary file and a rename (`unique`: the temporary name of one of several writers)."""
    tmp = path.with_name(f".{path.name}{unique}.tmp")
    torch.save(content, tmp)
    os.replace(tmp, path)


def save_checkpoint(out: Path, name: str, model: torch.nn.Module, encoder: str, max_depth: float,
                    **meta) -> Path:
    """Write NAME.pth (plain official state_dict, float32 on the CPU) and its NAME.json metadata."""
    path = out / f"{name}.pth"
    save_tensors(path, {k: v.detach().float().cpu().clone() for k, v in model.state_dict().items()})
    write_meta(path, encoder, max_depth, **meta)
    return path


def append_line(path: Path, content: dict) -> None:
    """Append one JSON line."""
    with path.open("a") as stream:
        stream.write(json.dumps(content) + "\n")


def read_lines(path: Path, up_to_step: int | None = None) -> list[dict]:
    """JSON lines of a log; with `up_to_step`, rewrite the file without lines of later steps (an unsaved tail)."""
    if not path.is_file():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if up_to_step is not None:
        lines = [line for line in lines if line["step"] <= up_to_step]
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(json.dumps(line) + "\n" for line in lines))
        os.replace(tmp, path)
    return lines


def load_resume(out: Path) -> dict | None:
    """Return the resumable state of DIR (plain tensors, numbers, strings), or None before the first save."""
    path = out / RESUME
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged file fails in any way the unpickler allows
        raise BagError(f"--resume: cannot read {path} ({type(exc).__name__}); the run cannot be resumed") from None
