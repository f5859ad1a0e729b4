"""Bad invocations of every subcommand: exit 2, one line naming the flag, never a traceback; estimate output names."""

import os
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from bag_helpers import SMALL
from dataset_writers import write_folder, write_nyu_h5, write_tum

from depth_anything_ros.bag.sample import SampleConfig, write_sample_bag
from depth_anything_ros.cli import main
from depth_anything_ros.cli_options import CommandError
from depth_anything_ros.estimate import output_names
from depth_anything_ros.models.variants import CHECKPOINTS

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON_WORDING = ("max_depth=", "encoder='", "max_depth ", "Traceback")


@pytest.fixture(scope="module")
def paths(tmp_path_factory, synthetic_vits_checkpoint) -> dict[str, str]:
    """Return the inputs of the bad invocations: a good bag, things that are not bags, an image, checkpoints."""
    root = tmp_path_factory.mktemp("cli_errors")
    write_sample_bag(root / "bag", SampleConfig(**{**SMALL, "frames": 2}))
    (root / "notbag").mkdir()
    (root / "notbag" / "readme.txt").write_text("not a bag")
    (root / "file.txt").write_text("not a bag either")
    shutil.copytree(root / "bag", root / "corrupt")
    (root / "corrupt" / "metadata.yaml").write_text("rosbag2_bagfile_information: [\n")
    assert cv2.imwrite(str(root / "img.png"), np.full((48, 64, 3), 128, np.uint8))
    renamed = root / "my_model.pth"  # an unofficial name: the head scale is not known
    shutil.copy(synthetic_vits_checkpoint, renamed)
    mcap = next((root / "bag").glob("*.mcap"))
    return {"root": str(root), "bag": str(root / "bag"), "notbag": str(root / "notbag"), "file": str(root / "file.txt"),
            "corrupt": str(root / "corrupt"), "mcap": str(mcap), "missing": str(root / "missing"),
            "img": str(root / "img.png"), "ckpt": str(synthetic_vits_checkpoint), "renamed": str(renamed),
            "out": str(root / "out_never_written"), "demo_out": str(root / "demo")}


def _argv(template: str, paths: dict[str, str]) -> list[str]:
    return [word.format(**paths) for word in template.split()]


def _check_one_line(code: int, err: str, expected: str, paths: dict[str, str]) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("depth-anything-ros") and ": error: " in lines[0], lines[0]
    assert expected in lines[0], lines[0]
    for python in PYTHON_WORDING:
        assert python not in lines[0], lines[0]
    assert not Path(paths["out"]).exists()
    return lines[0]


# Bag paths and other file-system mistakes, run as the console script: a traceback would show here.
SUBPROCESS_CASES = [
    ("bag process {notbag} {out}", "is not a bag: the directory has no metadata.yaml"),
    ("bag process {file} {out}", "is a file, not a bag"),
    ("bag process {mcap} {out}", "pass its bag directory"),
    ("bag process {missing} {out}", "does not exist"),
    ("bag process {corrupt} {out}", "cannot read bag"),
    ("bag evaluate {notbag} --gt-topic /camera/depth_gt", "is not a bag"),  # before the checkpoint is looked for
    ("bag evaluate {missing} --gt-topic /camera/depth_gt", "missing does not exist"),
    ("bag evaluate {file} --gt-topic /x --pred-topic /y", "is a file, not a bag"),
    ("bag evaluate {corrupt} --gt-topic /x --pred-topic /y", "cannot read bag"),
    ("bag play {notbag}", "is not a bag"),
    ("bag play {file}", "is a file, not a bag"),
    ("bag play {mcap}", "pass its bag directory"),
    ("bag record {bag} /camera/depth", "exists already"),
    ("bag sample {bag}", "exists already"),
    ("estimate {notbag} --out {out}", "it is a directory, not an image file"),
    ("estimate {img} --out {file}", "--out"),
    ("estimate --video {file} --out {out}", "cannot read video"),  # a text file: OpenCV's reader opens nothing
    ("estimate --video {missing} --out {out}", "cannot read video"),
    ("demo --checkpoint hypersim-vitz --out {demo_out}", "did you mean 'hypersim-vits'"),
    ("train {notbag} --gt-topic /camera/depth_gt --out {out}", "is not a bag"),
]


@pytest.mark.parametrize("template, expected", SUBPROCESS_CASES, ids=[c[0] for c in SUBPROCESS_CASES])
def test_bad_paths_exit_2_with_one_line(template, expected, paths, cli, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([*cli, *_argv(template, paths)], env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    _check_one_line(result.returncode, result.stderr, expected, paths)


MODEL = "--checkpoint {ckpt} --model-max-depth 20 --input-size 70 --device cpu"
# Everything else in-process (the same main() the console script runs).
IN_PROCESS_CASES = [
    # usage errors: argparse's, on one line, with a "did you mean" for renamed or mistyped flags
    ("", "the following arguments are required: COMMAND"),
    ("bag", "the following arguments are required: BAG_COMMAND"),
    ("bag convert {bag}", "invalid choice: 'convert'"),
    ("export --checkpoint {ckpt} --out {out}", "must end in .onnx"),
    ("estimate {img} --out {out} --checkpoint model.onnx",
     "is an exported ONNX file: add --backend onnxruntime or --backend openvino"),
    ("estimate {img} --out {out} --checkpoint {ckpt} --backend onnxruntime", "needs an exported .onnx file"),
    ("estimate {img} --out {out} --checkpoint {ckpt} --backend openvino",
     "the openvino backend needs an exported .onnx file"),
    ("estimate {img} --out {out} --backend openvino --openvino-precision f64",
     "argument --openvino-precision: invalid choice: 'f64'"),
    ("estimate {img} --out {out} --model-max-depth none", "argument --model-max-depth: expected a number above 0"),
    ("estimate {img} --out {out} --model-max-depth -5", "argument --model-max-depth"),
    ("estimate {img} --out {out} --model-max-depth nan", "argument --model-max-depth"),
    ("estimate {img} --out {out} --max-depth 20", "--max-depth: did you mean --model-max-depth or --cloud-max-depth?"),
    ("estimate {img} --out {out} --max-depth-cloud 5", "did you mean --cloud-max-depth"),
    ("estimate {img} --out {out} --stride 0", "argument --stride: expected an integer at least 1 and at most 64"),
    ("estimate {img} --out {out} --depth-scale 0", "argument --depth-scale"),
    ("estimate {img} --out {out} --batch 0", "argument --batch"),
    ("estimate {img} --out {out} --input-size abc", "argument --input-size: expected an integer"),
    ("estimate {img} --out {out} --encoder vitz", "argument --encoder: invalid choice: 'vitz'"),
    ("estimate {img}", "the following arguments are required: --out"),
    ("estimate --out {out}", "give image files or --video FILE"),
    ("estimate {img} --video {img} --out {out}", "give image files or --video FILE (one of the two)"),
    ("estimate {img} --out {out} --max-frames 3", "--max-frames applies to --video only"),
    ("estimate --video {img} --out {out} --max-frames -1", "argument --max-frames: expected an integer at least 0"),
    ("bag process {bag}", "the following arguments are required: OUT"),
    ("bag process {bag} {out} --fov 0", "argument --fov"),
    ("bag process {bag} {out} --min-depth 1", "--min-depth: did you mean --cloud-min-depth?"),
    ("bag evaluate {bag} --gt-topic /x --min-depth 1", "--min-depth: did you mean --gt-min-depth?"),
    ("bag evaluate {bag}", "the following arguments are required: --gt-topic"),
    ("bag evaluate {bag} --gt-topic /x --max-depth 10", "did you mean --model-max-depth or --gt-max-depth"),
    ("bag evaluate {bag} --gt-topic /x --stamp-tolerance -1", "argument --stamp-tolerance"),
    ("bag evaluate {bag} --gt-topic /x --align scal", "argument --align: invalid choice"),
    ("bag sample {out} --width 0", "argument --width"),
    ("bag sample {out} --frames 0", "argument --frames"),
    ("bag sample {out} --rate 0", "argument --rate"),
    ("bag sample {out} --fov 180", "argument --fov"),
    ("bag record {out}", "the following arguments are required: TOPIC"),
    ("demo --out {out} --model-max-depth 0", "argument --model-max-depth"),
    ("demo --out {out} --frames x", "argument --frames"),
    # checkpoints: flags, not Python arguments; typos get the nearest names and the full list
    ("estimate {img} --out {out} --checkpoint hypersim-vitz", "did you mean 'hypersim-vits'"),
    ("estimate {img} --out {out} --checkpoint relative-vits", "relative model"),
    ("estimate {img} --out {out} --checkpoint {renamed}", "pass --model-max-depth 20 for Hypersim"),
    ("estimate {img} --out {out} --checkpoint {ckpt} --encoder vitb --model-max-depth 20", "pass --encoder vits"),
    ("estimate {img} --out {out} --checkpoint {missing}.pth", "checkpoint file not found"),
    ("estimate {img} --out {out} " + MODEL.replace("cpu", "gpu"), "invalid --device"),
    # option values checked before any work
    ("estimate {img} {img} --out {out} " + MODEL, "is given more than once"),
    ("estimate {img} --out {out} --fov 200 " + MODEL, "invalid --fov 200"),
    ("estimate {img} --out {out} --fx 50 " + MODEL, "incomplete intrinsics: also give --fy --cx --cy"),
    ("estimate {img} --out {out} --cloud-min-depth 5 --cloud-max-depth 1 " + MODEL,
     "--cloud-min-depth 5 must be below --cloud-max-depth 1"),
    ("estimate {img} --out {out} --colormap trubo " + MODEL, "did you mean 'turbo'?"),
    ("estimate {img} --out {out} --input-size 100 " + MODEL.replace("70", "100"), "multiple of 14"),
    ("bag process {bag} {out} --topics depth,nope " + MODEL, "unknown output(s) nope in --topics"),
    ("bag process {bag} {out} --output-namespace 1cam " + MODEL, "invalid --output-namespace '1cam'"),
    ("bag process {bag} {bag} " + MODEL, "exists already"),
    ("bag process {bag} {out} --image-topic /nope " + MODEL, "(choose one with --image-topic)"),
    ("bag process {bag} {out} --camera-info-topic /camera/image " + MODEL, "(--camera-info-topic) has type"),
    ("bag evaluate {bag} --gt-topic /x --gt-min-depth 5 --gt-max-depth 1", "--gt-min-depth 5 must be below"),
    ("bag evaluate {bag} --gt-topic /nope --pred-topic /camera/depth_gt", "(choose one with --gt-topic)"),
    ("bag evaluate {bag} --gt-topic /camera/depth_gt --pred-topic /camera/camera_info",
     "(--pred-topic) has type sensor_msgs/msg/CameraInfo"),
    ("bag evaluate {bag} --gt-topic /camera/depth_gt --report {file} --pred-topic /camera/depth_gt", "--report"),
    ("bag play {bag} --topics /nope", "topics not in bag"),
    ("bag play {bag} --rate 0", "--rate"),
    ("bag sample {out} --namespace a.b", "invalid --namespace"),
    ("train {bag} --out {out}", "train needs --gt-topic"),
    ("train {bag} --gt-topic /camera/depth_gt", "train needs --out"),
    ("train {bag} --gt-topic /camera/depth_gt --out {out} --lr 0", "argument --lr: expected a number above 0"),
    ("train {bag} --gt-topic /camera/depth_gt --out {out} --max-depth 10",
     "did you mean --model-max-depth or --gt-max-depth"),
    ("train {bag} --gt-topic /camera/depth_gt --out {out} --checkpoint relative-vits", "relative model"),
    ("train {bag} --gt-topic /camera/depth_gt --out {out} --gt-min-depth 5 --gt-max-depth 1",
     "--gt-min-depth 5 must be below --gt-max-depth 1"),
    ("train --resume {missing}", "no run.json there"),
    ("train {bag} --gt-topic /camera/depth_gt --out {out} --steps 5 --epochs 2", "give --steps 5 or --epochs 2, not"),
    ("train {bag} --resume {bag}", "give no BAG, --gt-topic or --out with it"),
    ("serve --port 0", "argument --port: expected an integer at least 1 and at most 65535"),
    ("serve --queue-size 0", "argument --queue-size"),
    ("serve --auth robot", "--auth must be USER:PASS"),
    ("serve --colormap trubo " + MODEL, "did you mean 'turbo'?"),
    ("serve --checkpoint relative-vits", "relative model"),
    ("serve --checkpoint {missing}.pth", "checkpoint file not found"),
]


@pytest.mark.parametrize("template, expected", IN_PROCESS_CASES, ids=[c[0] or "(nothing)" for c in IN_PROCESS_CASES])
def test_bad_invocations_exit_2_with_one_line(template, expected, paths, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    try:
        code = main(_argv(template, paths))
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    line = _check_one_line(code, capsys.readouterr().err, expected, paths)
    if "did you mean 'hypersim-vits'" in expected:
        assert all(name in line for name in CHECKPOINTS)  # the full list, the default included


@pytest.fixture(scope="module")
def datasets(paths) -> dict[str, str]:
    """Return `paths` plus bad RGB-D datasets: empty, mixed, mismatched sizes, unknown encodings, corrupt .h5, TUM."""
    root = Path(paths["root"]) / "datasets"
    (root / "empty").mkdir(parents=True)
    write_folder(root / "mixed")
    write_nyu_h5(root / "mixed")
    write_folder(root / "good")
    write_folder(root / "sizes")
    assert cv2.imwrite(str(root / "sizes" / "depth" / "frame_000.png"), np.ones((10, 10), np.uint16))
    write_folder(root / "eight_bit")
    assert cv2.imwrite(str(root / "eight_bit" / "depth" / "frame_000.png"), np.ones((48, 64), np.uint8))
    write_folder(root / "jpeg_depth")
    assert cv2.imwrite(str(root / "jpeg_depth" / "depth" / "frame_003.jpg"), np.ones((48, 64), np.uint8))
    write_nyu_h5(root / "corrupt_h5")
    (root / "corrupt_h5" / "train" / "kitchen_0001" / "00001.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    write_tum(root / "tum_far")
    (root / "tum_far" / "depth.txt").write_text("# timestamp filename\n1311867190.0 depth/1311867170.450124.png\n")
    return {**paths, **{name: str(root / name) for name in ("empty", "mixed", "good", "sizes", "eight_bit",
                                                            "jpeg_depth", "corrupt_h5", "tum_far")}}


DATASET_CASES = [
    ("evaluate {empty} --out {out}", "is an empty folder"),
    ("evaluate {missing} --out {out}", "missing does not exist"),
    ("evaluate {mixed} --out {out}", "mixes dataset layouts (folder, nyu); pass --format"),
    ("evaluate {good} --out {out} --format kitti", "does not look like a kitti dataset"),
    ("evaluate {good} --out {out} --format vkitti", "argument --format: invalid choice: 'vkitti'"),
    ("evaluate {good} --out {out} --split test", "no sample in split 'test'"),
    ("evaluate {good} --out {out} --fx 5", "give all of --fx --fy --cx --cy"),
    ("evaluate {good} --out {file}", "--out"),
    ("evaluate {jpeg_depth} --out {out}", "unknown depth encoding '.jpg'"),
    ("evaluate {tum_far} --out {out}", "no rgb.txt / depth.txt timestamps within 0.02 s"),
    ("evaluate {good} --out {out} --gt-min-depth 5 --gt-max-depth 1", "--gt-min-depth 5 must be below"),
    ("evaluate {sizes} --out {out} " + MODEL, "frame_000: RGB 64x48 and depth 10x10 differ in size"),
    ("evaluate {eight_bit} --out {out} " + MODEL, "unknown depth encoding (uint8, 1 channel(s))"),
    ("evaluate {corrupt_h5} --out {out} " + MODEL, "as HDF5"),
]


@pytest.mark.parametrize("template, expected", DATASET_CASES, ids=[c[0] for c in DATASET_CASES])
def test_bad_datasets_exit_2_with_one_line_and_leave_nothing(template, expected, datasets, capsys, monkeypatch,
                                                             tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    try:
        code = main(_argv(template, datasets))
    except SystemExit as exc:
        code = exc.code
    _check_one_line(code, capsys.readouterr().err, expected, datasets)
    assert not [p for p in Path(datasets["root"]).iterdir() if ".partial-" in p.name]  # no half-written output


def test_every_subcommand_is_covered():
    from depth_anything_ros.cli import build_parser

    covered = {" ".join(t.split()[:2]) if t.startswith("bag ") else t.split()[0]
               for t, _ in SUBPROCESS_CASES + IN_PROCESS_CASES + DATASET_CASES if t}
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    expected = {f"bag {b}" for b in commands["bag"]._subparsers._group_actions[0].choices} | (set(commands) - {"bag"})
    assert expected <= covered


def test_output_names_are_distinct():
    assert output_names([Path("a.png"), Path("b.png")]) == ["a", "b"]
    assert output_names([Path("a.png"), Path("a.jpg"), Path("b.png")]) == ["a_png", "a_jpg", "b"]
    assert output_names([Path("x/f.png"), Path("y/f.png")]) == ["x_f_png", "y_f_png"]
    assert output_names([Path("cam/left/f.png"), Path("cam/right/f.png")]) == ["left_f_png", "right_f_png"]
    with pytest.raises(CommandError, match="given more than once"):
        output_names([Path("a.png"), Path("./a.png")])
    with pytest.raises(CommandError, match="would write the same outputs"):
        output_names([Path("a.png"), Path("a.jpg"), Path("a_png.tiff")])


def test_estimate_inputs_with_the_same_stem_keep_all_results(tmp_path, synthetic_vits_checkpoint, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    rng = np.random.default_rng(0)
    images = {tmp_path / "a.png": "a_png", tmp_path / "a.jpg": "a_jpg", tmp_path / "x" / "f.png": "x_f_png",
              tmp_path / "y" / "f.png": "y_f_png"}
    for k, image in enumerate(images):
        assert cv2.imwrite(str(image), rng.integers(0, 255, (24 + 2 * k, 32, 3), dtype=np.uint8))
    out = tmp_path / "out"
    assert main(["estimate", *map(str, images), "--checkpoint", str(synthetic_vits_checkpoint), "--model-max-depth",
                 "20", "--input-size", "70", "--device", "cpu", "--fov", "60", "--out", str(out)]) == 0
    for k, name in enumerate(images.values()):
        depth = cv2.imread(str(out / f"{name}_depth.tiff"), cv2.IMREAD_UNCHANGED)
        assert depth.shape == (24 + 2 * k, 32)  # each input's own result, none overwritten
        for suffix in ("_depth_mm.png", "_preview.png", ".ply"):
            assert (out / f"{name}{suffix}").is_file()
    assert len(list(out.iterdir())) == 4 * len(images)
    assert "a_png_depth.tiff" in capsys.readouterr().out
