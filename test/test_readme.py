"""The README tells the truth: its commands run, its tables match the code, CI runs its test command."""

import re
import shlex
from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_anything_ros.cli import build_parser, main
from depth_anything_ros.models.variants import CHECKPOINTS

REPO_ROOT = Path(__file__).resolve().parent.parent
README = (REPO_ROOT / "README.md").read_text()
CODE_BLOCKS = re.findall(r"^```bash\n(.*?)^```", README, flags=re.MULTILINE | re.DOTALL)
CLI_LINES = [line for block in CODE_BLOCKS for line in block.splitlines() if line.startswith("depth-anything-ros ")]


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, flags=re.MULTILINE | re.DOTALL)
    assert match, f"README has no section '## {title}'"
    return match.group(1)


def test_quick_start_is_make_demo_and_make_test():
    block = re.search(r"```bash\n(.*?)```", section("Quick start"), flags=re.DOTALL).group(1)
    assert block.split("\n")[:-1] == ["make demo", "make test"]
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^demo: setup\n\t\$\(VENV\)/bin/depth-anything-ros demo$", makefile, flags=re.MULTILINE)
    assert re.search(r"^test: setup\n", makefile, flags=re.MULTILINE)
    assert (REPO_ROOT / ".ci" / "run").read_text().strip().endswith("\nmake test")


def test_variant_table_matches_variants_module():
    rows = re.findall(r"^\| `([\w-]+)` \| (\w+) \| (\w+) \| ([\d-]+) \| `([\w/.-]+)` \| `([\w.]+)` \|$",
                      section("Model variants"), flags=re.MULTILINE)
    table = {name: (encoder, kind, depth, repo, filename) for name, encoder, kind, depth, repo, filename in rows}
    expected = {spec.name: (spec.encoder, spec.kind, "-" if spec.max_depth is None else f"{spec.max_depth:g}",
                            spec.repo_id, spec.filename) for spec in CHECKPOINTS.values()}
    assert table == expected


@pytest.mark.parametrize("line", CLI_LINES)
def test_readme_command_line_parses(line):
    build_parser().parse_args(shlex.split(line)[1:])


def test_readme_estimate_example_runs(synthetic_vits_checkpoint, tmp_path, monkeypatch):
    """The first estimate example, with the synthetic checkpoint in place of the real one and a small input size."""
    argv = shlex.split(next(line for line in CLI_LINES if " estimate " in line))[1:]
    args = build_parser().parse_args(argv)
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    for image in args.images:
        assert cv2.imwrite(str(image), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    argv[argv.index("--checkpoint") + 1] = str(synthetic_vits_checkpoint)
    assert main([*argv, "--input-size", "70", "--encoder", "vits", "--model-max-depth", "20"]) == 0
    for image in args.images:
        for suffix in ("_depth.tiff", "_depth_mm.png", "_preview.png", ".ply"):
            assert (args.out / f"{image.stem}{suffix}").is_file()


def test_download_command_is_the_one_errors_print():
    spec = CHECKPOINTS["hypersim-vits"]
    assert spec.download_command() in [line for block in CODE_BLOCKS for line in block.splitlines()]


def test_offline_commands_with_the_demo_weights_run_and_say_synthetic(tmp_path, monkeypatch, capsys):
    """The README's offline lines, with the demo's synthetic weights file in place and a small input size."""
    from depth_anything_ros.bag.sample import SampleConfig, write_sample_bag
    from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint

    lines = [line for line in CLI_LINES if "demo_output/synthetic_vits.safetensors" in line]
    assert [shlex.split(line)[1] for line in lines] == ["estimate", "bag"]
    monkeypatch.chdir(tmp_path)
    write_synthetic_checkpoint(Path("demo_output/synthetic_vits.safetensors"), "vits", seed=0)  # as the demo does
    write_sample_bag(Path("demo_output/sample_bag"), SampleConfig(width=64, height=48, frames=2))
    assert cv2.imwrite("kitchen.jpg", np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    for line in lines:
        capsys.readouterr()
        assert main([*shlex.split(line)[1:], "--input-size", "70"]) == 0, line
        assert "SYNTHETIC WEIGHTS: synthetic_vits.safetensors holds random weights" in capsys.readouterr().err
    assert Path("results/kitchen_depth.tiff").is_file() and Path("processed_bag/metadata.yaml").is_file()


def test_readme_serve_examples_run(tmp_path):
    """The serve line with the synthetic weights and a small input size, then its Python and curl examples."""
    pytest.importorskip("gradio_client", reason="the serve extra is not installed (requirements-serve.txt)")
    import subprocess
    import sys

    from serve_helpers import Server, scene_png

    from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint

    text = section("Serve depth over HTTP")
    argv = shlex.split(next(line for line in CLI_LINES if " serve " in line))[2:]
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
        curls = [line for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
                 for line in block.splitlines() if line.startswith("curl ")]
        assert len(curls) == 3
        for line in curls:
            result = subprocess.run(shlex.split(line.replace("http://127.0.0.1:7860", address)), cwd=tmp_path,
                                    capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, (line, result.stderr)
        assert cv2.imread(str(tmp_path / "frame_depth.tiff"), cv2.IMREAD_UNCHANGED).dtype == np.float32
        assert '"status":"ok"' in result.stdout
    finally:
        server.stop()
