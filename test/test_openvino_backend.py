"""The openvino backend: the exported file and its sidecar compiled by the OpenVINO runtime, inside our pipeline.

The same small `depth-anything-ros export` of a synthetic vits checkpoint as test_onnx_backend.py, compiled for
OpenVINO's CPU device (the only one on the test machine) at the default f32 precision hint. Against our torch fp32
the measured difference on these two 64x48 frames is 4.0e-5 m max and 5.3e-6 m mean (20 m head; ONNX Runtime's CPU
provider: 6.0e-5 / 7.4e-6); the bars below give 10x room for other CPUs' kernels (AVX-512 sums in another order)
and stay three orders of magnitude under the self-check's 0.2 m, which a damaged weight exceeds. Figures at 640x480:
docs/onnx.md (benchmarks/onnx_numerics.py, benchmarks/cpu_backends.py).
"""

import subprocess

import cv2
import numpy as np
import onnx
import openvino
import pytest
from onnx_helpers import IMAGE_SIZE, INPUT_SIZE, damaged_copy, export_small

from depth_anything_ros.cli import main

from depth_anything_ros.models.backends.choices import OPENVINO_PRECISIONS
from depth_anything_ros.models.backends.export import probe_image
from depth_anything_ros.models.backends.loader import load_backend_estimator
from depth_anything_ros.models.backends.sidecar import SidecarError
from depth_anything_ros.models.registry import load_estimator
from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint

W, H = IMAGE_SIZE
OPENVINO = ["--backend", "openvino", "--device", "cpu"]
MAX_BAR, MEAN_BAR = 4e-4, 5e-5  # metres at a 20 m head: 10x the measured difference (module docstring)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
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


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("depth-anything-ros: error: "), result.stderr
    return lines[0]


def test_openvino_cpu_f32_matches_torch_fp32_inside_our_pipeline(exported, checkpoint):
    ov = load_backend_estimator(exported, "openvino", device="cpu")
    torch_est = load_estimator(checkpoint, encoder="vits", max_depth=20.0, device="cpu", precision="fp32",
                               input_size=INPUT_SIZE, compile=False)
    assert type(ov) is type(torch_est) and ov.backend == "openvino" and ov.providers == ["CPU f32"]
    assert (ov.encoder, ov.max_depth, ov.input_size) == ("vits", 20.0, INPUT_SIZE)
    frames = [probe_image(W, H), probe_image(W, H)[::-1].copy()]
    got, want = ov.estimate_batch(frames), torch_est.estimate_batch(frames)  # a batch runs frame by frame
    assert got.shape == want.shape == (2, H, W) and want.std() > 1.0
    assert not np.array_equal(got[0], got[1])  # each frame its own output, not a reused buffer
    diff = np.abs(got - want)
    assert diff.max() < MAX_BAR and diff.mean() < MEAN_BAR, (diff.max(), diff.mean())


def test_a_37_patch_side_matches_torch_too(checkpoint, tmp_path):
    # Input 518 gives 37 patches on the short side, the pretrained table's size: the side OpenVINO 2026.4 resampled
    # wrongly when the file held the position embedding's bicubic Resize (0.9 m off at 640x480); the export holds
    # torch's table for its grid instead (backends/export.constant_position_embeddings).
    out = tmp_path / "grid37.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--encoder", "vits", "--model-max-depth", "20",
                 "--input-size", "518", "--image-size", "70", "72", "--out", str(out)]) == 0  # network 532 x 518
    ov = load_backend_estimator(out, "openvino", device="cpu")
    torch_est = load_estimator(checkpoint, encoder="vits", max_depth=20.0, device="cpu", precision="fp32",
                               input_size=518, compile=False)
    image = probe_image(70, 72)
    diff = np.abs(ov.estimate(image) - torch_est.estimate(image))
    assert diff.max() < MAX_BAR and diff.mean() < MEAN_BAR, (diff.max(), diff.mean())
    cubic = [n.name for n in onnx.load(str(out)).graph.node
             if n.op_type == "Resize" and any(a.name == "mode" and a.s == b"cubic" for a in n.attribute)]
    assert cubic == []


def test_options_the_export_fixed_are_refused_with_openvino_too(exported):
    with pytest.raises(SidecarError, match="exported with input_size 70, not 518"):
        load_backend_estimator(exported, "openvino", input_size=518)
    with pytest.raises(SidecarError, match="torch options"):
        load_backend_estimator(exported, "openvino", precision="bf16")


def test_estimate_with_openvino_self_checks_and_writes(cli, exported, image, tmp_path):
    result = run_cli(cli, "estimate", image, "--checkpoint", exported, *OPENVINO, "--fov", 60, "--format", "npy",
                     "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    check = [x for x in result.stderr.splitlines() if "self-check" in x]
    assert len(check) == 1 and "tolerance 0.2 m max, 0.02 m mean" in check[0], result.stderr
    assert float(check[0].split("max |diff| ")[1].split(" m")[0]) < MAX_BAR
    assert "SYNTHETIC WEIGHTS" in result.stderr
    depth = np.load(tmp_path / "probe_depth.npy")
    reference = load_backend_estimator(exported, "openvino", device="cpu").estimate(probe_image(W, H))
    np.testing.assert_array_equal(depth, reference)  # estimate's depth is the backend's, bit for bit


def test_a_damaged_export_is_refused_by_the_self_check(cli, exported, image, tmp_path):
    damaged = damaged_copy(exported, tmp_path / "damaged.onnx")
    result = run_cli(cli, "estimate", image, "--checkpoint", damaged, *OPENVINO, "--out", tmp_path / "out")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [x for x in result.stderr.splitlines() if x.startswith("depth-anything-ros: error: ")]
    assert len(errors) == 1, result.stderr
    assert "with openvino (CPU f32) FAILED the self-check" in errors[0] and "--no-self-check" in errors[0]
    assert float(errors[0].split("max |diff| ")[1].split(" m")[0]) > 0.2  # above 1% of the 20 m head
    assert not (tmp_path / "out").exists()


def test_an_unavailable_device_is_one_line_listing_the_available_ones(cli, exported, image, tmp_path):
    available = openvino.Core().available_devices
    missing = next(name for name in ("NPU", "GPU", "NOSUCH") if name not in available)
    line = one_error_line(run_cli(cli, "estimate", image, "--checkpoint", exported, *OPENVINO, "--openvino-device",
                                  missing, "--out", tmp_path))
    assert f"--openvino-device {missing}: no such OpenVINO device here; available: " in line
    assert line.split("available: ")[1].split(", ") == available


def test_a_precision_the_device_does_not_run_natively_is_refused(cli, exported, image, tmp_path):
    capabilities = openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    lacking = [hint for hint, capability in OPENVINO_PRECISIONS.items() if capability not in capabilities]
    if not lacking:
        pytest.skip(f"this CPU runs every hint natively ({capabilities})")
    line = one_error_line(run_cli(cli, "estimate", image, "--checkpoint", exported, *OPENVINO,
                                  "--openvino-precision", lacking[0], "--out", tmp_path))
    assert f"--openvino-precision {lacking[0]}: OpenVINO device CPU does not run it natively" in line
    assert "use f32 there" in line


def test_a_file_openvino_cannot_read_is_one_clear_error(exported, tmp_path):
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(exported.read_bytes()[: 1 << 20])
    truncated.with_suffix(".json").write_bytes(exported.with_suffix(".json").read_bytes())
    with pytest.raises(SidecarError, match=r"OpenVINO cannot open .*truncated\.onnx: Model can't be parsed"):
        load_backend_estimator(truncated, "openvino")
