"""`depth-anything-ros estimate`: metric depth, preview and point cloud of image files or a video's frames."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from depth_anything_ros.cli_options import DEFAULT_FOV_DEG, PROG, CommandError, frame_options, make_estimator
from depth_anything_ros.frame import image_codec
from depth_anything_ros.frame.camera import IntrinsicsError, user_camera
from depth_anything_ros.frame.colorize import colormap_lut
from depth_anything_ros.frame.files import result_files, write_file
from depth_anything_ros.frame.pipeline import FrameInput, FramePipeline
from depth_anything_ros.frame.provenance import model_label, model_provenance


def _camera_info_source(args: argparse.Namespace):
    """Return a function (width, height) -> camera.CameraInfo from the intrinsics options, or raise CommandError."""
    try:
        return user_camera(args.fx, args.fy, args.cx, args.cy, args.fov, DEFAULT_FOV_DEG)[0]
    except IntrinsicsError as exc:
        raise CommandError(str(exc)) from None


def output_names(paths: list[Path]) -> list[str]:
    """Output name (the NAME of NAME_depth.tiff ...) of each input, distinct; CommandError when that is impossible.

    NAME is the file's stem; inputs sharing a stem are named after their path below their common folder with
    '/' and '.' as '_' (a.png, a.jpg -> a_png, a_jpg; x/f.png, y/f.png -> x_f_png, y_f_png).
    """
    resolved = [Path(os.path.abspath(p)) for p in paths]
    twice = [p for p, n in Counter(resolved).items() if n > 1]
    if twice:
        raise CommandError(f"image {twice[0]} is given more than once; each input writes its own outputs")
    names = [p.stem for p in resolved]
    for stem, count in Counter(names).items():
        if count > 1:
            group = [i for i, path in enumerate(resolved) if path.stem == stem]
            common = Path(os.path.commonpath([resolved[i] for i in group]))
            for i in group:
                names[i] = "_".join(resolved[i].relative_to(common).parts).replace(".", "_")
    clash = [name for name, count in Counter(names).items() if count > 1]
    if clash:
        inputs = [str(p) for p, name in zip(paths, names, strict=True) if name == clash[0]]
        raise CommandError(f"images {' and '.join(inputs)} would write the same outputs ({clash[0]}_depth...); "
                           "rename one or run them with different --out directories")
    return names


def _unreadable(path: Path) -> str:
    """Return why `path` cannot be an image file (cheap checks, before the model loads), or ''."""
    if path.is_dir():
        return f"cannot read image {path}: it is a directory, not an image file"
    if not path.is_file():
        return f"cannot read image {path}: no such file"
    if not cv2.haveImageReader(str(path)):
        return f"cannot read image {path}: not an image format OpenCV can decode"
    return ""


def _read_image(path: Path) -> tuple[np.ndarray, str]:
    """Decode an image file as the node decodes a CompressedImage: (H, W[, C]) array and its encoding."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # a damaged file: our one line, not OpenCV's too
    try:
        return image_codec.decode_encoded(np.fromfile(path, np.uint8), f"file {path.name}")
    finally:
        cv2.utils.logging.setLogLevel(level)


def _frames(paths: list[Path], names: dict[Path, str], size: int, camera_info_for):
    """Yield lists of (label, output name, FrameInput or error text) in input order, at most `size` long."""
    batch = []
    for path in paths:
        try:
            pixels, encoding = _read_image(path)
        except (OSError, ValueError) as exc:
            yield [(path, names[path], f"cannot read image {path}: {exc}")]
            continue
        height, width = pixels.shape[:2]
        batch.append((path, names[path], FrameInput(camera="files", pixels=pixels, encoding=encoding,
                                                    camera_info=camera_info_for(width, height),
                                                    outputs=("depth", "points", "rgb"))))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def open_video(path: Path) -> cv2.VideoCapture:
    """Open a video file with OpenCV's FFmpeg reader, or raise CommandError (before the model loads)."""
    if not path.is_file():
        raise CommandError(f"cannot read video {path}: no such file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened() or not capture.grab():
        capture.release()
        raise CommandError(f"cannot read video {path}: not a video OpenCV can decode")
    capture.release()
    return cv2.VideoCapture(str(path))


def _video_frames(path: Path, capture: cv2.VideoCapture, max_frames: int, size: int, camera_info_for):
    """Yield lists of (label, output name, FrameInput) of a video's frames in order: NAME_000000, NAME_000001, ...

    Frames are OpenCV's BGR decode; a frame's stamp is its index / the container's frame rate (0 when unknown),
    so a temporal model streams them as a camera's.
    """
    fps = capture.get(cv2.CAP_PROP_FPS)
    batch, index = [], 0
    while not max_frames or index < max_frames:
        ok, pixels = capture.read()
        if not ok:
            break
        height, width = pixels.shape[:2]
        batch.append((f"{path} frame {index}", f"{path.stem}_{index:06d}",
                      FrameInput(camera="video", pixels=pixels, encoding="bgr8", stamp=index / fps if fps > 0 else 0.0,
                                 camera_info=camera_info_for(width, height), outputs=("depth", "points", "rgb"))))
        index += 1
        if len(batch) == size:
            yield batch
            batch = []
    capture.release()
    if batch:
        yield batch


def run_estimate(args: argparse.Namespace) -> int:
    """Estimate and write depth, preview and point cloud for every image or video frame; 2 when one failed."""
    camera_info_for = _camera_info_source(args)
    if args.batch < 1:
        raise CommandError(f"invalid --batch {args.batch}: must be at least 1")
    if bool(args.images) == bool(args.video):
        raise CommandError("give image files or --video FILE (one of the two)")
    if args.max_frames and not args.video:
        raise CommandError("--max-frames applies to --video only")
    if args.out.exists() and not args.out.is_dir():
        raise CommandError(f"--out {args.out} is a file; give a directory (created if needed)")
    options = replace(frame_options(args), cloud_organized=False)
    failed = 0
    if args.video:
        capture = open_video(args.video)
    else:
        names = dict(zip(args.images, output_names(args.images), strict=True))
        unreadable = [reason for reason in map(_unreadable, args.images) if reason]
        if len(unreadable) == len(args.images):
            raise CommandError("; ".join(unreadable))
        for reason in unreadable:
            print(f"{PROG}: error: {reason}", file=sys.stderr)
        failed = len(unreadable)
        images = [path for path in args.images if not _unreadable(path)]
    pipeline = FramePipeline(make_estimator(args))
    if args.fov is None and args.fx is None:
        what = "metric depth and point cloud" if pipeline.estimator.needs_focal else "point cloud"
        print(f"note: no intrinsics given, assuming a {DEFAULT_FOV_DEG:g} degree horizontal field of view; pass "
              f"--fx --fy --cx --cy or --fov for a correct {what}", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    lut = colormap_lut(options.colormap)
    model = model_provenance(pipeline.estimator, args.checkpoint)
    if args.video:
        batches = _video_frames(args.video, capture, args.max_frames, args.batch, camera_info_for)
    else:
        batches = _frames(images, names, args.batch, camera_info_for)
    frames = failed
    for batch in batches:
        frames += len(batch)
        inputs = [(label, name, item) for label, name, item in batch if isinstance(item, FrameInput)]
        for _, _, item in batch:
            if isinstance(item, str):
                failed += 1
                print(f"{PROG}: error: {item}", file=sys.stderr)
        results = pipeline.run([item for _, _, item in inputs], options)
        for (label, name, _), result in zip(inputs, results, strict=True):
            if result.problems:
                failed += 1
                print(f"{PROG}: error: {label}: " + "; ".join(p.text() for p in result.problems), file=sys.stderr)
                continue
            _write_outputs(args, label, name, result, lut, pipeline.colour_range(options), model)
    if failed:
        if frames > 1:
            what = "frames" if args.video else "images"
            print(f"{PROG}: error: {failed} of {frames} {what} could not be processed (see above)", file=sys.stderr)
        return 2
    return 0


def _write_outputs(args: argparse.Namespace, label: object, name: str, result, lut,
                   colour_range: tuple[float, float], model: dict) -> None:
    """Write the depth file, the millimetre PNG, the preview (its footer names `model`) and the PLY of one frame."""
    depth, cloud = result.depth, result.cloud
    height, width = depth.shape
    files = result_files(result, lut, colour_range, args.format, model=model_label(model),
                         synthetic=model["synthetic"])
    outputs = {"depth": args.out / f"{name}_depth.{args.format}", "depth_mm": args.out / f"{name}_depth_mm.png",
               "preview": args.out / f"{name}_preview.png", "ply": args.out / f"{name}.ply"}
    for key, output in outputs.items():
        write_file(output, files[key])
    valid = depth[np.isfinite(depth) & (depth > 0)]
    summary = f"depth {valid.min():.2f}-{valid.max():.2f} m" if valid.size else "no valid depth"
    print(f"{label}: {width}x{height}, {summary}, {cloud.width} points -> {', '.join(map(str, outputs.values()))}")
