"""`bag process` of several bags on several worker processes: the same messages as one bag at a time, and errors."""

from pathlib import Path

import pytest
from mcap.reader import make_reader

from depth_anything_ros.bag.sample import SampleConfig, write_sample_bag
from depth_anything_ros.cli import main

SMALL = dict(width=64, height=48, frames=4)


def messages_of(bag: Path) -> list[tuple[str, int, bytes]]:
    """(topic, log time, serialized bytes) of every message of an mcap bag, read with the independent mcap reader."""
    (path,) = bag.glob("*.mcap")
    with path.open("rb") as stream:
        return [(channel.topic, message.log_time, bytes(message.data))
                for _, channel, message in make_reader(stream).iter_messages(log_time_order=True)]


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp("parallel")
    paths = [root / "in" / name for name in ("corridor", "kitchen", "lab")]
    for seed, path in enumerate(paths):
        write_sample_bag(path, SampleConfig(**SMALL, seed=seed))
    return paths


def model_args(checkpoint: Path) -> list[str]:
    return ["--checkpoint", str(checkpoint), "--encoder", "vits", "--model-max-depth", "20", "--input-size", "70",
            "--device", "cpu", "--no-progress"]


def test_two_workers_write_the_messages_of_a_sequential_run(bags, synthetic_vits_checkpoint, tmp_path):
    out = tmp_path / "parallel"
    assert main(["bag", "process", *map(str, bags), str(out), "--devices", "cpu,cpu",
                 *model_args(synthetic_vits_checkpoint)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["corridor", "kitchen", "lab"]
    for bag in bags:
        alone = tmp_path / f"alone_{bag.name}"
        assert main(["bag", "process", str(bag), str(alone), *model_args(synthetic_vits_checkpoint)]) == 0
        expected, got = messages_of(alone), messages_of(out / bag.name)
        assert len(got) == len(expected) and {t for t, _, _ in got} >= {"/camera/depth", "/camera/points"}
        assert got == expected, f"{bag.name}: the worker's bag differs from the sequential one"


def test_a_bad_bag_among_several_costs_only_itself(bags, synthetic_vits_checkpoint, tmp_path, capsys):
    processed = tmp_path / "in" / "processed"  # already holds /camera/depth: processing it again is refused
    assert main(["bag", "process", str(bags[1]), str(processed), "--topics", "depth",
                 *model_args(synthetic_vits_checkpoint)]) == 0
    out = tmp_path / "out"
    capsys.readouterr()
    code = main(["bag", "process", str(bags[0]), str(processed), str(out), "--devices", "cpu,cpu",
                 *model_args(synthetic_vits_checkpoint)])
    captured = capsys.readouterr()
    assert code == 2
    assert "1 of 2 bags could not be processed" in captured.err
    assert "input bag already has /camera/depth" in captured.out
    assert not (out / "processed").exists()
    assert messages_of(out / bags[0].name)  # the good bag is complete
    assert "Traceback" not in captured.out + captured.err


@pytest.mark.parametrize(("argv", "message"), [
    (lambda b, o: [str(b[0]), str(o), "--devices", "cpu,cpu"], "--devices shares several IN bags"),
    (lambda b, o: [str(b[0]), str(b[0]), str(o)], "input bags share the folder name corridor"),
    (lambda b, o: [str(b[0]), str(b[1]), str(o), "--devices", "cpu,,cpu"], "expected comma-separated devices"),
    (lambda b, o: [str(b[0]), str(b[1]), str(o), "--devices", "cpu,gpu7"], "invalid --devices entry 'gpu7'"),
])
def test_usage_errors_are_one_line(bags, synthetic_vits_checkpoint, tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    try:
        code = main(["bag", "process", *argv(bags, out), *model_args(synthetic_vits_checkpoint)])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
