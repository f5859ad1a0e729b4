"""`train` on RGB-D datasets beside bags: each dataset's split rule, the inputs recorded for --resume."""

import json

from bag_helpers import SMALL
from dataset_writers import write_nyu_h5, write_tum

from depth_anything_ros.bag.sample import SampleConfig, write_sample_bag
from depth_anything_ros.cli import main

MODEL = ["--encoder", "vits", "--model-max-depth", "20", "--input-size", "70", "--device", "cpu"]


def test_train_mixes_bags_and_datasets_with_their_splits(tmp_path, synthetic_vits_checkpoint):
    write_sample_bag(tmp_path / "bag", SampleConfig(**SMALL))  # 5 frames: the last 10 % in time (1) validate
    write_nyu_h5(tmp_path / "nyu")  # official split: train/ (2 samples) trains, val/ (1) validates
    tum = tmp_path / "rgbd_dataset_freiburg1_desk"
    write_tum(tum, size=(120, 160))  # no official split: 3 associated pairs, the last 10 % (1) validates
    out = tmp_path / "run"
    assert main(["train", str(tmp_path / "bag"), str(tmp_path / "nyu"), str(tum), "--gt-topic", "/camera/depth_gt",
                 "--checkpoint", str(synthetic_vits_checkpoint), *MODEL, "--steps", "1", "--batch-size", "1",
                 "--out", str(out), "--no-progress"]) == 0
    frames = json.loads((out / "metrics.json").read_text())["frames"]
    assert (frames["train"], frames["val"]) == (4 + 2 + 2, 1 + 1 + 1)
    run = json.loads((out / "run.json").read_text())
    assert run["bags"] == [str(tmp_path / "bag"), str(tmp_path / "nyu"), str(tum)] and run["dataset_format"] is None


def test_train_on_datasets_alone_needs_no_topic(tmp_path, synthetic_vits_checkpoint, capsys):
    tum = tmp_path / "sequence"  # no freiburg name: the layout says TUM; --format says it too
    write_tum(tum, size=(120, 160))
    out = tmp_path / "run"
    assert main(["train", str(tum), "--format", "tum", "--checkpoint", str(synthetic_vits_checkpoint), *MODEL,
                 "--steps", "1", "--batch-size", "1", "--val-percent", "50", "--out", str(out),
                 "--no-progress"]) == 0
    assert json.loads((out / "metrics.json").read_text())["frames"]["val"] == 2  # ceil(3 x 50 %)
    capsys.readouterr()
    assert main(["train", str(tum), "--checkpoint", str(synthetic_vits_checkpoint), *MODEL, "--val-percent", "100",
                 "--out", str(tmp_path / "none")]) == 2
    assert "--val-percent 100 leaves none to train on" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()
