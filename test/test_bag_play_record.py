"""Replay: `bag play` into `bag record` and through the live node (use_sim_time); all real processes, no losses."""

import signal
import subprocess
import sys
import time

import pytest
from bag_helpers import INPUT_SIZE, by_topic, read_bag
from graph_harness import RELIABLE, GraphClient, NodeProcess, node_command, wait_until
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from depth_anything_ros.bag import bagfile, messages
from depth_anything_ros.bag.bagfile import BagError
from depth_anything_ros.bag.play import PlayOptions, parse_expect, play_bag
from depth_anything_ros.bag.record import RecordOptions, record_bag
from depth_anything_ros.bag.sample import SampleConfig, write_sample_bag

pytestmark = pytest.mark.ros

OUTPUTS = ["/camera/depth", "/camera/points", "/camera/depth/camera_info"]
RUNS = 10
# `bag play|record ARGS` through the real parser and run_play/run_record, without the model imports of the full CLI
# (which would cost seconds of start-up per process).
BAG_CLI = ("import argparse, sys\n"
           "from depth_anything_ros.bag import commands\n"
           "parser = argparse.ArgumentParser()\n"
           "sub = parser.add_subparsers(required=True)\n"
           "commands._register_play(sub)\n"
           "commands._register_record(sub)\n"
           "args = parser.parse_args()\n"
           "sys.exit(args.func(args))\n")


def _cdr(raw: bytes) -> bytes:
    """Return the bytes a subscriber gets for a stored message (DDS pads CDR with zeros to a multiple of 4)."""
    return raw + b"\0" * (-len(raw) % 4)


def _wait_for(path, texts, proc, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = path.read_text()
        if all(t in log for t in texts):
            return
        assert proc.poll() is None, log
        time.sleep(0.2)
    raise AssertionError(f"not seen in time: {texts}\n{path.read_text()}")


def _stop(recorder: subprocess.Popen, log_path) -> str:
    """Ctrl-C the recorder, return its log once it has exited with 0."""
    recorder.send_signal(signal.SIGINT)
    assert recorder.wait(timeout=30) == 0, log_path.read_text()
    return log_path.read_text()


def test_play_into_record_loses_nothing_in_repeated_runs(tmp_path, ros_env):
    """RUNS times a fresh recorder and a fresh player: every message of every topic arrives, in order, each time.

    The default sample bag (20 frames, 320x240, four topics) at --rate 4: 80 messages, 14 MB in half a second. Before
    play waited for subscribers and acknowledgements and record drained on Ctrl-C, this lost messages at the start
    or the end in 2 of 10 runs.
    """
    bag = tmp_path / "in"
    write_sample_bag(bag, SampleConfig())
    source = {t: [_cdr(r.raw) for r in recs] for t, recs in by_topic(read_bag(bag)).items()}
    topics = sorted(source)
    total = sum(map(len, source.values()))
    losses = []
    for run in range(RUNS):
        out, log_path = tmp_path / f"rec{run}", tmp_path / f"rec{run}.log"
        with log_path.open("w") as log:
            recorder = subprocess.Popen([sys.executable, "-c", BAG_CLI, "record", str(out), *topics], env=ros_env,
                                        stdout=log, stderr=subprocess.STDOUT)
        try:
            # The recorder subscribes once the player's topics appear; the player waits for exactly that.
            play = subprocess.run([sys.executable, "-c", BAG_CLI, "play", str(bag), "--rate", "4", "--expect",
                                   *topics],
                                  env=ros_env, capture_output=True, text=True, timeout=120)
            assert play.returncode == 0, play.stderr
            assert f"published {total} messages" in play.stderr, play.stderr
            log = _stop(recorder, log_path)
        finally:
            if recorder.poll() is None:
                recorder.kill()
        recorded = {t: [r.raw for r in recs] for t, recs in by_topic(read_bag(out)).items()}
        if recorded != source:
            losses.append(f"run {run}: " + ", ".join(f"{t} {len(recorded.get(t, []))} of {len(source[t])}"
                                                     for t in topics))
        assert f"recorded {sum(map(len, recorded.values()))} messages" in log, log  # the report counts what it wrote
    assert not losses, f"{len(losses)} of {RUNS} runs lost messages: {losses}"


def _camera_info_first(src, dst, lead_ns: int) -> None:
    """Copy a bag with each camera_info logged lead_ns before the rest (so the node has it for the first image)."""
    records = read_bag(src)
    writer = bagfile.open_writer(dst)
    try:
        conns = {}
        for r in sorted(records, key=lambda r: r.log_time - (lead_ns if r.topic.endswith("camera_info") else 0)):
            if r.topic not in conns:
                conns[r.topic] = bagfile.add_topic(writer, r.topic, r.msgtype)
            writer.write(conns[r.topic], r.log_time - (lead_ns if r.topic.endswith("camera_info") else 0), r.raw)
    finally:
        writer.close()


def _camera_statuses(diagnostics) -> list[dict]:
    return [{kv.key: kv.value for kv in status.values}
            for array in diagnostics for status in array.msg.status if ": camera " in status.name]


def test_play_into_node_and_record_outputs(tmp_path, ros_env, cli, synthetic_vits_checkpoint):
    """Every played image gives one depth, one cloud and one camera_info, all recorded, at `--rate 0.5 --clock`."""
    cfg = SampleConfig(width=160, height=120, frames=8, rate=4.0)
    write_sample_bag(tmp_path / "sample", cfg)
    _camera_info_first(tmp_path / "sample", tmp_path / "in", lead_ns=50_000_000)
    source = by_topic(read_bag(tmp_path / "in"))
    stamps = [messages.stamp_ns(r.msg.header) for r in source["/camera/image"]]

    # Reliable input and one frame every 0.5 s of wall time: the node never has to drop a stale frame.
    node = NodeProcess(node_command("/camera", synthetic_vits_checkpoint, "model.max_depth:=20.0",
                                    f"model.input_size:={INPUT_SIZE}", "device:=cpu", "use_sim_time:=true",
                                    "qos.reliability:=reliable"),
                       ros_env, tmp_path / "node.log")
    record_log = tmp_path / "record.log"
    recorder = client = None
    try:
        assert node.wait_for_log("loaded in"), node.log()
        client = GraphClient("replay_test_client")
        seen = {"/camera/depth": client.collect(Image, "/camera/depth", RELIABLE),
                "/camera/points": client.collect(PointCloud2, "/camera/points", RELIABLE),
                "/camera/depth/camera_info": client.collect(CameraInfo, "/camera/depth/camera_info", RELIABLE)}
        with record_log.open("w") as log:
            recorder = subprocess.Popen([*cli, "bag", "record", str(tmp_path / "rec"), *OUTPUTS, "/camera/image",
                                         "/clock", "/diagnostics"], env=ros_env, stdout=log, stderr=subprocess.STDOUT)
        _wait_for(record_log, [f"recording {t} " for t in [*OUTPUTS, "/diagnostics"]], recorder)
        # Images and /clock go to the node and the recorder (which subscribes once the player publishes them, with
        # the reliability it offers), camera_info to the node.
        play = subprocess.run([*cli, "bag", "play", str(tmp_path / "in"), "--clock", "--rate", "0.5", "--topics",
                               "/camera/image", "/camera/camera_info", "--expect", "/camera/image:2",
                               "/camera/camera_info", "/clock:2"],
                              env=ros_env, capture_output=True, text=True, timeout=300)
        assert play.returncode == 0, play.stderr
        assert f"published {2 * cfg.frames} messages" in play.stderr
        # The node's last outputs come after play exits; the recorder hears them as this client does.
        wait_until(lambda: all(len(c.snapshot()) >= cfg.frames for c in seen.values()))
        record_out = _stop(recorder, record_log)
    finally:
        if recorder is not None and recorder.poll() is None:
            recorder.kill()
        if client is not None:
            client.close()
        node.stop()

    recorded = by_topic(read_bag(tmp_path / "rec"))
    statuses = _camera_statuses(recorded.get("/diagnostics", []))
    # Every image the player published reached the recorder (subscribed reliable), byte for byte and in order.
    assert "recording /camera/image (sensor_msgs/msg/Image, reliable)" in record_out
    assert [r.raw for r in recorded.get("/camera/image", [])] == [_cdr(r.raw) for r in source["/camera/image"]]
    # The node dropped no frame (its diagnostics say so while /clock runs) ...
    assert all(s["frames dropped"] == "0" for s in statuses), statuses
    # ... so each output has exactly one message per image, with the image's header stamp and frame_id.
    for topic in OUTPUTS:
        headers = [r.msg.header for r in recorded.get(topic, [])]
        assert sorted(messages.stamp_ns(h) for h in headers) == stamps, (
            f"{topic}: {len(headers)} of {len(stamps)} frames\n{record_out}\n{statuses[-1:]}\n{node.log()}")
        assert {h.frame_id for h in headers} == {"camera_optical_frame"}
        assert f"{topic} {cfg.frames}" in record_out
    assert {r.msgtype for r in recorded["/camera/points"]} == {messages.POINT_CLOUD2}
    # /clock ran on bag time.
    clock = [r.msg.clock.sec * 1_000_000_000 + r.msg.clock.nanosec for r in recorded["/clock"]]
    assert clock and stamps[0] - 50_000_000 <= min(clock) and max(clock) <= stamps[-1] + 1_000_000_000
    assert clock == sorted(clock)


def test_play_and_record_reject_bad_requests(tmp_path, ros_env):
    write_sample_bag(tmp_path / "in", SampleConfig(width=32, height=24, frames=2))
    with pytest.raises(BagError, match="topics not in bag.*: /nope"):
        play_bag(tmp_path / "in", PlayOptions(topics=["/nope"]))
    with pytest.raises(BagError, match="--rate must be positive"):
        play_bag(tmp_path / "in", PlayOptions(rate=0.0))
    with pytest.raises(BagError, match="--expect /clock: not published by this play"):
        play_bag(tmp_path / "in", PlayOptions(expect={"/clock": 1}))
    for bad in ("/camera/image:0", "/camera/image:two", ":2"):
        with pytest.raises(BagError, match="--expect"):
            parse_expect([bad])
    assert parse_expect(["/a", "b:3", "/a:2"]) == {"/a": 2, "/b": 3}
    with pytest.raises(BagError, match="exists already"):
        record_bag(tmp_path / "in", RecordOptions(topics=["/x"]))
    counts = record_bag(tmp_path / "empty", RecordOptions(topics=["never_published"], duration=0.5))
    assert counts == {"/never_published": 0}
    assert read_bag(tmp_path / "empty") == []  # closed cleanly, readable
