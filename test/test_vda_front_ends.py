"""Video Depth Anything metric: checkpoint recognition and refusals, and streaming per camera in the frame pipeline.

One synthetic official-format vits checkpoint per session (conftest), network input 42 px on the short side.
"""

import cv2
import numpy as np
import pytest
import torch

from depth_anything_ros.frame.pipeline import FrameInput, FrameOptions, FramePipeline
from depth_anything_ros.models.checkpoint_io import CheckpointError
from depth_anything_ros.models.registry import load_estimator
from depth_anything_ros.models.synthetic_weights import synthetic_state_dict
from depth_anything_ros.models.vda.checkpoint import synthetic_vda_state_dict
from depth_anything_ros.models.vda.estimator import StreamSizeError, VDAEstimator
from depth_anything_ros.models.vda.temporal import StreamState

RES = 42
H, W = 36, 48


def _frames(count: int, height: int = H, width: int = W, seed: int = 0) -> list[np.ndarray]:
    """Return frames of a scene panning by 1 px per frame with noise: frames that differ, as a camera's do."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:height, 0:width + count]
    scene = np.stack([u * 255 / (width + count), v * 255 / (height - 1), (u * v) % 97 * 2.0], -1)
    return [np.clip(scene[:, t:t + width] + rng.normal(0, 4, (height, width, 3)), 0, 255).astype(np.uint8)
            for t in range(count)]


@pytest.fixture(scope="module")
def estimator(synthetic_vda_checkpoint):
    est = load_estimator(str(synthetic_vda_checkpoint), device="cpu", input_size=RES)
    assert isinstance(est, VDAEstimator) and est.is_metric and est.temporal and est.encoder == "vits"
    return est


def _stream(est, frames) -> list[np.ndarray]:
    state = StreamState()
    return [est.estimate_stream(torch.from_numpy(np.array(f))[None], "rgb8", state)[0].numpy() for f in frames]


def test_a_frame_depends_on_the_past_frames(estimator):
    frames = _frames(4)
    streamed = _stream(estimator, frames)
    alone = estimator.estimate(frames[3], "rgb8")  # a first frame: no past
    np.testing.assert_array_equal(streamed[0], estimator.estimate(frames[0], "rgb8"))
    assert np.abs(streamed[3] - alone).max() > 1e-3
    assert streamed[3].shape == (H, W) and 0.1 < streamed[3].mean() < 80


def test_stream_state_is_bounded(estimator):
    state = StreamState()
    for frame in _frames(45):
        estimator.estimate_stream(torch.from_numpy(frame)[None], "rgb8", state)
    assert len(state.slots) == 42 and state.frames == 45
    one_frame = state.state_bytes() / 42  # 42 distinct frames held once the first frame's copies are gone
    assert state.state_bytes() <= 42 * one_frame


def test_a_frame_of_another_size_is_refused_by_the_stream(estimator):
    state = StreamState()
    estimator.estimate_stream(torch.from_numpy(_frames(1)[0])[None], "rgb8", state)
    with pytest.raises(StreamSizeError, match="reset the stream first"):
        estimator.estimate_stream(torch.from_numpy(_frames(1, 48, 64)[0])[None], "rgb8", state)


def test_relative_vda_files_and_v2_files_are_refused(tmp_path):
    state = synthetic_vda_state_dict("vits", seed=0)
    relative = tmp_path / "video_depth_anything_vits.pth"
    torch.save(state, relative)
    with pytest.raises(CheckpointError, match="relative Video Depth Anything model"):
        load_estimator(str(relative), device="cpu")
    v2 = tmp_path / "metric_video_depth_anything_vits.pth"  # a V2 file under a VDA name
    torch.save(synthetic_state_dict("vits", seed=0), v2)
    with pytest.raises(CheckpointError, match=r"Depth-Anything-V2 file.*missing tensor\(s\), first: head\."):
        load_estimator(str(v2), device="cpu")


def test_a_vda_file_of_any_name_is_recognised_by_its_tensors_and_max_depth_is_refused(tmp_path):
    path = tmp_path / "my_finetune.pth"
    torch.save(synthetic_vda_state_dict("vits", seed=0), path)
    assert isinstance(load_estimator(str(path), device="cpu", input_size=RES), VDAEstimator)
    with pytest.raises(CheckpointError, match="no max_depth"):
        load_estimator(str(path), device="cpu", max_depth=20.0)
    with pytest.raises(CheckpointError, match="not encoder 'vitb'"):
        load_estimator(str(path), encoder="vitb", device="cpu")


def test_variant_names_are_in_the_table():
    from depth_anything_ros.models.variants import CHECKPOINTS, METRIC_VIDEO

    spec = CHECKPOINTS["vda-metric-vits"]
    assert (spec.repo_id, spec.filename, spec.kind, spec.licence) == (
        "depth-anything/Metric-Video-Depth-Anything-Small", "metric_video_depth_anything_vits.pth", METRIC_VIDEO,
        "Apache-2.0")
    assert CHECKPOINTS["vda-metric-vitl"].licence == "CC-BY-NC-4.0"


# ----------------------------------------------------------------------------------------------- frame pipeline


def _run(pipeline, camera, pixels, stamp, options=None):
    frame = FrameInput(camera=camera, pixels=pixels, encoding="rgb8", stamp=stamp, outputs=("depth",))
    return pipeline.run([frame], options or FrameOptions())[0]


def test_pipeline_streams_each_camera_as_the_estimator_does(estimator):
    frames_a, frames_b = _frames(5, seed=1), _frames(5, seed=2)
    pipeline = FramePipeline(estimator)
    for t in range(5):  # two cameras interleaved, in one call per step: each has its own stream
        out = pipeline.run([FrameInput(camera="a", pixels=frames_a[t], encoding="rgb8", stamp=1 + t * 0.1,
                                       outputs=("depth",)),
                            FrameInput(camera="b", pixels=frames_b[t], encoding="rgb8", stamp=1 + t * 0.1,
                                       outputs=("depth",))], FrameOptions())
        assert all(r.problems == [] and r.restart is None for r in out)
    np.testing.assert_array_equal(out[0].depth, _stream(estimator, frames_a)[-1])
    np.testing.assert_array_equal(out[1].depth, _stream(estimator, frames_b)[-1])


@pytest.mark.parametrize("case", ["size", "backwards", "gap", "request"])
def test_pipeline_starts_a_stream_over(estimator, case):
    frames = _frames(3)
    pipeline = FramePipeline(estimator)
    for t in range(2):
        assert _run(pipeline, 0, frames[t], 10.0 + t * 0.1).restart is None
    pixels, stamp, options, reason = frames[2], 10.2, FrameOptions(), None
    if case == "size":
        pixels, reason = _frames(1, 48, 64)[0], "image size changed from 48x36 to 64x48"
    elif case == "backwards":
        stamp, reason = 9.0, "stamp went back by 1.100 s"
    elif case == "gap":
        stamp, options, reason = 13.0, FrameOptions(temporal_max_gap=2.0), "2.900 s since the previous frame (> 2 s)"
    else:
        pipeline.reset_temporal()
    result = _run(pipeline, 0, pixels, stamp, options)
    assert result.problems == [] and result.depth.shape == pixels.shape[:2]
    assert result.restart == (None if reason is None else f"{reason}: temporal state reset")
    np.testing.assert_array_equal(result.depth, estimator.estimate(pixels, "rgb8"))  # a first frame again


def test_pipeline_keeps_streaming_within_the_gap_and_with_unknown_stamps(estimator):
    frames = _frames(3)
    pipeline = FramePipeline(estimator)
    results = [_run(pipeline, 0, f, 0.0, FrameOptions(temporal_max_gap=0.5)) for f in frames]
    assert all(r.restart is None for r in results)
    np.testing.assert_array_equal(results[-1].depth, _stream(estimator, frames)[-1])


def test_bag_process_streams_the_image_topic_in_order(estimator, tmp_path):
    """Batches of 2: still one frame at a time, each attending to the topic's earlier frames."""
    from bag_helpers import SMALL, by_topic, read_bag

    from depth_anything_ros.bag.process import ProcessOptions, process_bag
    from depth_anything_ros.bag.sample import SampleConfig, write_sample_bag
    from depth_anything_ros.frame.image_codec import decode_image, depth_from_image
    from depth_anything_ros.frame.provenance import model_provenance

    sample = tmp_path / "sample"
    write_sample_bag(sample, SampleConfig(**{**SMALL, "frames": 3}))
    summary = process_bag(sample, tmp_path / "out", estimator, ProcessOptions(progress=False, batch=2))
    assert (summary.frames_done, summary.frames_total) == (3, 3)
    src, out = by_topic(read_bag(sample)), by_topic(read_bag(tmp_path / "out"))
    images = [decode_image(m.msg)[0] for m in src["/camera/image"]]
    expected = _stream(estimator, images)
    for message, want in zip(out["/camera/depth"], expected, strict=True):
        np.testing.assert_array_equal(depth_from_image(message.msg), want)
    assert model_provenance(estimator)["temporal"] == "stream per camera"


@pytest.mark.parametrize("frames", [1, 22, 32, 33, 54, 60])
def test_offline_windows_give_one_depth_per_frame_in_order(frames):
    """A fake network whose depth is its input's first channel: depths before any blending are the inputs."""
    from depth_anything_ros.models.vda.temporal import WINDOW, OfflineWindows

    windows = OfflineWindows(lambda window: window[:, 0])
    out = []
    for i in range(frames):
        out += windows.push(torch.full((3, 2, 2), float(i)))
    out += windows.finish()
    assert len(out) == frames
    values = [float(d[0, 0]) for d in out]
    first = min(frames, WINDOW - 8)
    assert values[:first] == [float(i) for i in range(first)]
    if frames > WINDOW:  # keyframes and blending stay between the frames' own values
        assert all(abs(v - i) < WINDOW for i, v in enumerate(values))


def test_bag_process_offline_runs_the_official_windows(estimator, tmp_path):
    from bag_helpers import SMALL, by_topic, read_bag

    from depth_anything_ros.bag.bagfile import BagError
    from depth_anything_ros.bag.process import ProcessOptions, process_bag
    from depth_anything_ros.bag.sample import SampleConfig, write_sample_bag
    from depth_anything_ros.frame.image_codec import decode_image, depth_from_image

    sample = tmp_path / "sample"
    write_sample_bag(sample, SampleConfig(**{**SMALL, "frames": 3}))
    summary = process_bag(sample, tmp_path / "out", estimator, ProcessOptions(progress=False, temporal="offline"))
    assert summary.frames_done == 3
    src, out = by_topic(read_bag(sample)), by_topic(read_bag(tmp_path / "out"))
    images = [torch.from_numpy(np.array(decode_image(m.msg)[0]))[None] for m in src["/camera/image"]]
    expected = [d.numpy() for d in estimator.estimate_clip(images, "rgb8")]
    assert len(out["/camera/depth"]) == len(out["/camera/points"]) == 3
    for message, want in zip(out["/camera/depth"], expected, strict=True):
        np.testing.assert_array_equal(depth_from_image(message.msg), want)
    assert not np.array_equal(expected[2], _stream(estimator, [np.array(decode_image(m.msg)[0])
                                                               for m in src["/camera/image"]])[2])
    with pytest.raises(BagError, match="no confidence"):
        process_bag(sample, tmp_path / "out2", estimator,
                    ProcessOptions(progress=False, temporal="offline", outputs=("depth", "confidence")))


def test_bag_process_offline_with_a_per_frame_model_is_one_line_exit_2(synthetic_vits_checkpoint, tmp_path, capsys):
    from bag_helpers import SMALL

    from depth_anything_ros.bag.sample import SampleConfig, write_sample_bag
    from depth_anything_ros.cli import main

    sample = tmp_path / "sample"
    write_sample_bag(sample, SampleConfig(**{**SMALL, "frames": 1}))
    capsys.readouterr()
    assert main(["bag", "process", str(sample), str(tmp_path / "out"), "--checkpoint", str(synthetic_vits_checkpoint),
                 "--model-max-depth", "20", "--input-size", "28", "--device", "cpu", "--no-progress",
                 "--temporal", "offline"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--temporal offline needs a temporal model (vda-metric-vits/vitb/vitl)" in err[0], err


def test_estimate_video_streams_its_frames_in_order(estimator, synthetic_vda_checkpoint, tmp_path, capsys):
    from depth_anything_ros.cli import main

    frames = _frames(6, seed=3)  # RGB; written losslessly (FFV1) as the BGR frames OpenCV's writer takes
    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"FFV1"), 10, (W, H))
    assert writer.isOpened()
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()
    model = ["--checkpoint", str(synthetic_vda_checkpoint), "--input-size", str(RES), "--device", "cpu",
             "--fov", "60"]
    assert main(["estimate", "--video", str(tmp_path / "clip.avi"), "--out", str(tmp_path / "all"), *model]) == 0
    written = sorted(p.name for p in (tmp_path / "all").glob("*_depth.tiff"))
    assert written == [f"clip_{i:06d}_depth.tiff" for i in range(6)]
    depths = [cv2.imread(str(tmp_path / "all" / name), cv2.IMREAD_UNCHANGED) for name in written]
    streamed = _stream(estimator, frames)
    for got, expected in zip(depths, streamed, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    assert np.abs(depths[4] - estimator.estimate(frames[4], "rgb8")).max() > 1e-3  # it saw its past
    assert "clip.avi frame 5: 48x36" in capsys.readouterr().out
    assert main(["estimate", "--video", str(tmp_path / "clip.avi"), "--out", str(tmp_path / "two"), "--max-frames",
                 "2", *model]) == 0
    assert sorted(p.name for p in (tmp_path / "two").glob("*_depth.tiff")) == written[:2]
