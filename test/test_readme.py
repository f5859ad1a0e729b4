"""The README is a path a newcomer follows: its commands run in order, in one scratch folder; its facts hold.

The walk runs every command of the README's bash blocks in the order written, each in bash in a scratch folder
that holds nothing but a link to this virtualenv (the `.venv` that `make setup` made), offline. Commands that
run a model get the demo's synthetic weights, a small input size and few frames appended (the last flag wins):
the real weights need the network and full sizes need minutes. A README command that the walk does not run must be
in RUN_ELSEWHERE with the test that runs it, so a new command cannot go untested.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from depth_anything_ros.cli import build_parser
from depth_anything_ros.models.variants import CHECKPOINTS

REPO_ROOT = Path(__file__).resolve().parent.parent
README = (REPO_ROOT / "README.md").read_text()
DOCS = sorted((REPO_ROOT / "docs").glob("*.md"))
PROG = "depth-anything-ros"


def bash_commands(text: str) -> list[str]:
    """Command lines of the ```bash blocks of text, continuation lines joined, comments and blank lines dropped."""
    lines = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line:
                lines.append(line)
    return lines


COMMANDS = bash_commands(README)
SYNTHETIC = "demo_output/synthetic_vits.safetensors"
MODEL = ["--checkpoint", SYNTHETIC, "--model-max-depth", "20", "--device", "cpu"]
SMALL_BAG = ["--frames", "12", "--width", "64", "--height", "48"]
# what the walk appends, by subcommand: synthetic weights, small sizes
OVERRIDES = {
    "demo": [*SMALL_BAG, "--input-size", "70", "--device", "cpu"],
    "estimate": [*MODEL, "--input-size", "70"],
    "bag sample": SMALL_BAG,
    "bag process": [*MODEL, "--input-size", "70"],
    "bag evaluate": [],
    "evaluate": [],  # not walked: test_dataset_evaluate.py::test_readme_evaluate_line_runs
    "train": [*MODEL, "--input-size", "28", "--steps", "3"],
    "--help": [],
    "serve": [],  # not walked: test_readme_serve_examples_run
}
# the Makefile's demo recipe after `setup` (test_quick_start_is_what_the_makefile_and_ci_run checks it)
MAKE_DEMO = f".venv/bin/{PROG} demo"
RUN_ELSEWHERE = {  # README command -> what runs it instead of the walk
    "make test": "CI: .ci/run ends with it (test_quick_start_is_what_the_makefile_and_ci_run)",
    "hf download depth-anything/Depth-Anything-V2-Metric-Hypersim-Small depth_anything_v2_metric_hypersim_vits.pth":
        "needs the network; test_download_command_is_the_one_errors_print",
    "cd ~/ros2_ws/src": "test_packaging.py::test_readme_workspace_commands_run_as_written",
    "git clone <this repository> depth_anything_ros":
        "test_packaging.py::test_readme_workspace_commands_run_as_written",
    "cd ~/ros2_ws": "test_packaging.py::test_readme_workspace_commands_run_as_written",
    "rosdep install --from-paths src -y --ignore-src": "needs root and a ROS install: not run by any test",
    "pip install safetensors": "in requirements-common.txt, installed by make setup",
    "colcon build --packages-select depth_anything_ros":
        "test_packaging.py::test_readme_workspace_commands_run_as_written",
    "source install/setup.bash": "test_packaging.py::test_readme_workspace_commands_run_as_written",
    "ros2 run depth_anything_ros depth_anything_node --ros-args -r image:=/camera/image_raw -r "
    "camera_info:=/camera/camera_info": "test_node_graph.py: the node's entry point, remapped image and camera_info",
    "ros2 launch depth_anything_ros depth_anything.launch.py camera:=camera image:=image_raw model:=hypersim-vits "
    "rviz:=true": "test_launch_files.py::test_the_command_launch_runs_starts_the_node",
    # a server runs until stopped: test_readme_serve_examples_run starts it and runs the examples against it
    "depth-anything-ros serve --checkpoint hypersim-vits": "test_readme_serve_examples_run",
    "curl -fsS -F image=@frame.png http://127.0.0.1:7860/v1/depth -o frame_depth.tiff":
        "test_readme_serve_examples_run",
    'curl -fsS -F image=@frame.png "http://127.0.0.1:7860/v1/depth?format=json&fov=70"':
        "test_readme_serve_examples_run",
    "curl -fsS http://127.0.0.1:7860/v1/health": "test_readme_serve_examples_run",
    "depth-anything-ros evaluate data/nyudepthv2 --split test --checkpoint hypersim-vits --out output/nyu_eval":
        "test_dataset_evaluate.py::test_readme_evaluate_line_runs (needs a dataset: it writes one in NYU's layout)",
    "torchrun --standalone --nproc_per_node=2 --no-python depth-anything-ros train output/sample_bag --gt-topic "
    "/camera/depth_gt_mm --checkpoint hypersim-vits --out output/runs/two --steps 30":
        "test_train_distributed.py::test_two_processes_equal_one_process_accumulating_two (README_TORCHRUN)",
}


def subcommand(argv: list[str]) -> str:
    """Return the OVERRIDES key of a depth-anything-ros command line."""
    return " ".join(argv[1:3]) if argv[1] == "bag" else argv[1]


def walked(command: str) -> bool:
    """Whether the walk runs a README command."""
    return command in ("make demo", "source .venv/bin/activate") or (command.startswith(f"{PROG} ")
                                                                       and command not in RUN_ELSEWHERE)


def test_every_readme_command_is_walked_or_run_elsewhere():
    assert [c for c in COMMANDS if not walked(c) and c not in RUN_ELSEWHERE] == []
    assert [c for c in RUN_ELSEWHERE if c not in COMMANDS] == []  # nothing stale
    assert all(subcommand(shlex.split(c)) in OVERRIDES for c in COMMANDS if c.startswith(f"{PROG} "))


def test_quick_start_is_what_the_makefile_and_ci_run():
    assert COMMANDS[:2] == ["make demo", "make test"]
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(rf"^demo: setup\n\t\$\(VENV\)/bin/{PROG} demo$", makefile, flags=re.MULTILINE)
    assert re.search(r"^test: setup\n", makefile, flags=re.MULTILINE)
    assert re.search(r"^VENV := \.venv$", makefile, flags=re.MULTILINE)
    assert (REPO_ROOT / ".ci" / "run").read_text().strip().endswith("\nmake test")


def test_the_cli_is_used_only_after_the_readme_says_how_to_reach_it():
    """`make demo` leaves the tool in .venv/bin, not on PATH: the README activates .venv before the first use."""
    first_use = next(i for i, c in enumerate(COMMANDS) if c.startswith(f"{PROG} "))
    assert "source .venv/bin/activate" in COMMANDS[:first_use]
    assert ".venv/bin/depth-anything-ros" in README


def test_readme_walk(tmp_path):
    """Every command, in order, in bash, in one scratch folder; the outputs land where the README says."""
    venv = Path(sys.prefix)
    if not (venv / "bin" / "activate").is_file() or not (venv / "bin" / PROG).is_file():
        pytest.fail(f"run the tests with the virtualenv's python (make test): no {venv}/bin/activate or {PROG}")
    (tmp_path / ".venv").symlink_to(venv)
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / ".hf"), PATH="/usr/bin:/bin")
    prelude = []
    for command in COMMANDS:
        if not walked(command):
            continue
        if command == "make demo":
            command = MAKE_DEMO
        argv = shlex.split(command)
        extra = OVERRIDES[subcommand(argv)] if argv[0] != "source" else []
        if "--checkpoint" not in command and argv[1] == "estimate":  # as written first: offline, one line, exit 2
            run = subprocess.run(["bash", "-c", "; ".join([*prelude, command])], cwd=tmp_path, env=env,
                                 capture_output=True, text=True, timeout=600)
            assert run.returncode == 2 and "hf download" in run.stderr, run.stderr
            assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
        script = "; ".join([*prelude, shlex.join([*argv, *extra])])
        run = subprocess.run(["bash", "-ec", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=600)
        assert run.returncode == 0, f"{command}\n{run.stdout}\n{run.stderr}"
        if argv[0] == "source":
            prelude.append(command)
    written = {p.name for p in tmp_path.iterdir()} - {".hf"}
    assert written == {".venv", "demo_output", "output"}, written  # nothing else in the folder it ran in
    for path in ("demo_output/sample.png", SYNTHETIC, "demo_output/report/best_worst_frames.png",
                 "output/estimate/sample_preview.png", "output/estimate_synthetic/sample.ply",
                 "output/processed_bag/metadata.yaml", "output/report/metrics.json", "output/runs/first/best.pth"):
        assert (tmp_path / path).is_file(), path


def cli_lines() -> list[str]:
    """Every depth-anything-ros command line of the README and the docs."""
    lines = [c for c in COMMANDS if c.startswith(f"{PROG} ")]
    lines += [c for doc in DOCS for c in bash_commands(doc.read_text()) if c.startswith(f"{PROG} ")]
    return [c for c in lines if c != f"{PROG} --help"]  # the walk runs that one


@pytest.mark.parametrize("line", cli_lines())
def test_readme_and_docs_command_lines_parse(line):
    build_parser().parse_args(shlex.split(line)[1:])


def test_readme_links_point_at_files():
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README):
        assert (REPO_ROOT / target).exists(), target


def test_variant_table_matches_variants_module():
    rows = re.findall(r"^\| `([\w-]+)` \| (\w+) \| (\w+) \| ([\d-]+) \| `([\w/.-]+)` \| `([\w.]+)` \|$",
                      (REPO_ROOT / "docs" / "models.md").read_text(), flags=re.MULTILINE)
    table = {name: (encoder, kind, depth, repo, filename) for name, encoder, kind, depth, repo, filename in rows}
    expected = {spec.name: (spec.encoder, spec.kind, "-" if spec.max_depth is None else f"{spec.max_depth:g}",
                            spec.repo_id, spec.filename) for spec in CHECKPOINTS.values()}
    assert table == expected


def test_download_command_is_the_one_errors_print():
    assert CHECKPOINTS["hypersim-vits"].download_command() in COMMANDS


def test_readme_serve_examples_run(tmp_path):
    """The serve line with the synthetic weights and a small input size, then its Python and curl examples."""
    pytest.importorskip("gradio_client", reason="the serve extra is not installed (requirements-serve.txt)")
    import cv2
    import numpy as np
    from serve_helpers import Server, scene_png

    from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint

    text = README[README.index("## Serve depth over HTTP"):README.index("## Use with Nav2")]
    (line,) = [c for c in COMMANDS if c.startswith(f"{PROG} serve ")]
    argv = shlex.split(line)[2:]
    options = [a for i, a in enumerate(argv) if a != "--checkpoint" and (i == 0 or argv[i - 1] != "--checkpoint")]
    checkpoint = write_synthetic_checkpoint(tmp_path / "synthetic_vits.safetensors", "vits", seed=0)
    for name in ("scene1.png", "frame.png"):
        (tmp_path / name).write_bytes(scene_png())
    server = Server(checkpoint, *options)
    try:
        address = server.url.rstrip("/")
        python = re.search(r"```python\n(.*?)```", text, flags=re.DOTALL).group(1)
        result = subprocess.run([sys.executable, "-c", python.replace("http://127.0.0.1:7860", address)],
                                cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert "'valid_fraction'" in result.stdout and "fov given" in result.stdout
        curls = [c for c in bash_commands(text) if c.startswith("curl ")]
        assert len(curls) == 3 and all(c in RUN_ELSEWHERE for c in curls)
        for command in curls:
            result = subprocess.run(shlex.split(command.replace("http://127.0.0.1:7860", address)), cwd=tmp_path,
                                    capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, (command, result.stderr)
        assert cv2.imread(str(tmp_path / "frame_depth.tiff"), cv2.IMREAD_UNCHANGED).dtype == np.float32
        assert '"status":"ok"' in result.stdout
    finally:
        server.stop()
