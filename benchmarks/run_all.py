"""Run every benchmark (one process each), then check the performance targets from their JSON in one summary.

Writes <out>/<benchmark>.json, <out>/summary.json and <out>/targets.md. The official baseline needs the
official Depth-Anything-V2 code (--official DIR, or --official-git GITDIR to extract its metric_depth/ there).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import _common as common

BENCHMARKS = ["model_only", "official_baseline", "pipeline", "multi_camera", "end_to_end",
              "cpu_pipeline_overhead", "node_frame_overhead", "bag_process_fps", "large_frame_memory", "scale_modes",
              "nav_outputs"]
HERE = Path(__file__).resolve().parent


def extract_official(git_dir: Path, dest: Path) -> None:
    """Extract metric_depth/depth_anything_v2/ of the official repository at `git_dir` (clone or git dir) to `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(git_dir), "archive", "HEAD", "metric_depth/depth_anything_v2"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)


def run_benchmark(name: str, args, extra: list[str]) -> dict:
    """Run one benchmark script; return {'status', 'seconds', 'json'?, 'error'?}."""
    out = args.out / f"{name}.json"
    cmd = [sys.executable, str(HERE / f"{name}.py"), "--device", args.device, "--json", str(out), *extra]
    if args.quick:
        cmd.append("--quick")
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    print(f"$ {' '.join(cmd)}", flush=True)
    start = time.monotonic()
    result = subprocess.run(cmd, cwd=common.REPO_ROOT)
    record = {"command": cmd, "seconds": round(time.monotonic() - start, 1)}
    if result.returncode != 0 or not out.exists():
        return {**record, "status": "failed", "error": f"exit status {result.returncode}"}
    return {**record, "status": "ok", "json": json.loads(out.read_text())}


def _rows(runs: dict, name: str) -> list[dict]:
    run = runs.get(name, {})
    return run["json"]["results"] if run.get("status") == "ok" else []


def _target(name: str, goal: str, value: float | None, threshold: float, higher: bool, note: str = "") -> dict:
    if value is None:
        return {"target": name, "goal": goal, "measured": None, "status": "not measured", "note": note}
    met = value >= threshold if higher else value <= threshold
    return {"target": name, "goal": goal, "measured": value, "status": "met" if met else "not met", "note": note}


def targets(runs: dict, device: str) -> list[dict]:
    """Evaluate the performance targets from this run's results (ratios from one run on one machine)."""
    out = []
    official = _rows(runs, "official_baseline")
    baseline = runs.get("official_baseline", {})
    for encoder, goal in (("vits", 5.0), ("vitl", 3.0)):
        rows = [r for r in official if r["encoder"] == encoder and r["pipeline"].endswith("model-only")]
        best = max(rows, key=lambda r: r["speedup_vs_official"], default=None)
        if best:
            note = f"{best['pipeline']} at {best['resolution']}"
        elif baseline.get("status") != "ok":
            note = f"official_baseline {baseline.get('status', 'not run')}: {baseline.get('error', 'see its log')}"
        else:
            note = f"{encoder} not in this run (official_baseline --encoders)"
        out.append(_target(f"model-only vs official ({encoder})", f">= {goal}x",
                           best and best["speedup_vs_official"], goal, True, note))
    e2e = {r["mode"]: r for r in _rows(runs, "end_to_end")}
    busy = max((e2e[m] for m in ("saturate", "max") if m in e2e), default={},
               key=lambda r: r.get("throughput_over_model_only") or 0.0)
    out.append(_target("end-to-end throughput / model-only", ">= 0.85", busy.get("throughput_over_model_only"),
                       0.85, True, f"best of the saturate/max phases ({busy.get('mode', '-')}); node depth rate x "
                       "cameras / model forward frames/s"))
    out.append(_target("end-to-end p50 latency / model-only latency", "<= 1.5",
                       e2e.get("fixed", {}).get("p50_latency_over_model_only"), 1.5, False,
                       "fixed publish rate; receive time - image stamp vs model forward p50"))
    multi = [r for r in _rows(runs, "multi_camera") if r["streams"] == 4 and r["mode"] == "batched"]
    out.append(_target("4 batched / 4 sequential streams", ">= 1.5",
                       multi[0]["batched_over_sequential"] if multi else None, 1.5, True))
    if device == "cpu":
        frame = runs.get("node_frame_overhead", {})
        out.append(_target("CPU: everything except the model, 640x480", "<= 3 ms",
                           frame["json"]["non_model_p50_ms"] if frame.get("status") == "ok" else None, 3.0, False,
                           "the node's default outputs: pipeline run minus the model, plus the sensor_msgs (p50)"))
        nav = runs.get("nav_outputs", {})
        out.append(_target("CPU: navigation outputs of the Nav2 example, 640x480", "<= 3 ms",
                           nav["json"]["navigation_setup_p50_ms"] if nav.get("status") == "ok" else None, 3.0, False,
                           "edge filter + confidence gate, scan, 5 cm voxels of the stride 2 cloud (p50 sum)"))
        ours = [r for r in official if r["encoder"] == "vits" and r["pipeline"] == "ours fp32"]
        out.append(_target("CPU: our estimate vs official infer_image (vits)", ">= 1.0",
                           ours[0]["speedup_vs_official"] if ours else None, 1.0, True,
                           "numpy BGR in, numpy depth out, both fp32"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (cuda when present, else cpu), cpu or cuda")
    parser.add_argument("--quick", action="store_true", help="smoke configuration of every benchmark")
    parser.add_argument("--out", type=Path, default=common.REPO_ROOT / "build" / "bench",
                        help="folder for the JSON results")
    parser.add_argument("--official", type=Path, default=Path("/tmp/official"),
                        help="extracted official Depth-Anything-V2 repository (holding metric_depth/)")
    parser.add_argument("--official-git", type=Path, default=None,
                        help="official repository git dir to extract metric_depth/ from into --official")
    parser.add_argument("--skip", type=common.csv_list, default=[], help=f"benchmarks to skip: {BENCHMARKS}")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads in every benchmark")
    parser.add_argument("--encoders", default=None, help="encoders of model_only and official_baseline")
    args = parser.parse_args(argv)
    args.device = common.resolve_device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.official_git is not None and not (args.official / "metric_depth").is_dir():
        extract_official(args.official_git, args.official)
    runs: dict[str, dict] = {}
    for name in BENCHMARKS:
        if name in args.skip:
            runs[name] = {"status": "skipped"}
            continue
        extra = ["--encoders", args.encoders] if args.encoders and name in ("model_only", "official_baseline") else []
        if name == "official_baseline":
            if not (args.official / "metric_depth" / "depth_anything_v2" / "dpt.py").is_file():
                print(f"official_baseline skipped: no official code in {args.official} (see --official-git)")
                reason = f"no official code in {args.official} (extract it there, or pass --official-git)"
                runs[name] = {"status": "skipped", "error": reason}
                continue
            extra += ["--official", str(args.official)]
        runs[name] = run_benchmark(name, args, extra)
    rows = targets(runs, args.device)
    quick = ", --quick: not meaningful" if args.quick else ""
    text = common.print_table(rows, ["target", "goal", "measured", "status", "note"],
                              title=f"performance targets ({args.device}{quick})")
    (args.out / "targets.md").write_text(text)
    summary = {"machine": common.machine_info(), "device": args.device, "quick": args.quick, "targets": rows,
               "runs": {name: {k: v for k, v in run.items() if k != "json"} for name, run in runs.items()}}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    failed = [name for name, run in runs.items() if run["status"] == "failed"]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
