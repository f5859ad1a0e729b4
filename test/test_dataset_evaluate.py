"""`evaluate DATASET`: metrics checked against an independent computation, SSIM against scikit-image, the page."""

import csv
import hashlib
import json
import os
import re
import shlex
from pathlib import Path

import cv2
import numpy as np
import pytest
from dataset_writers import write_nyu_h5

from depth_anything_ros.cli import main
from depth_anything_ros.frame.map_metrics import map_metrics, ssim_map
from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint

MODEL = ["--encoder", "vits", "--model-max-depth", "20", "--input-size", "70", "--device", "cpu"]
# scikit-image is a test requirement of .venv only (requirements-dev.txt); .venv-jazzy runs the graph tests alone
skimage_metrics = pytest.importorskip("skimage.metrics", reason="scikit-image is in requirements-dev.txt")
structural_similarity = skimage_metrics.structural_similarity
peak_signal_noise_ratio = skimage_metrics.peak_signal_noise_ratio
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package chromium (.ci/run installs it)


def test_ssim_and_psnr_match_scikit_image():
    rng = np.random.default_rng(0)
    smooth = cv2.GaussianBlur(rng.random((40, 56)), (0, 0), 3)
    for x, y in [(rng.random((40, 56)), rng.random((40, 56))), (smooth, smooth + 0.05 * rng.random((40, 56)))]:
        x, y = (x - x.min()) / np.ptp(x), (y - y.min()) / np.ptp(y)
        _, full = structural_similarity(y, x, data_range=1.0, full=True)
        np.testing.assert_allclose(ssim_map(x, y), full, atol=1e-12)
        mine = map_metrics(x * 7 + 1, y * 3 + 2, np.ones(x.shape, bool))  # normalisation removes scale and shift
        assert mine["ssim"] == pytest.approx(structural_similarity(y, x, data_range=1.0), abs=1e-12)
        assert mine["psnr"] == pytest.approx(peak_signal_noise_ratio(y, x, data_range=1.0), abs=1e-9)


def _independent_metrics(pred: np.ndarray, gt: np.ndarray) -> dict:
    """Compute the Depth Anything V2 / ZoeDepth formulas, written here from the papers' definitions."""
    p, g = pred.astype(np.float64), gt.astype(np.float64)
    d = np.log(p) - np.log(g)
    ratio = np.maximum(p / g, g / p)
    return {"abs_rel": np.mean(np.abs(p - g) / g), "sq_rel": np.mean((p - g) ** 2 / g),
            "rmse": np.sqrt(np.mean((p - g) ** 2)), "rmse_log": np.sqrt(np.mean(d**2)), "mae": np.mean(np.abs(p - g)),
            "silog": np.sqrt(np.mean(d**2) - 0.5 * np.mean(d) ** 2), "log10": np.mean(np.abs(np.log10(p / g))),
            "d1": np.mean(ratio < 1.25), "d2": np.mean(ratio < 1.5625), "d3": np.mean(ratio < 1.953125)}


def _normalised(a: np.ndarray, valid: np.ndarray) -> np.ndarray:
    return (a - a[valid].min()) / (a[valid].max() - a[valid].min())


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """Write an NYU .h5 dataset, run `evaluate --align scale` on it and `estimate` on the same images."""
    root = tmp_path_factory.mktemp("nyu_eval")
    checkpoint = write_synthetic_checkpoint(root / "synthetic_vits.safetensors", "vits", seed=0)  # marked synthetic
    frames = write_nyu_h5(root / "nyu")
    images = []
    for k, (rgb, _) in enumerate(frames.values()):
        images.append(root / f"image{k}.png")
        assert cv2.imwrite(str(images[-1]), rgb[..., ::-1].copy())
    checkpoint = ["--checkpoint", str(checkpoint), *MODEL]
    assert main(["evaluate", str(root / "nyu"), "--out", str(root / "out"), "--align", "scale", "--no-progress",
                 *checkpoint]) == 0
    assert main(["estimate", *map(str, images), "--out", str(root / "estimate"), *checkpoint]) == 0
    preds = {name: cv2.imread(str(root / "estimate" / f"image{k}_depth.tiff"), cv2.IMREAD_UNCHANGED)
             for k, name in enumerate(frames)}
    return root, frames, preds, json.loads((root / "out" / "metrics.json").read_text())


def test_metrics_match_an_independent_computation(evaluated):
    root, frames, preds, result = evaluated
    crop = np.zeros((48, 64), bool)
    crop[4:47, 4:60] = True  # Eigen's rows 45:471, columns 41:601 of 480x640, at a tenth: 4.5 -> 4 .. 47, 4 .. 60
    samples = {s["name"]: s for s in result["samples"]}
    assert sorted(samples) == sorted(frames)
    sums = np.zeros(2)
    for name, (_, depth) in frames.items():
        valid = crop & np.isfinite(depth) & (depth >= 0.001) & (depth <= 10.0)
        pred, gt = preds[name][valid], depth[valid]
        expected = _independent_metrics(pred, gt)
        pred_n, gt_n = _normalised(preds[name].astype(np.float64), valid), _normalised(depth.astype(np.float64), valid)
        gt_n = np.where(valid, gt_n, pred_n)
        inner = np.zeros_like(valid)
        inner[3:-3, 3:-3] = valid[3:-3, 3:-3]
        expected["ssim"] = structural_similarity(gt_n, pred_n, data_range=1.0, full=True)[1][inner].mean()
        expected["psnr"] = 10 * np.log10(1.0 / np.mean((pred_n[valid] - gt_n[valid]) ** 2))
        assert samples[name]["valid_pixels"] == int(valid.sum())
        for metric, value in expected.items():
            assert samples[name][metric] == pytest.approx(value, rel=1e-5, abs=1e-9), (name, metric)
        sums += (float(pred.astype(np.float64) @ gt), float(pred.astype(np.float64) @ pred))
    for metric in ("abs_rel", "rmse", "d1", "ssim"):
        assert result["overall"][metric] == pytest.approx(np.mean([s[metric] for s in samples.values()]), rel=1e-9)
    assert result["scale"] == pytest.approx(sums[0] / sums[1], rel=1e-6)
    assert result["protocol"] == {"name": "nyu", "crop": "eigen", "min_depth": 0.001, "max_depth": 10.0}
    model = result["provenance"]["model"]
    assert model["sha256"] == hashlib.sha256((root / "synthetic_vits.safetensors").read_bytes()).hexdigest()
    assert model["synthetic"] and result["provenance"]["format"] == "nyu"
    with (root / "out" / "per_sample.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["name"] for r in rows] == [s["name"] for s in result["samples"]]
    assert float(rows[0]["abs_rel"]) == pytest.approx(result["samples"][0]["abs_rel"], abs=1e-6)
    assert sorted(p.name for p in (root / "out").iterdir()) == ["metrics.json", "per_sample.csv", "report.html",
                                                                "worst_samples.png"]


def test_split_and_limit(tmp_path, evaluated, synthetic_vits_checkpoint):
    root = evaluated[0]
    assert main(["evaluate", str(root / "nyu"), "--split", "test", "--out", str(tmp_path / "test"), "--no-progress",
                 "--checkpoint", str(synthetic_vits_checkpoint), *MODEL]) == 0
    result = json.loads((tmp_path / "test" / "metrics.json").read_text())
    assert [s["name"] for s in result["samples"]] == ["val/official/00001"]
    assert result["provenance"]["split"] == "test"


@pytest.fixture(scope="module")
def browser():
    pytest.importorskip("playwright", reason="the test requirements are not installed (requirements-dev.txt)")
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium before make test")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=["--headless", "--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


def _names(page) -> list[str]:
    return page.eval_on_selector_all("#samples tbody tr", "rows => rows.map(r => r.dataset.name)")


def test_report_page_sorts_opens_and_overlays_offline(browser, evaluated, tmp_path):
    root, _, _, result = evaluated
    samples = result["samples"]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto((root / "out" / "report.html").as_uri())
    assert [r for r in requested if not r.startswith(("file:", "data:"))] == []  # nothing from a network
    assert "SYNTHETIC WEIGHTS" in page.locator("#model").inner_text()
    by = {m: [s["name"] for s in sorted(samples, key=lambda s: s[m])] for m in ("abs_rel", "d1")}
    assert _names(page) == by["abs_rel"][::-1]  # worst (largest AbsRel) first
    page.locator('th[data-key="d1"]').click()
    assert _names(page) == by["d1"]  # worst (smallest d1) first
    page.locator('th[data-key="d1"]').click()
    assert _names(page) == by["d1"][::-1]
    assert page.locator("#detail").is_hidden()
    page.locator("#samples tbody tr").first.click()
    for image in ("rgb", "gt", "pred", "error", "error-over"):
        assert page.eval_on_selector(f"#{image}", "i => i.complete && i.naturalWidth") == 64, image
    over = "#error-over"
    assert page.eval_on_selector(over, "i => getComputedStyle(i).opacity") == "0.5"
    page.locator("#opacity").fill("20")
    assert page.eval_on_selector(over, "i => getComputedStyle(i).opacity") == "0.2"
    assert page.locator("#depth-bar + .ticks").inner_text().split() == ["0", "m", "5", "m", "10", "m"]
    assert page.locator("#detail-name").inner_text() == by["d1"][-1]
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)


def test_readme_evaluate_line_runs(tmp_path, monkeypatch):
    """The README's evaluate line on an NYU .h5 dataset at its path, with synthetic weights and a small input."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    (line,) = [c for c in re.findall(r"^depth-anything-ros evaluate .*$", readme, flags=re.MULTILINE)]
    write_nyu_h5(tmp_path / "data" / "nyudepthv2")
    checkpoint = write_synthetic_checkpoint(tmp_path / "synthetic_vits.safetensors", "vits", seed=0)
    monkeypatch.chdir(tmp_path)
    assert main([*shlex.split(line)[1:], "--checkpoint", str(checkpoint), *MODEL, "--no-progress"]) == 0
    result = json.loads((tmp_path / "output" / "nyu_eval" / "metrics.json").read_text())
    assert result["provenance"]["split"] == "test" and result["samples_evaluated"] == 1
