"""The web page of `serve` in a real headless Chromium (Debian's, driven by Playwright).

Upload an image, press the button, wait for the result, read the depth range shown, download the TIFF and compare
both with `estimate`'s. The page's screenshot lands in the test's folder, and in docs/serve_page.jpg with
UPDATE_SCREENSHOT=1 (README, "Serve depth over HTTP").
"""

import os
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_anything_ros.cli import main
from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint

pytest.importorskip("playwright", reason="the test requirements are not installed (requirements-dev.txt)")
from serve_helpers import MODEL, REPO_ROOT, Server, scene_png  # noqa: E402 - after the skip: .venv-jazzy has none

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package chromium (.ci/run installs it)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium before make test")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield chromium
        chromium.close()


def test_page_shows_and_downloads_estimates_depth(browser, tmp_path):
    checkpoint = write_synthetic_checkpoint(tmp_path / "synthetic_vits.safetensors", "vits", seed=0)
    scene = tmp_path / "scene1.png"
    scene.write_bytes(scene_png(320, 240))
    assert main(["estimate", str(scene), "--out", str(tmp_path / "estimate"), "--checkpoint", str(checkpoint),
                 *MODEL]) == 0
    reference = cv2.imread(str(tmp_path / "estimate" / "scene1_depth.tiff"), cv2.IMREAD_UNCHANGED)
    valid = reference[np.isfinite(reference) & (reference > 0)]
    server = Server(checkpoint)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
        page.goto(server.url, wait_until="domcontentloaded")
        assert "SYNTHETIC WEIGHTS" in page.locator("#synthetic-banner").inner_text(timeout=60_000)
        page.locator("#input-image input[type=file]").set_input_files(str(scene))
        page.locator("#input-image img").wait_for(timeout=60_000)
        page.locator("#estimate-button").click()
        shown = page.locator("#depth-range textarea")
        page.wait_for_function("() => document.querySelector('#depth-range textarea').value.startsWith('depth')",
                               timeout=120_000)
        text = shown.input_value()
        low, high = (float(v) for v in re.match(r"depth ([\d.]+) - ([\d.]+) m", text).groups())
        assert (low, high) == (round(float(valid.min()), 3), round(float(valid.max()), 3)), text
        assert "320x240" in text and "fov 60 assumed" in text
        link = page.locator('#downloads a[download="scene1_depth.tiff"]')
        with page.expect_download(timeout=60_000) as download:
            link.click()
        saved = tmp_path / "downloaded.tiff"
        download.value.save_as(saved)
        depth = cv2.imread(str(saved), cv2.IMREAD_UNCHANGED)
        assert depth.dtype == np.float32 and depth.tobytes() == reference.tobytes()
        page.locator("#preview img").wait_for(timeout=60_000)
        page.screenshot(path=str(tmp_path / "serve_page.jpg"), full_page=True, type="jpeg", quality=80)
        if os.environ.get("UPDATE_SCREENSHOT") == "1":
            shutil.copyfile(tmp_path / "serve_page.jpg", REPO_ROOT / "docs" / "serve_page.jpg")
    finally:
        server.stop()
