"""`depth-anything-ros estimate` end to end on small images with a synthetic checkpoint."""

import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from ply_reader import read_ply

from depth_anything_ros.cli import main
from depth_anything_ros.models.v2.estimator import DepthEstimator

REPO_ROOT = Path(__file__).resolve().parent.parent
INPUT_SIZE = 70
FX, FY, CX, CY = 52.0, 50.0, 30.5, 22.0


def write_image(path: Path, width: int = 64, height: int = 48, seed: int = 0) -> np.ndarray:
    """Write a textured colour image and return it as (H, W, 3) RGB."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    rgb = np.clip(ramp * 0.5 + rng.integers(0, 128, (height, width, 3)), 0, 255).astype(np.uint8)
    assert cv2.imwrite(str(path), rgb[..., ::-1])
    return rgb


def run_cli(cli, *args, cwd=REPO_ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([*cli, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def estimator(synthetic_vits_checkpoint):
    return DepthEstimator(checkpoint=str(synthetic_vits_checkpoint), encoder="vits", max_depth=20.0, device="cpu",
                          input_size=INPUT_SIZE)


def test_estimate_writes_depth_preview_and_cloud(cli, synthetic_vits_checkpoint, estimator, tmp_path):
    rgb = write_image(tmp_path / "room.png")
    out = tmp_path / "results"
    result = run_cli(cli, "estimate", tmp_path / "room.png", "--checkpoint", synthetic_vits_checkpoint,
                     "--encoder", "vits", "--model-max-depth", 20, "--input-size", INPUT_SIZE, "--device", "cpu",
                     "--fx", FX, "--fy", FY, "--cx", CX, "--cy", CY, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "note:" not in result.stderr

    expected = estimator.estimate(rgb, encoding="rgb8")
    depth = cv2.imread(str(out / "room_depth.tiff"), cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.float32 and depth.shape == (48, 64)
    np.testing.assert_allclose(depth, expected, rtol=1e-5, atol=1e-5)
    assert np.isfinite(depth).all() and (depth > 0).all() and (depth < 20).all()

    millimetres = cv2.imread(str(out / "room_depth_mm.png"), cv2.IMREAD_UNCHANGED)
    assert millimetres.dtype == np.uint16
    assert np.abs(millimetres.astype(np.float64) - depth * 1000.0).max() <= 0.5 + 1e-3

    preview = cv2.imread(str(out / "room_preview.png"), cv2.IMREAD_COLOR)
    assert preview.shape[0] > 48 and preview.shape[1] > 2 * 64  # the footer below
    np.testing.assert_array_equal(preview[:48, :64, ::-1], rgb)

    vertices = read_ply(out / "room.ply")[1]
    v, u = np.mgrid[0:48, 0:64]
    assert vertices.size == depth.size
    np.testing.assert_allclose(vertices["z"], depth.ravel(), rtol=1e-6)
    np.testing.assert_allclose(vertices["x"], ((u - CX) * depth / FX).ravel(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(vertices["y"], ((v - CY) * depth / FY).ravel(), rtol=1e-5, atol=1e-6)
    colours = np.stack([vertices["red"], vertices["green"], vertices["blue"]], axis=-1)
    np.testing.assert_array_equal(colours, rgb.reshape(-1, 3))


def test_estimate_npy_and_default_field_of_view(synthetic_vits_checkpoint, estimator, tmp_path, capsys):
    images = [tmp_path / "a.png", tmp_path / "b.jpg"]
    rgbs = [write_image(images[0], 64, 48, seed=1), write_image(images[1], 40, 56, seed=2)]
    code = main(["estimate", *map(str, images), "--checkpoint", str(synthetic_vits_checkpoint),
                 "--model-max-depth", "20", "--input-size", str(INPUT_SIZE), "--device", "cpu", "--out", str(tmp_path),
                 "--format", "npy"])
    assert code == 0
    assert "60 degree" in capsys.readouterr().err
    for path, rgb in zip(images, rgbs, strict=True):
        depth = np.load(tmp_path / f"{path.stem}_depth.npy")
        np.testing.assert_allclose(depth, estimator.estimate(cv2.imread(str(path))[..., ::-1].copy()),
                                   rtol=1e-5, atol=1e-5)
        assert not (tmp_path / f"{path.stem}_depth.tiff").exists()
        height, width = rgb.shape[:2]
        focal = (width / 2) / np.tan(np.radians(30))
        vertices = read_ply(tmp_path / f"{path.stem}.ply")[1]
        u = np.tile(np.arange(width), height)
        np.testing.assert_allclose(vertices["x"], (u - (width - 1) / 2) * depth.ravel() / focal, rtol=1e-5,
                                   atol=1e-6)


@pytest.mark.parametrize("options, message", [
    (["--fx", "50"], "incomplete intrinsics: also give --fy --cx --cy"),
    (["--fx", "-5", "--fy", "5", "--cx", "1", "--cy", "1"], "invalid intrinsics"),
    (["--fx", "5", "--fy", "5", "--cx", "1", "--cy", "1", "--fov", "60"], "not both"),
    (["--fov", "180"], "invalid --fov 180"),
])
def test_invalid_options_are_one_line_errors(options, message, synthetic_vits_checkpoint, tmp_path, capsys):
    write_image(tmp_path / "x.png")
    code = main(["estimate", str(tmp_path / "x.png"), "--checkpoint", str(synthetic_vits_checkpoint),
                 "--out", str(tmp_path / "out"), *options])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_unreadable_inputs_exit_2_without_traceback(cli, synthetic_vits_checkpoint, tmp_path):
    (tmp_path / "notes.png").write_text("this is not a picture")
    write_image(tmp_path / "ok.png")
    (tmp_path / "broken.pth").write_bytes(b"\x80\x02 truncated")
    cases = [
        (tmp_path / "missing.png", synthetic_vits_checkpoint, "missing.png: no such file"),
        (tmp_path / "notes.png", synthetic_vits_checkpoint, "cannot read image"),
        (tmp_path / "ok.png", tmp_path / "broken.pth", "broken.pth"),
    ]
    for image, checkpoint, message in cases:
        result = run_cli(cli, "estimate", image, "--checkpoint", checkpoint, "--out", tmp_path / "out")
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("depth-anything-ros: error:") and message in lines[0], lines



@pytest.mark.parametrize("flag, compiled", [("auto", False), ("off", False), ("on", True)])  # auto: off on CPU
def test_compile_option_reaches_the_estimator(flag, compiled, synthetic_vits_checkpoint):
    from depth_anything_ros.cli import build_parser
    from depth_anything_ros.cli_options import make_estimator

    args = build_parser().parse_args(["estimate", "x.png", "--out", "o", "--checkpoint", str(synthetic_vits_checkpoint),
                                      "--model-max-depth", "20", "--input-size", "70", "--compile", flag])
    assert make_estimator(args).compiled is compiled  # torch.compile wraps lazily: nothing compiles here
