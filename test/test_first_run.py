"""What a newcomer meets after `make demo`: the demo's output in order, boxes that fit, one wording, file modes."""

import json
import os
import re
import shlex
import stat
import subprocess
from pathlib import Path

import cv2
import pytest

from depth_anything_ros.cli import main

SMALL = ["--frames", "3", "--width", "64", "--height", "48", "--input-size", "70", "--device", "cpu"]


@pytest.fixture(scope="module")
def demo(cli, tmp_path_factory):
    """Run the demo offline as a program, stdout and stderr into one pipe as a terminal log shows them."""
    cwd = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(cwd / "hf")}
    run = subprocess.run([*cli, "demo", *SMALL], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout
    return cwd, run.stdout


def test_demo_announces_each_step_before_the_steps_own_lines(demo):
    _, log = demo
    lines = log.splitlines()
    first = {prefix: next(i for i, line in enumerate(lines) if line.startswith(prefix))
             for prefix in ("[1/3]", "[2/3]", "bag process:", "[3/3]", "bag evaluate:", "metrics after alignment")}
    assert list(first.values()) == sorted(first.values()), first


def test_demo_prints_the_evaluate_command_it_ran(demo, monkeypatch, capsys):
    """Running the printed [3/3] line again gives the demo's metrics: same range, alignment and topics."""
    cwd, log = demo
    command = next(line for line in log.splitlines() if line.startswith("[3/3] ")).removeprefix("[3/3] ")
    assert "--gt-min-depth 0.1 " in command
    argv = shlex.split(command)
    assert argv[0] == "depth-anything-ros"
    demo_metrics = json.loads((cwd / "demo_output/report/metrics.json").read_text())
    monkeypatch.chdir(cwd)
    argv[argv.index("--report") + 1] = "again"
    assert main([*argv[1:], "--no-progress"]) == 0
    again = json.loads((cwd / "again/metrics.json").read_text())
    for key in ("gt_topic", "prediction", "align", "min_depth", "max_depth", "overall", "overall_aligned",
                "alignment"):
        assert again[key] == demo_metrics[key], key


def test_demo_writes_a_sample_image_and_the_estimate_line_for_it_runs(demo, monkeypatch):
    cwd, log = demo
    command = next(line for line in log.splitlines() if line.startswith("one image: ")).removeprefix("one image: ")
    argv = shlex.split(command)
    assert argv[:3] == ["depth-anything-ros", "estimate", "demo_output/sample.png"]
    monkeypatch.chdir(cwd)
    assert main([*argv[1:], "--input-size", "70"]) == 0
    assert {p.name for p in (cwd / "demo_output/estimate").iterdir()} == {
        "sample_depth.tiff", "sample_depth_mm.png", "sample_preview.png", "sample.ply"}
    preview = cv2.imread(str(cwd / "demo_output/estimate/sample_preview.png"))[..., ::-1].astype(int)
    footer = preview[48:]  # below the 48-row image, its depth and the colour bar: the model, red for synthetic
    red = (footer[..., 0] - footer[..., 1] > 100) & (footer[..., 0] - footer[..., 2] > 100)
    assert footer.shape[0] >= 14 and red.sum() > 100


def test_demo_files_all_have_a_new_files_mode(demo):
    """The synthetic weights are no exception (safetensors creates 0600 by itself)."""
    cwd, _ = demo
    probe = cwd / "probe"
    probe.write_text("")
    usual = stat.S_IMODE(probe.stat().st_mode)
    files = [p for p in (cwd / "demo_output").rglob("*") if p.is_file()]
    assert (cwd / "demo_output/synthetic_vits.safetensors") in files
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {p.name: usual for p in files}


def banner_lines(text: str) -> list[str]:
    """Lines of every '!!' box in text."""
    return [line for line in text.splitlines() if line.startswith("!!")]


def test_demo_banners_fit_their_box(demo):
    _, log = demo
    lines = banner_lines(log)
    assert lines and "MEANINGLESS" in log
    assert all(len(line) == 78 and line.endswith("!!") for line in lines), lines


def test_estimate_banner_fits_its_box_with_a_long_file_name(synthetic_vits_checkpoint, tmp_path, capsys):
    """The file name is part of the text: a long one wraps (or splits), it never pushes the frame out."""
    long_name = tmp_path / ("weights_" + "x" * 90 + ".safetensors")
    from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint

    write_synthetic_checkpoint(long_name, "vits", seed=0)
    image = tmp_path / "frame.png"
    from depth_anything_ros.bag.sample import SampleConfig, write_sample_image

    write_sample_image(image, SampleConfig(width=64, height=48))
    assert main(["estimate", str(image), "--checkpoint", str(long_name), "--model-max-depth", "20",
                 "--input-size", "70", "--out", str(tmp_path / "out")]) == 0
    lines = banner_lines(capsys.readouterr().err)
    assert len(lines) >= 5 and lines[1].startswith("!!  SYNTHETIC WEIGHTS: weights_")
    assert all(len(line) == 78 and line.endswith("!!") for line in lines), lines


RULE = "a multiple of 14 from 14 to 4088"


@pytest.mark.parametrize("subcommand", [["estimate", "x.png", "--out", "o"], ["bag", "process", "a", "b"],
                                        ["train", "a", "--gt-topic", "/gt"]])
@pytest.mark.parametrize("value", ["13", "4096", "100", "0"])
def test_input_size_rule_is_worded_once_on_the_command_line(subcommand, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*subcommand, "--input-size", value])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1
    command = " ".join(subcommand[:2] if subcommand[0] == "bag" else subcommand[:1])
    assert f"input size must be {RULE} " in err
    assert err.endswith(f"got {value} (see 'depth-anything-ros {command} --help')")


def test_input_size_rule_is_worded_the_same_by_the_node_library_and_docs():
    from depth_anything_ros.models.registry import load_estimator
    from depth_anything_ros.ros import params

    spec = params.SPECS["model.input_size"]
    assert params.allowed(spec) == f"0 (auto) or {RULE}"
    assert (spec.low, spec.high, spec.step) == (0, 4088, 14)
    assert RULE in spec.description
    assert params.validate({"model.input_size": 4096}) == (f"model.input_size: input size must be {RULE} (518 is "
                                                           "V2's official one, 504 DA3's), got 4096")
    with pytest.raises(ValueError, match=re.escape(f"input size must be {RULE} ")):
        load_estimator("hypersim-vits", input_size=4096)
    docs = "\n".join(p.read_text() for p in [Path(__file__).parent.parent / "README.md",
                                             *(Path(__file__).parent.parent / "docs").glob("*.md")])
    assert not re.search(r"\b(14|0) *(\.\.|to|and) *(4088|4096)\b", docs.replace(RULE, ""))  # no other wording
    assert RULE in docs and "0 (auto) or a multiple of 14 from 14 to 4088" in docs
