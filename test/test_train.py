"""`depth-anything-ros train` on the sample bag with synthetic vits weights (CPU, input size 28).

One 30-step run (the README command) is shared by the checks of its outputs: training-set AbsRel measured
independently with `bag evaluate`'s code before and after, the checkpoint loaded by path alone in DepthEstimator,
`bag process` and the node. Then Ctrl-C and --resume, and every bad input of the issue.
"""

import json
import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from bag_helpers import read_bag, write_bag

from depth_anything_ros.bag import messages
from depth_anything_ros.bag.evaluate import EvaluateOptions, evaluate_bag
from depth_anything_ros.bag.sample import SampleConfig, write_sample_bag
from depth_anything_ros.cli import build_parser, main
from depth_anything_ros.frame import image_codec
from depth_anything_ros.models.checkpoint_io import CheckpointError, is_synthetic
from depth_anything_ros.models.checkpoint_meta import meta_path
from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint
from depth_anything_ros.models.v2.checkpoint import expected_shapes, load_file
from depth_anything_ros.models.v2.estimator import DepthEstimator

# the README's "Fine-tuning" section; run here with the synthetic checkpoint and a small input size
README_TRAIN = ("depth-anything-ros train output/sample_bag --gt-topic /camera/depth_gt_mm --checkpoint hypersim-vits "
                "--out output/runs/first --steps 30")
README_RESUME = "depth-anything-ros train --resume output/runs/first"  # in the text: after Ctrl-C, not in order
SMALL = ["--model-max-depth", "20", "--input-size", "28", "--device", "cpu", "--no-progress"]
FRAMES = 12  # 160x120; the last ceil(10 %) = 2 validate
GT = "/camera/depth_gt_mm"


@pytest.fixture(scope="module")
def sample_bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("train_sample") / "sample_bag"
    write_sample_bag(path, SampleConfig(width=160, height=120, frames=FRAMES))
    return path


@pytest.fixture(scope="module")
def synthetic_base(tmp_path_factory):
    """Synthetic vits weights as .safetensors, marked synthetic (a .pth cannot say so)."""
    return write_synthetic_checkpoint(tmp_path_factory.mktemp("base") / "synthetic_vits.safetensors", "vits")


@pytest.fixture(scope="module")
def trained(sample_bag, synthetic_base, tmp_path_factory):
    """Run the README command once: (run folder, seconds)."""
    argv = shlex.split(README_TRAIN)[1:]
    out = tmp_path_factory.mktemp("train_run") / "runs" / "first"
    argv[argv.index("output/sample_bag")] = str(sample_bag)
    argv[argv.index("--checkpoint") + 1] = str(synthetic_base)
    argv[argv.index("--out") + 1] = str(out)
    started = time.monotonic()
    assert main([*argv, *SMALL]) == 0
    return out, time.monotonic() - started


def _training_abs_rel(bag, estimator):
    """Mean AbsRel over the training frames (all but the last two in time), scored by bag evaluate."""
    result = evaluate_bag(bag, estimator, EvaluateOptions(gt_topic=GT, max_depth=20.0, progress=False))
    frames = sorted(result.frames, key=lambda f: f.stamp)[:FRAMES - 2]
    assert len(frames) == FRAMES - 2
    return float(np.mean([f.metrics["abs_rel"] for f in frames]))


def test_readme_train_lines_are_the_ones_run_here():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    lines = set(re.findall(r"^depth-anything-ros train .*$", readme, flags=re.MULTILINE))
    assert lines == {README_TRAIN} and f"`{README_RESUME}`" in readme
    for line in (README_TRAIN, README_RESUME):
        build_parser().parse_args(shlex.split(line)[1:])


def test_thirty_steps_lower_training_abs_rel_by_30_percent(trained, sample_bag, synthetic_base):
    out, seconds = trained
    before = _training_abs_rel(sample_bag, DepthEstimator(synthetic_base, max_depth=20.0, device="cpu",
                                                          input_size=28))
    after = _training_abs_rel(sample_bag, DepthEstimator(out / "best.pth", device="cpu", input_size=28))
    assert after <= 0.7 * before, (before, after)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["finished"] and metrics["steps"] == 30
    assert metrics["after"]["train"]["abs_rel"] <= 0.7 * metrics["before"]["train"]["abs_rel"]
    print(f"training-set AbsRel (bag evaluate) {before:.4f} -> {after:.4f}; {metrics['steps_per_s']:.2f} steps/s; "
          f"run {seconds:.0f} s")


def test_outputs_are_official_state_dicts_with_metadata_and_a_report(trained):
    out, _ = trained
    for name in ("best", "last"):
        state = torch.load(out / f"{name}.pth", map_location="cpu", weights_only=True)
        assert list(state) == list(expected_shapes("vits"))
        assert all(isinstance(v, torch.Tensor) and v.dtype == torch.float32 for v in state.values())
        meta = json.loads(meta_path(out / f"{name}.pth").read_text())
        assert (meta["encoder"], meta["kind"], meta["max_depth"], meta["synthetic"]) == ("vits", "metric", 20.0, True)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in log] == list(range(1, 31))
    assert log[0]["lr"] == pytest.approx(5e-6) and log[1]["lr"] == pytest.approx(5e-6)
    assert log[-1]["lr"] == pytest.approx(5e-6 * (1 - 28 / 30) ** 0.9)
    assert all(line["head_lr"] == pytest.approx(10 * line["lr"]) for line in log)
    assert log[-1]["epoch"] == 5  # 10 training frames, batch 2: 5 steps per epoch
    if log[0]["rss_mb"] is not None:  # memory stays flat over epochs: nothing accumulates per step
        assert log[-1]["rss_mb"] - log[9]["rss_mb"] < 64, [line["rss_mb"] for line in log]
    val = [json.loads(line) for line in (out / "val.jsonl").read_text().splitlines()]
    assert val[0]["step"] == 0 and val[-1]["step"] == 30
    assert {"abs_rel", "d1", "rmse", "silog"} <= set(val[0]["metrics"])
    for png in ("loss_lr.png", "validation.png", "worst_val_frame.png"):
        image = cv2.imread(str(out / "report" / png))
        assert image is not None and image.std() > 5
    assert not (out / "resume.pt").exists()


def test_report_figures_colour_depth_near_warm_and_name_units():
    """worst_val_frame.png draws depth as the node and bag evaluate do; every axis and colour bar says its unit."""
    from depth_anything_ros.frame.figures import depth_colormap
    from depth_anything_ros.train import report

    gt = np.linspace(1.0, 5.0, 48 * 64, dtype=np.float32).reshape(48, 64)
    panel = {"rgb": np.zeros((48, 64, 3), np.uint8), "gt": gt, "before": gt * 1.2, "after": gt * 1.1, "bag": "b",
             "stamp": 0, "abs_rel_before": 0.2, "abs_rel_after": 0.1}
    fig = report._panel(panel)
    depth_images = [image for ax in fig.axes for image in ax.get_images() if image.get_array().ndim == 2]
    assert [image.get_cmap().name for image in depth_images][:3] == [depth_colormap().name] * 3
    near, far = depth_images[0].get_cmap()(0.0), depth_images[0].get_cmap()(1.0)
    assert near[0] > near[2] and far[2] > far[0]  # near red, far blue
    bars = [ax.get_ylabel() for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert bars == ["depth (m)"] * 3 + ["relative error (unitless)"]
    metrics = {"abs_rel": 0.1, "d1": 0.9, "rmse": 0.3, "silog": 12.0}
    fig = report._validation([{"step": 0, "metrics": metrics}, {"step": 5, "metrics": metrics}])
    assert [ax.get_ylabel() for ax in fig.axes] == ["AbsRel (unitless)", "δ1 (fraction of pixels)", "RMSE (m)",
                                                     "SiLog (unitless, × 100)"]


def test_train_says_what_it_does_after_the_last_step(sample_bag, synthetic_base, tmp_path, capsys):
    """Between the last step and 'finished' come the final scoring and the report: each announced first."""
    argv = ["train", str(sample_bag), "--gt-topic", GT, "--checkpoint", str(synthetic_base), "--out",
            str(tmp_path / "run"), "--steps", "2", *SMALL[:-1]]
    assert main(argv) == 0
    err = capsys.readouterr()
    lines = (err.err + err.out).splitlines()
    order = [next(i for i, line in enumerate(lines) if line.startswith(prefix))
             for prefix in ("train: 2/2 steps", "train: scoring the fine-tuned model on 10 training frames",
                            "train: writing the report into", "train: finished 2 steps")]
    assert order == sorted(order), lines


def test_checkpoint_loads_by_path_in_estimator_and_bag_process(trained, sample_bag, tmp_path):
    out, _ = trained
    est = DepthEstimator(out / "best.pth", device="cpu", input_size=28)
    assert (est.encoder, est.max_depth) == ("vits", 20.0) and is_synthetic(out / "best.pth")
    assert main(["bag", "process", str(sample_bag), str(tmp_path / "processed"), "--checkpoint",
                 str(out / "best.pth"), "--topics", "depth", "--input-size", "28", "--device", "cpu",
                 "--no-progress"]) == 0
    depth = [r for r in read_bag(tmp_path / "processed") if r.topic == "/camera/depth"]
    assert len(depth) == FRAMES
    np.testing.assert_allclose(image_codec.depth_from_image(depth[0].msg),
                               est.estimate(image_codec.decode_image(
                                   next(r for r in read_bag(sample_bag) if r.topic == "/camera/image").msg)[0],
                                   "rgb8"), rtol=1e-5, atol=1e-5)


@pytest.mark.ros
def test_node_loads_the_checkpoint_by_path_alone(trained, ros_env, tmp_path):
    from graph_harness import CameraIO, GraphClient, NodeProcess, camera_info_msg, image_msg, node_command, random_image

    out, _ = trained
    process = NodeProcess(node_command("/dtrain", out / "best.pth", "device:=cpu"), ros_env, tmp_path / "node.log")
    client = GraphClient("train_checkpoint_test")
    try:
        assert process.wait_for_log("loaded in"), process.log()
        assert "(vits, max depth 20.0 m)" in process.log() and "SYNTHETIC WEIGHTS" in process.log()
        cam = CameraIO(client, "/dtrain")
        pixels = random_image(48, 64, seed=3)

        def make(stamp):
            image = image_msg(stamp, "cam", pixels)
            return image, camera_info_msg(image.header, 64, 48, [50.0, 0, 31.5, 0, 50.0, 23.5, 0, 0, 1])

        _, _, found = cam.roundtrip(make, ("depth",))
        assert found["depth"].encoding == "32FC1" and (found["depth"].width, found["depth"].height) == (64, 48)
    finally:
        client.close()
        process.stop()


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_ctrl_c_saves_a_resumable_state_and_resume_continues_identically(sample_bag, synthetic_vits_checkpoint,
                                                                          tmp_path, cli):
    args = ["train", str(sample_bag), "--gt-topic", GT, "--checkpoint", str(synthetic_vits_checkpoint),
            "--steps", "12", "--val-every", "100", *SMALL]
    run = tmp_path / "interrupted"
    proc = subprocess.Popen([*cli, *args, "--out", str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    deadline = time.monotonic() + 120
    while len(_lines(run / "log.jsonl")) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    state = torch.load(run / "resume.pt", map_location="cpu", weights_only=True)
    stopped = int(state["step"])
    assert 2 <= stopped < 12 and f"interrupted at step {stopped}/12" in err
    assert not (run / "metrics.json").exists() and len(_lines(run / "log.jsonl")) == stopped
    resume = shlex.split(README_RESUME)[1:]
    resume[resume.index("output/runs/first")] = str(run)
    assert main([*resume, "--device", "cpu", "--no-progress"]) == 0
    resumed = _lines(run / "log.jsonl")
    assert [line["step"] for line in resumed] == list(range(1, 13))
    # the first step after the resume runs with train.py's rate for that step: lr (1 - (k - 1) / T) ** 0.9
    assert resumed[stopped]["lr"] == pytest.approx(5e-6 * (1 - (stopped - 1) / 12) ** 0.9, rel=1e-12)
    straight = tmp_path / "straight"  # uninterrupted, every frame from the disk cache
    assert main([*args, "--out", str(straight), "--cache-mb", "0"]) == 0
    assert json.loads((straight / "metrics.json").read_text())["frames"]["cached_on_disk"] == FRAMES
    reference = _lines(straight / "log.jsonl")
    assert [line["lr"] for line in resumed] == [line["lr"] for line in reference]
    np.testing.assert_allclose([line["loss"] for line in resumed], [line["loss"] for line in reference], rtol=1e-4)


# ---------------------------------------------------------------- bad input: one line, exit 2, nothing written


def _bag_with_gt(path, sample_bag, change):
    """Write the sample bag's images and, on /gt, its 32FC1 ground truth after change(header, depth)."""
    records = []
    for r in read_bag(sample_bag):
        if r.topic == "/camera/image":
            records.append((r.topic, r.msgtype, r.log_time, r.msg))
        elif r.topic == "/camera/depth_gt":
            header, depth = change(r.msg.header, image_codec.depth_from_image(r.msg))
            records.append(("/gt", messages.IMAGE, r.log_time,
                            messages.image(header, image_codec.depth_image_fields(depth))))
    return write_bag(path, records)


def _shifted(header, depth):
    return messages.header(messages.stamp_ns(header) + 1_000_000, header.frame_id), depth


def _no_valid(header, depth):
    return header, np.full_like(depth, np.nan)


def _squashed(header, depth):
    return header, cv2.resize(depth, (depth.shape[1], depth.shape[0] // 2), interpolation=cv2.INTER_NEAREST)


@pytest.fixture(scope="module")
def relative_checkpoint(tmp_path_factory):
    return write_synthetic_checkpoint(tmp_path_factory.mktemp("relative") / "depth_anything_v2_vits.pth", "vits")


@pytest.mark.parametrize("case, message", [
    ("no_gt_topic", "ground-truth depth topic /nope is not in bag"),
    ("no_pairs", "has a ground-truth message on /gt with the same stamp"),
    ("no_valid", "no paired frame has 10 or more valid ground-truth pixels"),
    ("not_uniform", "neither the image's 160x120 nor a uniform resize"),
    ("relative_name", "is a relative model"),
    ("relative_file", "is a relative checkpoint"),
    ("temporal", "is a Video Depth Anything (temporal) model; fine-tuning a temporal model is not supported"),
    ("finished_run", "holds a finished run"),
    ("other_run", "holds another run"),
    ("no_out", "train needs --out"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, message, sample_bag, synthetic_vits_checkpoint,
                                                         relative_checkpoint, synthetic_vda_checkpoint, tmp_path,
                                                         capsys):
    bag, gt, checkpoint = sample_bag, GT, str(synthetic_vits_checkpoint)
    out = tmp_path / "out"
    changes = {"no_pairs": _shifted, "no_valid": _no_valid, "not_uniform": _squashed}
    if case in changes:
        bag, gt = _bag_with_gt(tmp_path / "bag", sample_bag, changes[case]), "/gt"
    gt = "/nope" if case == "no_gt_topic" else gt
    checkpoint = {"relative_name": "relative-vits", "relative_file": str(relative_checkpoint),
                  "temporal": str(synthetic_vda_checkpoint)}.get(case, checkpoint)
    if case in ("finished_run", "other_run"):
        out.mkdir()
        (out / "run.json").write_text("{}")
        if case == "finished_run":
            (out / "metrics.json").write_text("{}")
    before = sorted(p.name for p in out.iterdir()) if out.exists() else None
    small = SMALL[2:] if case in ("relative_file", "temporal") else SMALL  # the file tells its head
    argv = ["train", str(bag), "--gt-topic", gt, "--checkpoint", checkpoint, "--steps", "2", *small]
    argv += [] if case == "no_out" else ["--out", str(out)]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("depth-anything-ros: error: ") and message in err[0], err
    assert (sorted(p.name for p in out.iterdir()) if out.exists() else None) == before


def test_damaged_or_foreign_metadata(tmp_path, synthetic_vits_checkpoint):
    path = tmp_path / "mine.pth"
    path.write_bytes(synthetic_vits_checkpoint.read_bytes())
    meta_path(path).write_text('{"something": "else"}')  # not ours: ignored
    assert load_file(path).max_depth is None
    meta_path(path).write_text('{"format": "depth_anything_ros.checkpoint/1", "encoder": "vits", "kind": "metric"}')
    with pytest.raises(CheckpointError, match="damaged"):
        load_file(path)
    meta_path(path).write_text(json.dumps({"format": "depth_anything_ros.checkpoint/1", "encoder": "vitb",
                                           "kind": "metric", "max_depth": 20}))
    with pytest.raises(CheckpointError, match="its metadata says 'vitb'"):
        load_file(path)
