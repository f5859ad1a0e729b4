"""Data-parallel `train` on this CPU (gloo): torchrun with 2 processes against 1 process accumulating 2, and faults.

The equality run uses the real launcher (`python -m torch.distributed.run`); the fault cases start the processes
themselves with the environment a launcher sets (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), which is
the init path torchrun and accelerate use, so that each process's own output can be read.
"""

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from depth_anything_ros.bag.sample import SampleConfig, write_sample_bag
from depth_anything_ros.cli import main
from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint

GT = "/camera/depth_gt_mm"
SMALL = ["--model-max-depth", "20", "--input-size", "28", "--device", "cpu", "--no-progress"]
CLI = [sys.executable, "-m", "depth_anything_ros.cli"]
# Measured on this machine: the largest weight difference was 3.2e-6 after 10 steps (DDP sums the two gradients in
# another order than one process accumulating them); 1e-5 after 3 steps leaves room for other CPUs.
WEIGHT_TOLERANCE = 1e-5
# the README's data-parallel line, run here with the synthetic checkpoint, small sizes and 3 steps
README_TORCHRUN = ("torchrun --standalone --nproc_per_node=2 --no-python depth-anything-ros train output/sample_bag "
                   "--gt-topic /camera/depth_gt_mm --checkpoint hypersim-vits --out output/runs/two --steps 30")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """(sample bag of 12 frames: 10 train and 2 validate, synthetic vits checkpoint)."""
    root = tmp_path_factory.mktemp("ddp")
    bag = root / "sample_bag"
    write_sample_bag(bag, SampleConfig(width=160, height=120, frames=12))
    return bag, write_synthetic_checkpoint(root / "synthetic_vits.safetensors", "vits")


def train_args(inputs, out: Path, *extra: str) -> list[str]:
    bag, checkpoint = inputs
    return ["train", str(bag), "--gt-topic", GT, "--checkpoint", str(checkpoint), "--out", str(out), *SMALL, *extra]


def start_ranks(argvs: list[list[str]], world: int, port: int) -> list[subprocess.Popen]:
    """Start one process per argv with the environment a launcher gives rank i of `world`."""
    procs = []
    for rank, argv in enumerate(argvs):
        env = {**os.environ, "WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        procs.append(subprocess.Popen([*CLI, *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    return procs


def finish(procs: list[subprocess.Popen], timeout: float = 300) -> list[tuple[int, str]]:
    """(exit status, stderr) of each process once it ended."""
    errors = [p.communicate(timeout=timeout)[1] for p in procs]
    return [(p.returncode, err) for p, err in zip(procs, errors, strict=True)]


def assert_one_line_error(code: int, stderr: str, expected: str) -> None:
    assert code == 2, stderr
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("depth-anything-ros: error:")]
    assert len(errors) == 1 and expected in errors[0], stderr


@pytest.fixture(scope="module")
def runs(inputs, tmp_path_factory):
    """(one process, --grad-accum 2 run folder; torchrun 2 processes run folder, launcher output)."""
    root = tmp_path_factory.mktemp("runs")
    single, double = root / "single", root / "double"
    assert main(train_args(inputs, single, "--batch-size", "1", "--grad-accum", "2", "--steps", "3",
                           "--val-every", "3")) == 0
    argv = shlex.split(README_TORCHRUN)
    assert argv[:5] == ["torchrun", "--standalone", "--nproc_per_node=2", "--no-python", "depth-anything-ros"]
    bag, checkpoint = inputs
    argv[0], argv[4] = str(Path(sys.executable).with_name("torchrun")), str(Path(sys.executable).with_name(argv[4]))
    for flag, value in (("--checkpoint", checkpoint), ("--out", double), ("--steps", 3)):
        argv[argv.index(flag) + 1] = str(value)
    argv[argv.index("output/sample_bag")] = str(bag)
    launched = subprocess.run([*argv, *SMALL, "--batch-size", "1", "--val-every", "3"], capture_output=True,
                              text=True, timeout=600)
    assert launched.returncode == 0, launched.stdout[-3000:] + launched.stderr[-3000:]
    return single, double, launched


def test_readme_torchrun_line_is_the_one_run_here():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert README_TORCHRUN in readme.splitlines()


def test_two_processes_equal_one_process_accumulating_two(runs):
    single, double, _ = runs
    one = torch.load(single / "last.pth", weights_only=True)
    two = torch.load(double / "last.pth", weights_only=True)
    assert one.keys() == two.keys()
    worst = max(float((one[k] - two[k]).abs().max()) for k in one)
    assert worst <= WEIGHT_TOLERANCE, f"largest weight difference {worst:.3g}"
    losses = [[line["loss"] for line in map(json.loads, (run / "log.jsonl").read_text().splitlines())]
              for run in (single, double)]
    assert len(losses[0]) == 3 and losses[0] == pytest.approx(losses[1], rel=1e-5, abs=1e-7)


def test_two_processes_write_one_run_folder(runs):
    single, double, launched = runs
    assert sorted(p.name for p in double.iterdir()) == sorted(p.name for p in single.iterdir())
    assert not list(double.glob(".*.tmp"))
    assert len((double / "log.jsonl").read_text().splitlines()) == 3  # one line per step, not one per process
    metrics = json.loads((double / "metrics.json").read_text())
    assert metrics["steps"] == 3 and metrics["frames"]["train"] == 10
    assert launched.stdout.count("train: finished 3 steps") == 1  # the summary once, from the main process
    first = json.loads((single / "metrics.json").read_text())["after"]["validation"]["abs_rel"]
    assert metrics["after"]["validation"]["abs_rel"] == pytest.approx(first, rel=1e-4)


def test_more_processes_than_one_step_holds(inputs, tmp_path):
    port = free_port()
    procs = start_ranks([train_args(inputs, tmp_path / "run", "--batch-size", "8", "--steps", "2")] * 2, 2, port)
    for code, stderr in finish(procs):
        assert_one_line_error(code, stderr, "10 training frame(s) are fewer than one step needs (--batch-size 8 x "
                                            "--grad-accum 1 x 2 processes)")
    assert not (tmp_path / "run").exists()


def test_different_run_folders_on_the_processes(inputs, runs, tmp_path):
    single, _, _ = runs
    folders = [tmp_path / "a", tmp_path / "b"]
    for folder in folders:  # two unfinished runs with the same options
        folder.mkdir()
        shutil.copy(single / "run.json", folder / "run.json")
    procs = start_ranks([["train", "--resume", str(f), "--no-progress"] for f in folders], 2, free_port())
    for code, stderr in finish(procs):
        assert_one_line_error(code, stderr, "the 2 processes were given different folders")
    for folder in folders:
        assert sorted(p.name for p in folder.iterdir()) == ["run.json"]


def test_missing_process_is_a_timeout_with_a_message(inputs, tmp_path):
    started = time.monotonic()
    (proc,) = start_ranks([train_args(inputs, tmp_path / "run", "--dist-timeout", "5")], 2, free_port())
    ((code, stderr),) = finish([proc], timeout=120)
    assert_one_line_error(code, stderr, "rank 0 of 2: cannot join the training processes at 127.0.0.1:")
    assert "within 5 s (--dist-timeout)" in stderr
    assert time.monotonic() - started < 100
    assert not (tmp_path / "run").exists()


def test_killing_one_process_leaves_a_resumable_state(inputs, tmp_path):
    out = tmp_path / "run"
    procs = start_ranks([train_args(inputs, out, "--batch-size", "1", "--steps", "60", "--val-every", "1000",
                                    "--dist-timeout", "60")] * 2, 2, free_port())
    log = out / "log.jsonl"
    deadline = time.monotonic() + 300
    while not (log.exists() and len(log.read_text().splitlines()) >= 2):
        assert time.monotonic() < deadline and procs[0].poll() is None, procs[0].communicate()[1]
        time.sleep(0.2)
    procs[1].send_signal(signal.SIGKILL)
    (code, stderr), (killed, _) = finish(procs, timeout=200)
    assert killed == -signal.SIGKILL
    assert_one_line_error(code, stderr, "rank 0 of 2: ")
    assert "across the training processes failed" in stderr and f"--resume {out}" in stderr
    state = torch.load(out / "resume.pt", weights_only=True)
    assert state["step"] >= 2 and state["world"] == 2
    assert not list(out.glob(".*.tmp"))
    # one process finishes the run the two started (documented: not bit-identical to a run of two)
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0
    assert json.loads((out / "metrics.json").read_text())["steps"] == 60
    assert len((out / "log.jsonl").read_text().splitlines()) == 60
