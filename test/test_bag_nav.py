"""bag process writes the navigation outputs (scan, depth/confidence) the pipeline makes, and refuses bad options."""

import numpy as np
import pytest
from bag_helpers import INPUT_SIZE, SMALL, by_topic, read_bag

from depth_anything_ros.bag import messages
from depth_anything_ros.bag.process import ProcessOptions, process_bag
from depth_anything_ros.bag.sample import SampleConfig, write_sample_bag
from depth_anything_ros.cli import main
from depth_anything_ros.frame.frame_io import FrameInput, FrameOptions
from depth_anything_ros.frame.pipeline import FramePipeline
from depth_anything_ros.frame.scan import ScanOptions
from depth_anything_ros.models.v2.estimator import DepthEstimator


@pytest.fixture(scope="module")
def estimator(synthetic_vits_checkpoint):
    return DepthEstimator(synthetic_vits_checkpoint, encoder="vits", max_depth=20.0, device="cpu",
                          input_size=INPUT_SIZE)


@pytest.fixture(scope="module")
def sample_bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("sample") / "bag"
    write_sample_bag(path, SampleConfig(**SMALL))
    return path


def test_scan_and_confidence_are_the_pipelines(tmp_path, estimator, sample_bag):
    frame = FrameOptions(edge_filter=True, cloud_organized=False, voxel_size=0.25,
                         scan=ScanOptions(height=4, range_max=15.0, output_frame="base_scan"))
    outputs = ("depth", "points", "scan", "confidence")
    process_bag(sample_bag, tmp_path / "out", estimator,
                ProcessOptions(outputs=outputs, frame=frame, progress=False))
    src, out = by_topic(read_bag(sample_bag)), by_topic(read_bag(tmp_path / "out"))
    images, info = src["/camera/image"], src["/camera/camera_info"][0].msg
    assert {r.msgtype for r in out["/camera/scan"]} == {messages.LASER_SCAN}
    assert len(out["/camera/scan"]) == len(out["/camera/depth/confidence"]) == len(images)
    pipeline = FramePipeline(estimator)
    for k, image in enumerate(images):
        expected = pipeline.run([FrameInput(message=image.msg, camera_info=info, outputs=outputs)], frame)[0]
        scan = out["/camera/scan"][k].msg
        assert (scan.header.stamp, scan.header.frame_id) == (image.msg.header.stamp, "base_scan")
        np.testing.assert_array_equal(scan.ranges, expected.scan.ranges)
        assert (scan.angle_min, scan.angle_max, scan.range_max) == (
            pytest.approx(expected.scan.angle_min), pytest.approx(expected.scan.angle_max), 15.0)
        confidence = out["/camera/depth/confidence"][k].msg
        assert confidence.header == image.msg.header and confidence.encoding == "32FC1"
        values = np.frombuffer(confidence.data.tobytes(), "<f4").reshape(confidence.height, confidence.width)
        np.testing.assert_array_equal(values, expected.confidence)
        cloud = out["/camera/points"][k].msg
        assert (cloud.height, cloud.width) == (1, expected.cloud.width)
        assert cloud.data.tobytes() == bytes(expected.cloud.data)


def test_voxel_size_needs_unorganized(tmp_path, sample_bag, synthetic_vits_checkpoint, capsys):
    code = main(["bag", "process", str(sample_bag), str(tmp_path / "out"), "--checkpoint",
                 str(synthetic_vits_checkpoint), "--encoder", "vits", "--model-max-depth", "20", "--voxel-size",
                 "0.1", "--no-progress"])
    assert code == 2
    assert "voxel size 0.1 m needs an unorganised cloud" in capsys.readouterr().err
