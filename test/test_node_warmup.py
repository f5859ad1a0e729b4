"""Graph test: with model.compile the node warms up when camera_info arrives (autostart), for every batch size.

torch.compile on this CPU takes one to two minutes per shape, so this is one node process and one scenario:
two cameras of the same size announce themselves by camera_info only; the node must compile batch 1 and batch 2
before any image, and the frames that follow must not wait for a compilation.
"""

import pytest
from graph_harness import (
    CameraIO,
    GraphClient,
    NodeProcess,
    camera_info_msg,
    image_msg,
    node_command,
    random_image,
    wait_until,
)

pytestmark = pytest.mark.ros

NS = "/warm"
W, H = 64, 48
K = [52.0, 0.0, 31.5, 0.0, 50.0, 23.5, 0.0, 0.0, 1.0]
COMPILE_WAIT_S = 900.0  # two compilations on a loaded 2-core CI machine


def test_compile_warm_up_happens_at_the_first_camera_info_for_batch_1_and_2(ros_env, synthetic_vits_checkpoint,
                                                                             tmp_path):
    command = node_command(NS, synthetic_vits_checkpoint, "model.max_depth:=20.0", "model.input_size:=70",
                           "device:=cpu", "model.compile:=true", "cameras:=[a, b]")
    node = NodeProcess(command, ros_env, tmp_path / "node.log")
    client = GraphClient("warmup_test")
    try:
        assert node.wait_for_log("loaded in"), node.log()
        cams = {name: CameraIO(client, f"{NS}/{name}") for name in ("a", "b")}
        info = camera_info_msg(image_msg(client.now(), "cam", random_image(H, W, seed=3)).header, W, H, K)

        def announced():
            for cam in cams.values():
                cam.info_pub.publish(info)
            return "batch 2, in" in node.log()

        assert wait_until(announced, timeout=COMPILE_WAIT_S, period=1.0), node.log()
        log = node.log()
        assert f"warmed up the compiled network for {W}x{H} images, batch 1" in log, log
        assert f"warmed up the compiled network for {W}x{H} images, batch 2" in log, log
        assert not any(cam.depth.snapshot() for cam in cams.values())  # no image was sent yet

        served = 0
        for seed in range(20):  # both cameras at once: batches of 1 or 2, both compiled already
            stamp = client.now()
            for cam in cams.values():
                frame = image_msg(stamp, "cam", random_image(H, W, seed=seed))
                cam.info_pub.publish(camera_info_msg(frame.header, W, H, K))
                cam.image_pub.publish(frame)
            served += bool(wait_until(lambda s=stamp: all(c.depth.by_stamp(s) for c in cams.values()), timeout=20.0))
            if served == 3:
                break
        assert served == 3, node.log()
        assert "this frame waited" not in node.log(), node.log()
    finally:
        client.close()
        node.stop()
