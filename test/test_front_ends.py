"""One frame, three front-ends, the same bytes: the node (real graph), `bag process` and `estimate`.

The same 64x48 rgb8 frame and camera_info go in as a message published to the node (its own process, Fast DDS),
as a one-frame bag for `bag process` and as a PNG file for `estimate` (which decodes it as bgr8, the model sees the
same RGB); with the same options every output must be identical: depth, cloud, colourised depth, the depth image's
camera_info. A relative checkpoint is refused by every tool with one line, and a damaged file costs only itself.
Every front-end runs the frame in a batch of one: a batched forward pass on the CPU differs in the last bits
(about 4e-5 m for two frames), so identical bytes are promised for the same batch size.
"""

import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from bag_helpers import by_topic, read_bag, write_bag
from graph_harness import CameraIO, GraphClient, camera_info_msg, cloud_arrays, image_msg, serving_node, set_params
from ply_reader import read_ply

from depth_anything_ros.bag import messages
from depth_anything_ros.bag.sample import SampleConfig, write_sample_bag
from depth_anything_ros.cli import main
from depth_anything_ros.frame import image_codec
from depth_anything_ros.frame.camera import CameraInfo
from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint

REPO_ROOT = Path(__file__).resolve().parent.parent
INPUT_SIZE = 70
W, H = 64, 48
MAX_DEPTH = 20.0
NS = "/front_ends"
NODE = f"{NS}/depth_anything"
STAMP_NS = 1_700_000_000_123_456_789
K = [52.0, 0.0, 31.5, 0.0, 50.0, 23.5, 0.0, 0.0, 1.0]
P = [51.0, 0.0, 31.0, 0.0, 0.0, 49.5, 23.0, 0.0, 0.0, 0.0, 1.0, 0.0]  # rectified projection, differs from K
P_OF_K = [52.0, 0.0, 31.5, 0.0, 0.0, 50.0, 23.5, 0.0, 0.0, 0.0, 1.0, 0.0]  # [K | 0]
D0 = [0.0] * 5
R = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
# case -> (P of the input camera_info, depth scale); one camera namespace of the node per case
CASES = {"plain": (P, 1.0), "p_zero": ([0.0] * 12, 1.0), "scale2": (P, 2.0)}
MODEL = ["--checkpoint", None, "--encoder", "vits", "--model-max-depth", "20", "--input-size", str(INPUT_SIZE),
         "--device", "cpu"]


def frame_pixels() -> np.ndarray:
    """Return the one test frame: (H, W, 3) uint8 RGB, a gradient with deterministic noise."""
    rng = np.random.default_rng(7)
    v, u = np.mgrid[0:H, 0:W]
    base = np.stack([u * 255 / (W - 1), v * 255 / (H - 1), (u + v) * 127 / (H + W)], -1)
    return np.clip(base + rng.normal(0, 30, (H, W, 3)), 0, 255).astype(np.uint8)


def model_args(checkpoint) -> list[str]:
    return [str(checkpoint) if a is None else a for a in MODEL]


def run_cli(cli, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([*cli, *map(str, args)], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def write_frame_bag(path: Path, pixels: np.ndarray, p) -> Path:
    """Write a one-frame bag: /cam/camera_info then /cam/image, both with the same header."""
    hdr = messages.header(STAMP_NS, "cam_optical_frame")
    info = CameraInfo(width=W, height=H, distortion_model="plumb_bob", d=tuple(D0), k=tuple(K), r=tuple(R),
                      p=tuple(p))
    return write_bag(path, [("/cam/camera_info", messages.CAMERA_INFO, STAMP_NS, messages.camera_info(hdr, info)),
                            ("/cam/image", messages.IMAGE, STAMP_NS,
                             messages.image(hdr, image_codec.rgb_image_fields(pixels)))])


def write_png(path: Path, pixels: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), pixels[..., ::-1])
    assert np.array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[..., ::-1], pixels)  # lossless
    return path


def set_node_params(client, **values) -> None:
    results = set_params(client, NODE, **values)
    assert all(r.successful for r in results), [r.reason for r in results]


# ---------------------------------------------------------------- the three front-ends on one frame


@pytest.fixture(scope="module")
def client(ros_env):
    graph = GraphClient("front_ends_test")
    yield graph
    graph.close()


@pytest.fixture(scope="module")
def node(ros_env, synthetic_vits_checkpoint, tmp_path_factory):
    yield from serving_node(ros_env, NS, synthetic_vits_checkpoint, list(CASES),
                            tmp_path_factory.mktemp("node") / "node.log", max_depth=MAX_DEPTH, input_size=INPUT_SIZE)


def node_outputs(client, case: str, pixels: np.ndarray, p, scale: float) -> tuple[dict, dict]:
    """(organised outputs, unorganised outputs) of the node for the frame, with depth.scale = scale."""
    cam = CameraIO(client, f"{NS}/{case}")

    def make(stamp):
        image = image_msg(stamp, "cam_optical_frame", pixels)
        return image, camera_info_msg(image.header, W, H, K, p, D0)

    set_node_params(client, depth__scale=scale, cloud__organized=True)
    _, _, organized = cam.roundtrip(make, ("depth", "info", "points", "colored"),
                                    predicate=lambda found: found["points"].height == H)
    set_node_params(client, cloud__organized=False)
    _, _, flat = cam.roundtrip(make, ("depth", "points"), predicate=lambda found: found["points"].height == 1)
    return organized, flat


@pytest.fixture(scope="module", params=sorted(CASES))
def fronts(request, node, client, synthetic_vits_checkpoint, tmp_path_factory):
    """Every front-end's outputs of the same frame with the same options, for one case of CASES."""
    case = request.param
    p, scale = CASES[case]
    pixels = frame_pixels()
    tmp = tmp_path_factory.mktemp(case)
    organized, flat = node_outputs(client, case, pixels, p, scale)

    write_frame_bag(tmp / "in", pixels, p)
    assert main(["bag", "process", str(tmp / "in"), str(tmp / "out"), *model_args(synthetic_vits_checkpoint),
                 "--depth-scale", str(scale), "--no-progress"]) == 0
    bag = {topic: records for topic, records in by_topic(read_bag(tmp / "out")).items()}
    bag = {role: bag[topic][0].msg for role, topic in (("depth", "/cam/depth"), ("info", "/cam/depth/camera_info"),
                                                        ("points", "/cam/points"), ("colored", "/cam/depth/colored"))
           if len(bag[topic]) == 1}

    fx, fy, cx, cy = (p[0], p[5], p[2], p[6]) if p[0] else (K[0], K[4], K[2], K[5])  # P, else K (image_geometry)
    png = write_png(tmp / "frame.png", pixels)
    assert main(["estimate", str(png), *model_args(synthetic_vits_checkpoint), "--fx", str(fx), "--fy", str(fy),
                 "--cx", str(cx), "--cy", str(cy), "--depth-scale", str(scale), "--format", "npy",
                 "--out", str(tmp / "est")]) == 0
    estimate = SimpleNamespace(depth=np.load(tmp / "est" / "frame_depth.npy"),
                               preview=cv2.imread(str(tmp / "est" / "frame_preview.png"), cv2.IMREAD_COLOR),
                               ply=read_ply(tmp / "est" / "frame.ply")[1])
    return SimpleNamespace(case=case, p=p, scale=scale, pixels=pixels, node=organized, node_flat=flat, bag=bag,
                           estimate=estimate)


@pytest.mark.ros
def test_depth_is_the_same_bytes_from_node_bag_and_estimate(fronts):
    node, bag = fronts.node["depth"], fronts.bag["depth"]
    for msg in (node, bag):
        assert (msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian) == ("32FC1", H, W, 4 * W, 0)
    node_bytes = bytes(node.data)
    assert bag.data.tobytes() == node_bytes
    assert fronts.estimate.depth.dtype == np.dtype("<f4") and fronts.estimate.depth.shape == (H, W)
    assert fronts.estimate.depth.tobytes() == node_bytes
    depth = np.frombuffer(node_bytes, "<f4")
    assert np.isfinite(depth).all() and (depth > 0).all() and (depth < MAX_DEPTH * fronts.scale).all()
    assert depth.std() > 0  # a real model output, not a constant


@pytest.mark.ros
def test_organised_cloud_is_the_same_bytes_from_node_and_bag(fronts):
    node, bag = fronts.node["points"], fronts.bag["points"]
    layout = [(f.name, f.offset, f.datatype, f.count) for f in node.fields]
    assert layout == [(f.name, f.offset, f.datatype, f.count) for f in bag.fields]
    assert layout == [("x", 0, 7, 1), ("y", 4, 7, 1), ("z", 8, 7, 1), ("rgb", 12, 7, 1)]
    assert (node.height, node.width, node.point_step, node.row_step, node.is_dense) == (H, W, 16, 16 * W, False)
    assert (bag.height, bag.width, bag.point_step, bag.row_step, bool(bag.is_dense)) == (H, W, 16, 16 * W, False)
    assert bag.data.tobytes() == bytes(node.data)
    xyz, rgb = cloud_arrays(node)
    depth = np.frombuffer(bytes(fronts.node["depth"].data), "<f4").reshape(H, W)
    np.testing.assert_array_equal(xyz[..., 2], depth)
    np.testing.assert_array_equal(rgb, fronts.pixels)


@pytest.mark.ros
def test_estimate_ply_is_the_nodes_unorganised_cloud(fronts):
    cloud = fronts.node_flat["points"]
    assert (cloud.height, cloud.is_dense) == (1, True)
    xyz, rgb = cloud_arrays(cloud)
    ply = fronts.estimate.ply
    assert ply.size == cloud.width == H * W  # every depth of the model is valid: no point dropped
    np.testing.assert_array_equal(np.stack([ply["x"], ply["y"], ply["z"]], -1), xyz.reshape(-1, 3))
    np.testing.assert_array_equal(np.stack([ply["red"], ply["green"], ply["blue"]], -1), rgb.reshape(-1, 3))
    np.testing.assert_array_equal(rgb.reshape(-1, 3), fronts.pixels.reshape(-1, 3))


@pytest.mark.ros
def test_colourised_depth_is_the_same_from_node_bag_and_the_estimate_preview(fronts):
    node, bag = fronts.node["colored"], fronts.bag["colored"]
    for msg in (node, bag):
        assert (msg.encoding, msg.height, msg.width, msg.step) == ("rgb8", H, W, 3 * W)
    assert bag.data.tobytes() == bytes(node.data)
    preview = fronts.estimate.preview[:H]  # the footer (model, colour convention) below
    assert fronts.estimate.preview.shape[0] > H and preview.shape[1] > 2 * W
    np.testing.assert_array_equal(preview[:, :W, ::-1], fronts.pixels)  # the image panel
    colour_panel = np.ascontiguousarray(preview[:, W:2 * W, ::-1])  # BGR on disk
    assert colour_panel.tobytes() == bytes(node.data)


@pytest.mark.ros
def test_depth_camera_info_is_the_same_from_node_and_bag(fronts):
    node, bag = fronts.node["info"], fronts.bag["info"]

    def fields(msg):
        roi = msg.roi
        return {"k": list(msg.k), "p": list(msg.p), "r": list(msg.r), "d": list(msg.d),
                "distortion_model": msg.distortion_model, "binning": (msg.binning_x, msg.binning_y),
                "roi": (roi.x_offset, roi.y_offset, roi.height, roi.width, bool(roi.do_rectify)),
                "size": (msg.width, msg.height)}

    assert fields(node) == fields(bag)
    expected_p = P_OF_K if fronts.case == "p_zero" else P  # an all-zero P is published as [K | 0]
    assert fields(node) == {"k": K, "p": expected_p, "r": R, "d": D0, "distortion_model": "plumb_bob",
                            "binning": (0, 0), "roi": (0, 0, 0, 0, False), "size": (W, H)}


@pytest.mark.ros
def test_the_cloud_uses_p_before_k(fronts):
    """With P != K the rectified projection P back-projects (image_geometry); P zero: K."""
    xyz, _ = cloud_arrays(fronts.node["points"])
    depth = np.frombuffer(bytes(fronts.node["depth"].data), "<f4").reshape(H, W).astype(np.float64)
    fx, fy, cx, cy = (51.0, 49.5, 31.0, 23.0) if fronts.case != "p_zero" else (52.0, 50.0, 31.5, 23.5)
    v, u = np.mgrid[0:H, 0:W]
    np.testing.assert_allclose(xyz[..., 0], (u - cx) * depth / fx, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(xyz[..., 1], (v - cy) * depth / fy, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- relative checkpoints and damaged files


@pytest.fixture(scope="module")
def relative_checkpoint(tmp_path_factory) -> Path:
    """Write a synthetic state_dict under the official relative name: max_depth auto makes it a relative model."""
    return write_synthetic_checkpoint(tmp_path_factory.mktemp("relative") / "depth_anything_v2_vits.pth", "vits",
                                      seed=0)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> SimpleNamespace:
    tmp = tmp_path_factory.mktemp("inputs")
    pixels = frame_pixels()
    sample = tmp / "sample"
    write_sample_bag(sample, SampleConfig(width=W, height=H, frames=1))
    return SimpleNamespace(png=write_png(tmp / "frame.png", pixels), bag=write_frame_bag(tmp / "bag", pixels, P),
                           sample=sample, tmp=tmp)


def assert_refused_as_relative(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("depth-anything-ros: error: ")
    assert "relative" in lines[0] and "hypersim-vits" in lines[0] and "vkitti-vits" in lines[0]


def test_bag_process_refuses_a_relative_checkpoint(cli, relative_checkpoint, inputs, tmp_path):
    result = run_cli(cli, "bag", "process", inputs.bag, tmp_path / "out", "--checkpoint", relative_checkpoint,
                     "--input-size", INPUT_SIZE, "--device", "cpu", "--no-progress")
    assert_refused_as_relative(result)
    assert not (tmp_path / "out").exists()


def test_bag_evaluate_refuses_a_relative_checkpoint(cli, relative_checkpoint, inputs, tmp_path):
    result = run_cli(cli, "bag", "evaluate", inputs.sample, "--gt-topic", "/camera/depth_gt", "--checkpoint",
                     relative_checkpoint, "--input-size", INPUT_SIZE, "--device", "cpu", "--no-progress",
                     "--report", tmp_path / "report")
    assert_refused_as_relative(result)
    assert not (tmp_path / "report").exists()


def test_estimate_refuses_a_relative_checkpoint(cli, relative_checkpoint, inputs, tmp_path):
    result = run_cli(cli, "estimate", inputs.png, "--checkpoint", relative_checkpoint, "--input-size", INPUT_SIZE,
                     "--device", "cpu", "--fx", 51, "--fy", 49.5, "--cx", 31, "--cy", 23, "--out", tmp_path / "est")
    assert_refused_as_relative(result)
    assert not (tmp_path / "est").exists()


@pytest.mark.parametrize("damage", ["truncated png", "not an image"])
def test_estimate_writes_the_good_file_and_reports_the_damaged_one(cli, synthetic_vits_checkpoint, inputs, tmp_path,
                                                                   damage):
    good = write_png(tmp_path / "good.png", frame_pixels())
    bad = tmp_path / "bad.png"
    if damage == "truncated png":
        bad.write_bytes(good.read_bytes()[:60])  # a PNG signature and header, then nothing
    else:
        bad.write_bytes(np.random.default_rng(3).integers(0, 256, 500, dtype=np.uint8).tobytes())
    out = tmp_path / "est"
    result = run_cli(cli, "estimate", bad, good, *model_args(synthetic_vits_checkpoint), "--fx", 51, "--fy", 49.5,
                     "--cx", 31, "--cy", 23, "--out", out)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len([line for line in lines if "bad.png" in line]) == 1, result.stderr
    assert [line for line in lines if "bad.png" not in line] == [
        "depth-anything-ros: error: 1 of 2 images could not be processed (see above)"]
    assert sorted(p.name for p in out.iterdir()) == ["good.ply", "good_depth.tiff", "good_depth_mm.png",
                                                     "good_preview.png"]
    depth = cv2.imread(str(out / "good_depth.tiff"), cv2.IMREAD_UNCHANGED)
    assert depth.shape == (H, W) and np.isfinite(depth).all()
