"""Smoke test of the benchmark scripts: each runs its tiny --quick configuration and writes valid JSON (no timing)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = REPO_ROOT / "benchmarks"
OFFICIAL_GIT = Path(os.environ.get("DEPTH_ANYTHING_OFFICIAL_GIT", "/work/.mirror/DepthAnything+Depth-Anything-V2/repo"))


def run_script(name: str, json_path: Path, *extra: str, env: dict | None = None, timeout: float = 600) -> dict:
    cmd = [sys.executable, str(BENCHMARKS / name), "--quick", "--device", "cpu", "--json", str(json_path), *extra]
    result = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout,
                            env=env if env is not None else {**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stdout}\n{result.stderr}"
    payload = json.loads(json_path.read_text())
    assert payload["benchmark"] == name.removesuffix(".py")
    assert payload["machine"]["torch"] and payload["machine"]["cpu"]
    assert payload["results"], "no result rows"
    assert "|" in result.stdout, "no table printed"
    return payload


@pytest.fixture(scope="module")
def official_dir(tmp_path_factory) -> Path:
    """Official Depth-Anything-V2 metric_depth code extracted from a local git copy (skip when there is none)."""
    if not (OFFICIAL_GIT / "HEAD").exists() and not (OFFICIAL_GIT / ".git").exists():
        pytest.skip(f"no official Depth-Anything-V2 git copy at {OFFICIAL_GIT} (set DEPTH_ANYTHING_OFFICIAL_GIT)")
    out = tmp_path_factory.mktemp("official")
    archive = subprocess.run(["git", "-C", str(OFFICIAL_GIT), "archive", "HEAD", "metric_depth/depth_anything_v2"],
                             capture_output=True, check=True).stdout  # whole-tree archives fail on absent assets
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


@pytest.mark.parametrize("name", ["model_only.py", "pipeline.py", "multi_camera.py", "large_frame_memory.py",
                                  "scale_modes.py", "da3_vs_v2.py", "nav_outputs.py", "train_steps.py",
                                  "train_scale.py", "serve.py", "dataset_eval.py", "temporal.py",
                                  "onnx_numerics.py", "cpu_backends.py", "node_frame_overhead.py"])
def test_quick_run_writes_json(name, tmp_path):
    payload = run_script(name, tmp_path / "out.json")
    for row in payload["results"]:
        assert all(value is None or value == value for value in row.values() if isinstance(value, float)), row


def test_official_baseline_quick(official_dir, tmp_path):
    payload = run_script("official_baseline.py", tmp_path / "out.json", "--official", str(official_dir))
    pipelines = {row["pipeline"] for row in payload["results"]}
    assert {"official fp32", "ours fp32"} <= pipelines
    ours = next(row for row in payload["results"] if row["pipeline"] == "ours fp32")
    assert ours["max_abs_diff_m"] is not None and ours["speedup_vs_official"] > 0


@pytest.mark.ros
def test_end_to_end_quick(ros_env, tmp_path):
    payload = run_script("end_to_end.py", tmp_path / "out.json", env=ros_env)
    modes = {row["mode"] for row in payload["results"]}
    assert modes == {"fixed", "saturate", "max"}
    assert all(row["depth_received"] > 0 for row in payload["results"]), payload["results"]


def test_run_all_quick(official_dir, ros_env, tmp_path):
    out = tmp_path / "results"
    cmd = [sys.executable, str(BENCHMARKS / "run_all.py"), "--quick", "--device", "cpu", "--out", str(out),
           "--official", str(official_dir), "--skip", "end_to_end,cpu_pipeline_overhead,bag_process_fps"]
    result = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, env=ros_env)
    assert result.returncode == 0, result.stdout + result.stderr
    written = sorted(p.name for p in out.glob("*.json"))
    assert {"model_only.json", "pipeline.json", "multi_camera.json", "official_baseline.json"} <= set(written)
    for path in out.glob("*.json"):
        json.loads(path.read_text())


def test_gpu_check_dry_run(tmp_path):
    """benchmarks/gpu_check.sh --device cpu --quick on a few steps: the files that come back from the GPU machine."""
    import importlib.util
    import tarfile

    out = tmp_path / "out"
    steps = ["model_only_eager", "multi_camera"]
    cmd = ["bash", str(BENCHMARKS / "gpu_check.sh"), "--device", "cpu", "--quick", "--encoders", "vits",
           "--python", sys.executable, "--out", str(out)]
    if (OFFICIAL_GIT / "HEAD").exists() or (OFFICIAL_GIT / ".git").exists():
        steps.append("official_baseline")  # extracted into the script's work folder, not the repository
    result = subprocess.run([*cmd, "--only", ",".join(steps)], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=400, env={**os.environ, "DEPTH_ANYTHING_OFFICIAL_GIT": str(OFFICIAL_GIT)})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["gpu_check.log", "results.json", "results.tar.gz", "targets.md"]
    results = json.loads((out / "results.json").read_text())
    status = {step["step"]: step["status"] for step in results["steps"]}
    ros = all(importlib.util.find_spec(name) for name in ("rclpy", "rosbags"))
    assert status.pop("setup") == "ok" or not ros, status
    assert status == {name: "ok" for name in ["info", *steps]}, status
    assert results["machine"]["torch"] and results["device"] == "cpu" and results["quick"]
    rows = results["benchmarks"]["model_only_eager"]["results"]
    assert {(row["precision"], row["batch"]) for row in rows} == {("fp32", 1), ("fp32", 4), ("bf16", 1), ("bf16", 4)}
    assert {row["target"] for row in results["targets"]} >= {"4 batched / 4 sequential streams"}
    assert "| step | status |" in (out / "targets.md").read_text()
    with tarfile.open(out / "results.tar.gz") as tar:
        names = set(tar.getnames())
    assert {f"gpu_check/json/{name}.json" for name in steps} | {"gpu_check/steps.jsonl"} <= names


def test_train_steps_quick_compares_autocast_with_float32(tmp_path):
    rows = run_script("train_steps.py", tmp_path / "out.json")["results"]
    assert [row["precision"] for row in rows] == ["fp32", "bf16"]
    assert all(len(row["losses"]) >= 2 and all(loss > 0 for loss in row["losses"]) for row in rows), rows
    assert "max_loss_diff_vs_fp32" not in rows[0] and rows[1]["max_loss_diff_vs_fp32"] >= 0
    assert rows[0]["peak_memory_mb"] > 0


def test_gpu_check_second_plan_dry_run(tmp_path):
    """benchmarks/gpu_check.sh --plan 2: DA3 and fine-tuning steps, as the GPU machine would run them."""
    out = tmp_path / "out"
    steps = ["da3_eager", "train_steps"]
    cmd = ["bash", str(BENCHMARKS / "gpu_check.sh"), "--plan", "2", "--device", "cpu", "--quick", "--encoders",
           "vits", "--python", sys.executable, "--out", str(out), "--only", ",".join(steps)]
    result = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    status = {step["step"]: step["status"] for step in results["steps"]}
    status.pop("setup")
    assert status == {name: "ok" for name in ["info", *steps]}, status
    precisions = {row["precision"] for row in results["benchmarks"]["train_steps"]["results"]}
    assert precisions == {"fp32", "bf16"}
    models = {row["model"] for row in results["benchmarks"]["da3_eager"]["results"]}
    assert models == {"v2-vitl", "da3metric-large"}
