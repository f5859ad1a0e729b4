"""Replay: `bag play --clock` into the live node (use_sim_time), `bag record` of its outputs; all real processes."""

import signal
import subprocess
import time

import pytest
from bag_helpers import INPUT_SIZE, by_topic, read_bag
from graph_harness import NodeProcess, node_command

from depth_anything_ros.bag import messages
from depth_anything_ros.bag.bagfile import BagError
from depth_anything_ros.bag.play import PlayOptions, play_bag
from depth_anything_ros.bag.record import RecordOptions, record_bag
from depth_anything_ros.bag.sample import SampleConfig, write_sample_bag

pytestmark = pytest.mark.ros

OUTPUTS = ["/camera/depth", "/camera/points", "/camera/depth/camera_info"]


def _wait_for(path, texts, proc, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = path.read_text()
        if all(t in log for t in texts):
            return
        assert proc.poll() is None, log
        time.sleep(0.2)
    raise AssertionError(f"not seen in time: {texts}\n{path.read_text()}")


def test_play_into_node_and_record_outputs(tmp_path, ros_env, cli, synthetic_vits_checkpoint):
    cfg = SampleConfig(width=160, height=120, frames=8, rate=4.0)
    write_sample_bag(tmp_path / "in", cfg)
    source = by_topic(read_bag(tmp_path / "in"))
    stamps = [messages.stamp_ns(r.msg.header) for r in source["/camera/image"]]

    node = NodeProcess(node_command("/camera", synthetic_vits_checkpoint, "model.max_depth:=20.0",
                                    f"model.input_size:={INPUT_SIZE}", "device:=cpu", "use_sim_time:=true"),
                       ros_env, tmp_path / "node.log")
    record_log = tmp_path / "record.log"
    recorder = None
    try:
        assert node.wait_for_log("loaded in"), node.log()
        with record_log.open("w") as log:
            recorder = subprocess.Popen([*cli, "bag", "record", str(tmp_path / "rec"), *OUTPUTS, "/camera/image",
                                         "/clock"], env=ros_env, stdout=log, stderr=subprocess.STDOUT)
        _wait_for(record_log, [f"recording {t} " for t in OUTPUTS], recorder)
        play = subprocess.run([*cli, "bag", "play", str(tmp_path / "in"), "--clock", "--delay", "3", "--topics",
                               "/camera/image", "/camera/camera_info"],
                              env=ros_env, capture_output=True, text=True, timeout=300)
        assert play.returncode == 0, play.stderr
        assert f"published {2 * cfg.frames} messages" in play.stderr
        time.sleep(3.0)  # let the node finish its last frame and the recorder receive it
        recorder.send_signal(signal.SIGINT)
        assert recorder.wait(timeout=60) == 0, record_log.read_text()
    finally:
        if recorder is not None and recorder.poll() is None:
            recorder.kill()
        node.stop()

    recorded = by_topic(read_bag(tmp_path / "rec"))
    # The player's messages arrive byte for byte as they are in the bag (the recorder may subscribe after the first).
    played = {r.raw for r in source["/camera/image"]}
    assert recorded.get("/camera/image") and all(r.raw in played for r in recorded["/camera/image"])
    # The node's outputs carry the bag's header stamps and frame_id (it drops frames it cannot keep up with).
    for topic in OUTPUTS:
        assert recorded.get(topic), f"nothing recorded on {topic}\n{node.log()}"
        headers = [r.msg.header for r in recorded[topic]]
        assert {messages.stamp_ns(h) for h in headers} <= set(stamps), topic
        assert {h.frame_id for h in headers} == {"camera_optical_frame"}
    assert {r.msgtype for r in recorded["/camera/points"]} == {messages.POINT_CLOUD2}
    # /clock ran on bag time.
    clock = [r.msg.clock.sec * 1_000_000_000 + r.msg.clock.nanosec for r in recorded["/clock"]]
    assert clock and stamps[0] <= min(clock) and max(clock) <= stamps[-1] + 1_000_000_000
    assert clock == sorted(clock)


def test_play_and_record_reject_bad_requests(tmp_path, ros_env):
    write_sample_bag(tmp_path / "in", SampleConfig(width=32, height=24, frames=2))
    with pytest.raises(BagError, match="topics not in bag.*: /nope"):
        play_bag(tmp_path / "in", PlayOptions(topics=["/nope"]))
    with pytest.raises(BagError, match="--rate must be positive"):
        play_bag(tmp_path / "in", PlayOptions(rate=0.0))
    with pytest.raises(BagError, match="exists already"):
        record_bag(tmp_path / "in", RecordOptions(topics=["/x"]))
    counts = record_bag(tmp_path / "empty", RecordOptions(topics=["never_published"], duration=0.5))
    assert counts == {"/never_published": 0}
    assert read_bag(tmp_path / "empty") == []  # closed cleanly, readable
