"""Collect what benchmarks/gpu_check.sh produced into results.json, targets.md and results.tar.gz.

Reads the work folder of gpu_check.sh (machine.json, steps.jsonl, tests_junit.xml, json/<step>.json, logs/) and
writes into --out: results.json (everything, benchmark payloads included), targets.md (the step table, the test
counts and the performance target table) and results.tar.gz (the single files, for a closer look).
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path


def table(rows: list[dict], columns: list[str], title: str) -> str:
    """Print rows as a Markdown table and return its text (no torch import, unlike _common.print_table)."""
    def cell(value: object) -> str:
        if value is None:
            return "-"
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    lines = [f"### {title}", "", "| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    return text


def evaluate_targets(runs: dict, device: str) -> list[dict]:
    """run_all.targets on these runs; an empty table with the reason when it cannot be imported (no torch)."""
    try:
        import run_all
    except Exception as exc:  # the summary must still be written
        return [{"target": "all", "status": "not evaluated", "note": f"run_all: {type(exc).__name__}: {exc}"}]
    return run_all.targets(runs, device)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_steps(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_junit(path: Path) -> dict | None:
    """Read the counts, failing tests and recorded properties (fp16/bf16 differences) of a pytest junit report."""
    if not path.exists():
        return None
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        return {"error": f"unreadable junit report: {exc}"}
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {key: sum(int(s.get(key, 0)) for s in suites) for key in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    failing, skipped, properties = [], [], {}
    for case in root.iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            failing.append(name)
        elif (skip := case.find("skipped")) is not None:
            skipped.append(f"{name}: {skip.get('message', '')}")
        for prop in case.iter("property"):
            properties[prop.get("name")] = float(prop.get("value")) if _is_number(prop.get("value")) else prop.get(
                "value")
    return {**counts, "failing": failing, "skipped_tests": skipped, "properties": properties}


def _is_number(text: str | None) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def four_stream_ratio(payload: dict | None) -> float:
    rows = [r for r in (payload or {}).get("results", []) if r.get("streams") == 4 and r.get("mode") == "batched"]
    return rows[0]["batched_over_sequential"] if rows else -1.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="work folder of gpu_check.sh")
    parser.add_argument("--out", type=Path, required=True, help="folder for results.json, targets.md, results.tar.gz")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=None, help="seconds the run took so far")
    parser.add_argument("--budget", type=float, default=None, help="the run's time budget in seconds")
    args = parser.parse_args(argv)

    steps = read_steps(args.work / "steps.jsonl")
    payloads = {p.stem: read_json(p) for p in sorted((args.work / "json").glob("*.json"))}
    tests = read_junit(args.work / "tests_junit.xml")
    status = {s["step"]: s["status"] for s in steps}

    def run(name: str) -> dict:
        payload = payloads.get(name)
        if payload is None:
            return {"status": status.get(name, "not run"), "error": status.get(name, "no JSON written")}
        return {"status": "ok", "json": payload}

    multi = max(("multi_camera", "multi_camera_compiled"), key=lambda n: four_stream_ratio(payloads.get(n)))
    runs = {"official_baseline": run("official_baseline"), "end_to_end": run("end_to_end"),
            "multi_camera": run(multi), "pipeline": run("pipeline")}
    targets = evaluate_targets(runs, args.device)
    for row in targets:
        if row["target"].startswith("4 batched") and multi in payloads:
            row["note"] = f"{multi} ({payloads[multi].get('dtype', '')})"

    results = {"generated_by": "benchmarks/gpu_check.sh", "device": args.device, "quick": args.quick,
               "seconds": args.seconds, "budget_s": args.budget, "machine": read_json(args.work / "machine.json"),
               "steps": steps, "tests": tests, "targets": targets, "benchmarks": payloads}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    machine = results["machine"] or {}
    gpu = (machine.get("gpu") or {}).get("name") or "no GPU"
    quick = ", --quick: not meaningful" if args.quick else ""
    lines = [f"# gpu_check ({args.device}{quick})", "",
             f"{gpu}; torch {machine.get('torch')} (CUDA {machine.get('torch_cuda')}, cuDNN {machine.get('cudnn')}); "
             f"Python {str(machine.get('python', '')).split()[0]}; {args.seconds:.0f} s of a {args.budget:.0f} s budget"
             if args.seconds is not None and args.budget is not None else gpu, ""]
    print()
    lines.append(table(steps, ["step", "status", "seconds", "limit_s"], title="steps"))
    if tests is not None and "tests" in tests:
        failing = f"; failing: {', '.join(tests['failing'])}" if tests["failing"] else ""
        text = (f"tests: {tests['passed']} passed, {tests['failures']} failed, {tests['errors']} errors, "
                f"{tests['skipped']} skipped{failing}")
        print(text + "\n")
        lines += [text, ""]
        if tests["properties"]:
            lines.append(table([{"property": k, "value": v} for k, v in tests["properties"].items()],
                                            ["property", "value"], title="recorded differences (test_gpu.py)"))
    lines.append(table(targets, ["target", "goal", "measured", "status", "note"],
                                    title="performance targets"))
    (args.out / "targets.md").write_text("\n".join(lines))

    with tarfile.open(args.out / "results.tar.gz", "w:gz") as tar:
        for name in ("machine.json", "steps.jsonl", "tests_junit.xml", "nvidia-smi-q.txt", "json", "logs"):
            if (args.work / name).exists():
                tar.add(args.work / name, arcname=f"gpu_check/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
