"""`export` to ONNX, the onnxruntime backend behind our own pre/post-processing, and the startup self-check (CLI).

The export is a real `depth-anything-ros export` of a synthetic vits checkpoint, read back with onnx and run in
ONNX Runtime's CPU provider; the damaged file has one initializer changed after export, as a broken conversion or
a corrupted copy would. Differences against torch are bounded here loosely (1e-3 m at 20 m); the measured figures
per encoder are in docs/onnx.md (benchmarks/onnx_numerics.py).
"""

import hashlib
import json
import subprocess

import cv2
import numpy as np
import onnx
import pytest
from onnx_helpers import IMAGE_SIZE, INPUT_SIZE, damaged_copy, export_small

from depth_anything_ros.models.backends.export import probe_image
from depth_anything_ros.models.backends.loader import load_backend_estimator
from depth_anything_ros.models.backends.sidecar import SidecarError
from depth_anything_ros.models.registry import load_estimator
from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint

W, H = IMAGE_SIZE
ORT = ["--backend", "onnxruntime", "--device", "cpu"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """Synthetic vits weights as .safetensors (marked synthetic, so the sidecar must say so)."""
    return write_synthetic_checkpoint(tmp_path_factory.mktemp("ckpt") / "weights.safetensors", "vits", seed=0)


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory):
    return export_small(checkpoint, tmp_path_factory.mktemp("onnx") / "vits.onnx")


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("images") / "probe.png"
    assert cv2.imwrite(str(path), probe_image(W, H)[..., ::-1])  # BGR on disk: estimate reads the same RGB
    return path


def run_cli(cli, *args) -> subprocess.CompletedProcess:
    return subprocess.run([*cli, *map(str, args)], capture_output=True, text=True, timeout=600)


def test_export_writes_a_fixed_size_opset_18_file_and_its_sidecar(exported, checkpoint):
    model = onnx.load(str(exported))
    onnx.checker.check_model(model)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [18]
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 70, 98]  # 70 on the short side of 64x48, the long side 93.3 up to a multiple of 14
    assert [o.name for o in model.graph.output] == ["depth"]
    side = json.loads(exported.with_suffix(".json").read_text())
    assert side["format"] == "depth_anything_ros.onnx/1"
    assert {k: side[k] for k in ("family", "encoder", "max_depth", "input_size", "network_size", "image_size",
                                 "opset", "synthetic")} == {
        "family": "v2", "encoder": "vits", "max_depth": 20.0, "input_size": INPUT_SIZE, "network_size": [70, 98],
        "image_size": [W, H], "opset": 18, "synthetic": True}
    assert side["source_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert side["onnx_sha256"] == hashlib.sha256(exported.read_bytes()).hexdigest()
    assert "ImageNet mean" in side["preprocessing"]


def test_export_check_prints_the_difference(checkpoint, tmp_path, capsys):
    export_small(checkpoint, tmp_path / "checked.onnx", "--check")
    line = [x for x in capsys.readouterr().out.splitlines() if "--check" in x]
    assert len(line) == 1 and "max |diff|" in line[0] and "mean |diff|" in line[0], line
    max_diff = float(line[0].split("max |diff| ")[1].split(" m")[0])
    assert 0 <= max_diff < 1e-3


def test_onnxruntime_runs_the_network_inside_our_pipeline(exported, checkpoint):
    ort = load_backend_estimator(exported, "onnxruntime", device="cpu")
    torch_est = load_estimator(checkpoint, encoder="vits", max_depth=20.0, device="cpu", precision="fp32",
                               input_size=INPUT_SIZE, compile=False)
    assert type(ort) is type(torch_est) and ort.backend == "onnxruntime" and ort.providers == ["CPUExecutionProvider"]
    assert (ort.encoder, ort.max_depth, ort.input_size) == ("vits", 20.0, INPUT_SIZE)
    frames = [probe_image(W, H), probe_image(W, H)[::-1].copy()]
    got, want = ort.estimate_batch(frames), torch_est.estimate_batch(frames)  # a batch runs frame by frame
    assert got.shape == want.shape == (2, H, W) and want.std() > 0
    assert np.abs(got - want).max() < 1e-3


def test_a_frame_of_another_size_is_refused_naming_the_export_size(exported):
    ort = load_backend_estimator(exported, "onnxruntime", device="cpu")
    with pytest.raises(ValueError, match=r"exported for network input 98x70 \(64x48 images\).*--image-size"):
        ort.estimate(probe_image(96, 48))


def test_options_the_export_fixed_are_refused_when_they_differ(exported):
    with pytest.raises(SidecarError, match="exported with input_size 70, not 518"):
        load_backend_estimator(exported, "onnxruntime", input_size=518)
    with pytest.raises(SidecarError, match="exported with max_depth 20.0, not 80.0"):
        load_backend_estimator(exported, "onnxruntime", max_depth=80.0)
    with pytest.raises(SidecarError, match="torch options"):
        load_backend_estimator(exported, "onnxruntime", precision="bf16")


def test_estimate_with_onnxruntime_self_checks_and_writes(cli, exported, image, tmp_path):
    result = run_cli(cli, "estimate", image, "--checkpoint", exported, *ORT, "--fov", 60, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    check = [x for x in result.stderr.splitlines() if "self-check" in x]
    assert len(check) == 1 and "max |diff|" in check[0] and "tolerance 0.2 m max, 0.02 m mean" in check[0]
    assert "SYNTHETIC WEIGHTS" in result.stderr  # the sidecar carries the synthetic mark
    assert (tmp_path / "probe_depth.tiff").is_file()


def test_a_missing_provider_is_one_line_listing_the_available_ones(cli, exported, image, tmp_path):
    result = run_cli(cli, "estimate", image, "--checkpoint", exported, *ORT, "--providers",
                     "TensorrtExecutionProvider,CPUExecutionProvider", "--out", tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "TensorrtExecutionProvider not available" in lines[0] and "available: " in lines[0]
    assert "CPUExecutionProvider" in lines[0].split("available: ")[1]


def test_a_damaged_export_is_refused_by_the_self_check(cli, exported, image, tmp_path):
    damaged = damaged_copy(exported, tmp_path / "damaged.onnx")
    result = run_cli(cli, "estimate", image, "--checkpoint", damaged, *ORT, "--out", tmp_path / "out")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [x for x in result.stderr.splitlines() if x.startswith("depth-anything-ros: error: ")]
    assert len(errors) == 1, result.stderr
    assert "FAILED the self-check" in errors[0] and "likely causes" in errors[0] and "--no-self-check" in errors[0]
    max_diff = float(errors[0].split("max |diff| ")[1].split(" m")[0])
    assert max_diff > 0.2  # above the 1% of 20 m tolerance
    assert not (tmp_path / "out").exists()
    skipped = run_cli(cli, "estimate", image, "--checkpoint", damaged, *ORT, "--no-self-check", "--out",
                      tmp_path / "out")
    assert skipped.returncode == 0, skipped.stderr  # the user's choice, at their own risk


def test_export_refuses_an_output_that_is_not_onnx(cli, checkpoint, tmp_path):
    result = run_cli(cli, "export", "--checkpoint", checkpoint, "--out", tmp_path / "model.pth")
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"depth-anything-ros: error: --out {tmp_path / 'model.pth'} must end in .onnx (the sidecar is written "
        "beside it as .json)"]


def test_an_export_without_its_sidecar_is_refused(exported, tmp_path):
    alone = tmp_path / "alone.onnx"
    alone.write_bytes(exported.read_bytes())
    with pytest.raises(SidecarError, match="has no sidecar alone.json beside it: export the network with"):
        load_backend_estimator(alone, "onnxruntime")
