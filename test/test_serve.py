"""`depth-anything-ros serve` as users meet it: a real server process on loopback, the real gradio_client, requests.

The same image gives the same depth as `estimate`; every bad input is a clear error for that request while the next
is served; a full queue answers busy; memory stays flat; no route serves files outside the server's folder.
"""

import io
import json
import struct
import threading
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from ply_reader import read_ply

from depth_anything_ros.cli import main
from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint

pytest.importorskip("gradio_client", reason="the serve extra is not installed (requirements-serve.txt)")
import requests  # noqa: E402 - after the skip: .venv-jazzy has no serve extra
from gradio_client import Client, handle_file  # noqa: E402
from serve_helpers import INPUT_SIZE, MODEL, Server, scene_png  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """Synthetic vits weights in a .safetensors file (marked synthetic)."""
    return write_synthetic_checkpoint(tmp_path_factory.mktemp("serve") / "synthetic_vits.safetensors", "vits", seed=0)


@pytest.fixture(scope="module")
def server(checkpoint):
    srv = Server(checkpoint)
    yield srv
    folder = srv.folder()
    assert folder.is_dir()
    assert srv.stop() == 0, srv.output()
    assert not folder.exists(), "the server's temporary folder outlived it"


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scene") / "scene1.png"
    path.write_bytes(scene_png())
    return path


@pytest.fixture(scope="module")
def estimated(checkpoint, scene, tmp_path_factory) -> Path:
    """`estimate` of the scene with --fov 70: scene1_depth.tiff, scene1_depth_mm.png, scene1.ply, ..."""
    out = tmp_path_factory.mktemp("estimate")
    assert main(["estimate", str(scene), "--out", str(out), "--checkpoint", str(checkpoint), *MODEL,
                 "--fov", "70"]) == 0
    return out


def tiff(data_or_path) -> np.ndarray:
    data = Path(data_or_path).read_bytes() if isinstance(data_or_path, (str, Path)) else data_or_path
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


def millimetres(depth: np.ndarray) -> np.ndarray:
    """REP 118 16UC1 of metres, computed here: round half up, 0 invalid, clipped."""
    valid = np.isfinite(depth) & (depth > 0)
    return np.clip(np.floor(np.where(valid, depth, 0).astype(np.float64) * 1000 + 0.5), 0, 65535).astype(np.uint16)


def test_plain_route_gives_estimates_bytes(server, scene, estimated):
    reference = tiff(estimated / "scene1_depth.tiff")
    answer = server.depth(scene.read_bytes(), "scene1.png", fov=70)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/tiff", answer.text
    assert 'filename="scene1_depth.tiff"' in answer.headers["content-disposition"]
    depth = tiff(answer.content)
    assert depth.dtype == np.float32 and depth.shape == (48, 64)
    assert depth.tobytes() == reference.tobytes()
    npy = np.load(io.BytesIO(server.depth(scene.read_bytes(), fov=70, format="npy").content), allow_pickle=False)
    assert npy.tobytes() == reference.tobytes()
    png16 = cv2.imdecode(np.frombuffer(server.depth(scene.read_bytes(), fov=70, format="png16").content, np.uint8),
                         cv2.IMREAD_UNCHANGED)
    assert png16.dtype == np.uint16 and np.array_equal(png16, millimetres(reference))
    assert server.depth(scene.read_bytes(), fov=70, format="ply").content == (estimated / "scene1.ply").read_bytes()
    summary = server.depth(scene.read_bytes(), fov=70, format="json").json()
    valid = reference[np.isfinite(reference) & (reference > 0)]
    assert summary["depth_m"]["min"] == float(valid.min()) and summary["depth_m"]["max"] == float(valid.max())
    assert summary["intrinsics"]["source"] == "fov given"
    assert summary["intrinsics"]["fx"] == pytest.approx(32.0 / np.tan(np.radians(35.0)))
    assert summary["model"]["synthetic"] is True and len(summary["model"]["sha256"]) == 64
    assert summary["image"] == {"width": 64, "height": 48, "encoding": "bgr8"}


def test_official_client_snippet_runs_unchanged(server, scene, estimated, monkeypatch):
    """The snippet users run against the official demo, with our URL: [slider pair, grey PNG, 16-bit PNG]."""
    monkeypatch.chdir(scene.parent)
    client = Client(server.url)
    result = client.predict(image=handle_file("scene1.png"), api_name="/on_submit")
    pair, gray, raw = result
    original, coloured = (cv2.imread(p, cv2.IMREAD_UNCHANGED) for p in pair)
    assert original.shape[:2] == coloured.shape[:2] == (48, 64)
    assert np.array_equal(cv2.imread(pair[0])[..., ::-1], cv2.imdecode(np.frombuffer(scene.read_bytes(), np.uint8),
                                                                        cv2.IMREAD_COLOR)[..., ::-1])
    grey = cv2.imread(gray, cv2.IMREAD_UNCHANGED)
    assert grey.dtype == np.uint8 and grey.shape == (48, 64) and grey.max() == 255
    metric = cv2.imread(raw, cv2.IMREAD_UNCHANGED)
    assert metric.dtype == np.uint16 and np.array_equal(metric, millimetres(tiff(estimated / "scene1_depth.tiff")))


def test_estimate_api_gives_estimates_files(server, scene, estimated):
    client = Client(server.url)
    depth, png16, ply, preview, summary = client.predict(
        image=handle_file(str(scene)), fx=0, fy=0, cx=0, cy=0, fov=70, colormap="turbo", cloud_min_depth=0,
        cloud_max_depth=0, api_name="/estimate")
    assert Path(depth).name == "scene1_depth.tiff"
    assert tiff(depth).tobytes() == tiff(estimated / "scene1_depth.tiff").tobytes()
    assert Path(png16).read_bytes() == (estimated / "scene1_depth_mm.png").read_bytes()
    assert Path(ply).read_bytes() == (estimated / "scene1.ply").read_bytes()
    assert Path(preview).read_bytes() == (estimated / "scene1_preview.png").read_bytes()
    assert summary["intrinsics"]["source"] == "fov given" and summary["model"]["licence"].startswith("none")
    # intrinsics in pixels and a cloud range change the cloud, not the depth
    *_, ply_file, _, limited = client.predict(handle_file(str(scene)), 50.0, 50.0, 31.5, 23.5, 0, "viridis", 0.0,
                                              5.0, api_name="/estimate")
    _, vertices = read_ply(ply_file)
    assert limited["intrinsics"] == {"fx": 50.0, "fy": 50.0, "cx": 31.5, "cy": 23.5, "source": "fx fy cx cy given"}
    assert len(vertices) and vertices["z"].max() < 5.0
    with pytest.raises(Exception, match="invalid intrinsics"):
        client.predict(handle_file(str(scene)), -50.0, 50.0, 31.5, 23.5, 0, "turbo", 0, 0, api_name="/estimate")
    with pytest.raises(Exception, match="nope"):
        client.predict(handle_file(str(scene)), 0, 0, 0, 0, 0, "nope", 0, 0, api_name="/estimate")
    not_image = scene.parent / "notes.png"
    not_image.write_bytes(b"this is no image")
    with pytest.raises(Exception, match="not an image"):
        client.predict(image=handle_file(str(not_image)), api_name="/on_submit")
    assert client.predict(image=handle_file(str(scene)), api_name="/on_submit")[2]  # and the next is served


def png_header_only(width: int, height: int) -> bytes:
    """Return a PNG whose header claims width x height RGB pixels, with a few bytes of pixel data (a bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


def encoded(pixels: np.ndarray) -> bytes:
    return cv2.imencode(".png", pixels)[1].tobytes()


GOOD = scene_png()
GREY16 = encoded((np.arange(48 * 64).reshape(48, 64) * 20).astype(np.uint16))
GREY8 = encoded((np.arange(48 * 64).reshape(48, 64) % 256).astype(np.uint8))
RGBA = encoded(np.dstack([cv2.imdecode(np.frombuffer(GOOD, np.uint8), cv2.IMREAD_COLOR),
                          np.full((48, 64), 200, np.uint8)]))
COLOUR16 = encoded(cv2.imdecode(np.frombuffer(GOOD, np.uint8), cv2.IMREAD_COLOR).astype(np.uint16) * 257)
# input -> (query parameters, upload, expected status, words of the expected answer)
BAD = {
    "not an image": ({}, b"hello, this is a text file", 400, "not an image"),
    "empty file": ({}, b"", 400, "empty"),
    "truncated PNG": ({}, GOOD[:len(GOOD) // 2], 400, "corrupt"),
    "1x384 image": ({}, encoded(np.zeros((1, 384, 3), np.uint8)), 422, "too small"),
    "7000x7000, over --max-pixels": ({}, png_header_only(7000, 7000), 413, "7000x7000 = 49,000,000 pixels: over "
                                                                            "the server's limit of 40,000,000"),
    "bomb 100000x100000": ({}, png_header_only(100_000, 100_000), 413, "refused before decoding"),
    "fx not a number": ({"fx": "abc", "fy": "1", "cx": "1", "cy": "1"}, GOOD, 400, "fx: expected a number"),
    "negative fx": ({"fx": "-5", "fy": "5", "cx": "1", "cy": "1"}, GOOD, 400, "invalid intrinsics"),
    "fx alone": ({"fx": "50"}, GOOD, 400, "incomplete intrinsics: also give fy cx cy"),
    "fov 200": ({"fov": "200"}, GOOD, 400, "invalid fov 200"),
    "fov and fx": ({"fov": "60", "fx": "5", "fy": "5", "cx": "1", "cy": "1"}, GOOD, 400, "not both"),
    "negative cloud depth": ({"cloud_min_depth": "-1"}, GOOD, 400, "cloud depth limits must be >= 0"),
    "unknown colormap": ({"colormap": "nope"}, GOOD, 400, "unknown colormap 'nope'"),
    "unknown format": ({"format": "bmp"}, GOOD, 400, "unknown format 'bmp'"),
    "unknown parameter": ({"focal": "5"}, GOOD, 400, "unknown parameter focal"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_refused_and_the_next_request_served(server, case):
    params, data, status, words = BAD[case]
    answer = server.depth(data, **params)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"], answer.text
    assert server.depth(GOOD).status_code == 200


def test_no_image_field(server):
    answer = requests.post(server.url + "v1/depth", files={"picture": ("a.png", GOOD)}, timeout=60)
    assert answer.status_code == 400 and "multipart field 'image'" in answer.json()["error"]


@pytest.mark.parametrize("data, encoding", [(GREY16, "mono16"), (GREY8, "mono8"), (RGBA, "bgra8"),
                                            (COLOUR16, "bgr8")])
def test_other_pixel_formats_are_served(server, data, encoding):
    summary = server.depth(data, format="json").json()
    assert summary["image"] == {"width": 64, "height": 48, "encoding": encoding}
    assert summary["depth_m"]["valid_fraction"] > 0.5


def test_no_route_serves_files_outside_the_servers_folder(server):
    attempts = ["gradio_api/file=/etc/passwd", "gradio_api/file=../../../../../etc/passwd",
                f"gradio_api/file={server.folder()}/../../../etc/passwd", "gradio_api/file=%2e%2e/%2e%2e/etc/passwd",
                "file=/etc/passwd", "v1/../../etc/passwd", "static/../../../../etc/passwd",
                f"gradio_api/file={Path(__file__).resolve()}"]
    for attempt in attempts:
        answer = requests.get(server.url + attempt, timeout=30)
        assert "root:" not in answer.text and "import" not in answer.text[:200], attempt
        assert answer.status_code in (400, 403, 404, 405), (attempt, answer.status_code)


def test_health_names_the_model(server):
    health = requests.get(server.url + "v1/health", timeout=30).json()
    assert health["status"] == "ok" and health["model"]["encoder"] == "vits"
    assert health["model"]["input_size"] == INPUT_SIZE and health["queue"]["capacity"] == 8


def test_memory_stays_flat_over_200_requests(server):
    for _ in range(20):
        assert server.depth(GOOD).status_code == 200
    before = server.rss_kib()
    for _ in range(180):
        assert server.depth(GOOD).status_code == 200
    after = server.rss_kib()
    print(f"server RSS after 20 requests {before / 1024:.1f} MiB, after 200 {after / 1024:.1f} MiB")
    assert after - before < 40 * 1024, f"RSS grew from {before} to {after} KiB over 180 requests"


def test_eight_clients_a_bounded_queue_answers_busy(checkpoint):
    """8 clients at once against a queue of 2: every request answered, 200 or 503 busy, none lost."""
    srv = Server(checkpoint, "--queue-size", "2")
    answers, start = [], threading.Barrier(8)

    def client():
        start.wait()
        for _ in range(3):
            answer = srv.depth(GOOD, format="json")
            answers.append((answer.status_code, answer.json()))

    try:
        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        statuses = [status for status, _ in answers]
        assert len(answers) == 24 and set(statuses) <= {200, 503}, statuses
        assert 200 in statuses and 503 in statuses, statuses
        assert all("busy" in body["error"] for status, body in answers if status == 503)
        assert requests.get(srv.url + "v1/health", timeout=30).json()["queue"]["admitted"] == 0
    finally:
        srv.stop()


def test_eight_clients_within_the_queue_are_all_served(server):
    answers, start = [], threading.Barrier(8)

    def client():
        start.wait()
        answers.extend(server.depth(GOOD).status_code for _ in range(2))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert answers == [200] * 16


def test_beyond_loopback_only_with_host_and_said_so(checkpoint, server):
    assert "beyond this machine" not in server.output()
    srv = Server(checkpoint, host="0.0.0.0")
    try:
        said = " ".join(line.strip("! ") for line in srv.output().splitlines())  # the banner's text, unwrapped
        assert "serving on 0.0.0.0, beyond this machine" in said
        assert "add --auth USER:PASS to require a login" in said
    finally:
        srv.stop()


def test_auth_guards_page_apis_and_routes(checkpoint, scene):
    srv = Server(checkpoint, "--auth", "robot:s3cret", auth=("robot", "s3cret"))
    try:
        assert requests.get(srv.url + "v1/health", timeout=30).status_code == 401
        assert requests.get(srv.url + "v1/health", auth=("robot", "wrong"), timeout=30).status_code == 401
        assert requests.post(srv.url + "v1/depth", files={"image": ("a.png", GOOD)}, timeout=60).status_code == 401
        assert srv.depth(GOOD).status_code == 200
        with pytest.raises(Exception):  # noqa: B017 - gradio_client's own error for a login it lacks
            Client(srv.url).predict(image=handle_file(str(scene)), api_name="/on_submit")
        result = Client(srv.url, auth=("robot", "s3cret")).predict(image=handle_file(str(scene)),
                                                                   api_name="/on_submit")
        assert cv2.imread(result[2], cv2.IMREAD_UNCHANGED).dtype == np.uint16
    finally:
        srv.stop()


def test_json_summary_is_json(server):
    summary = json.loads(server.depth(GOOD, format="json").content)
    assert set(summary) == {"model", "image", "intrinsics", "depth_m", "cloud_points", "timings_ms"}
