"""Preprocessing: the official lower-bound size rule, OpenCV-exact cubic resize, colour conversion, upsampling."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from depth_anything_ros.models.image import (
    ENCODINGS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    check_image,
    network_input_size,
    to_rgb,
    to_rgb8,
)
from depth_anything_ros.models.v2.preprocess import normalise_resized, resize_cubic, resize_cubic_torch, upsample_depth

REF = np.load(Path(__file__).parent / "data" / "official_reference" / "official_reference.npz")


@pytest.mark.parametrize(
    ("h", "w", "input_size", "expected"),
    [
        (97, 131, 126, (126, 168)),  # 131 * 126/97 = 170.2 -> 12.15 patches -> 168
        (480, 640, 518, (518, 686)),  # 640 * 518/480 = 690.7 -> 49.3 patches -> 686
        (640, 480, 518, (686, 518)),
        (518, 518, 518, (518, 518)),
        (518, 539, 518, (518, 532)),  # 38.5 patches: numpy rounds half to even -> 38, not 39
        (518, 553, 518, (518, 560)),  # 39.5 -> 40
        (333, 333, 100, (112, 112)),  # 7.14 patches rounds to 98 < 100, so the ceil rule gives 112
        (1, 1, 518, (518, 518)),
    ],
)
def test_network_input_size_hand_derived(h, w, input_size, expected):
    assert network_input_size(h, w, input_size) == expected


def test_network_input_size_equals_official_outputs():
    for h, w, input_size, out_h, out_w in REF["official_sizes"]:
        assert network_input_size(int(h), int(w), int(input_size)) == (out_h, out_w), (h, w, input_size)


@pytest.mark.parametrize(("h", "w", "size"), [(0, 10, 518), (10, -1, 518), (10, 10, 13)])
def test_network_input_size_rejects_bad_arguments(h, w, size):
    with pytest.raises(ValueError):
        network_input_size(h, w, size)


@pytest.mark.parametrize(("h", "w", "out_h", "out_w"),
                         [(97, 131, 126, 168), (480, 640, 518, 686), (720, 1280, 518, 924), (600, 400, 112, 70),
                          (50, 50, 70, 70), (5, 7, 14, 28), (120, 160, 120, 686)])
def test_resize_equals_opencv_inter_cubic(h, w, out_h, out_w):
    image = np.random.default_rng(h * w).random((h, w, 3))
    official = cv2.resize(image, (out_w, out_h), interpolation=cv2.INTER_CUBIC)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    for resize in (resize_cubic, resize_cubic_torch):  # the CPU path and the one other devices use
        ours = resize(x, (out_h, out_w))
        assert ours.shape == (1, 3, out_h, out_w) and ours.dtype == torch.float32
        assert np.abs(ours[0].permute(1, 2, 0).numpy() - official).max() < 2e-6


def test_resize_to_the_same_size_is_identity():
    x = torch.rand(1, 3, 14, 28)
    assert torch.equal(resize_cubic(x, (14, 28)), x)
    assert torch.equal(resize_cubic_torch(x, (14, 28)), x)


def test_normalise_applies_imagenet_statistics():
    rgb = torch.full((1, 3, 28, 28), 0.5)
    x = normalise_resized(rgb, (28, 28))
    expected = (0.5 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(x[0, :, 0, 0], expected)
    assert normalise_resized(rgb, (14, 14), torch.bfloat16).dtype == torch.bfloat16


def _pixels():
    rgb = np.random.default_rng(0).integers(0, 256, (1, 5, 7, 3), dtype=np.uint8)
    return rgb, torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255.0


def _colour_encodings(rgb: np.ndarray) -> dict[str, torch.Tensor]:
    """Return the (B, H, W, C) raw tensors of `rgb` in every colour encoding."""
    alpha = np.full(rgb.shape[:-1] + (1,), 7, np.uint8)
    raw = {"rgb8": rgb, "bgr8": rgb[..., ::-1], "rgba8": np.concatenate([rgb, alpha], -1),
           "bgra8": np.concatenate([rgb[..., ::-1], alpha], -1)}
    return {encoding: torch.from_numpy(np.ascontiguousarray(array)) for encoding, array in raw.items()}


def test_colour_encodings_give_the_same_rgb():
    rgb, expected = _pixels()
    for encoding, array in _colour_encodings(rgb).items():
        out = to_rgb(array, encoding)
        assert out.shape == (1, 3, 5, 7) and out.dtype == torch.float32
        assert torch.equal(out, expected), encoding


def test_mono_encodings_replicate_to_three_channels():
    gray = np.arange(35, dtype=np.uint8).reshape(1, 5, 7) * 7
    out8 = to_rgb(torch.from_numpy(gray), "mono8")
    assert out8.shape == (1, 3, 5, 7)
    assert torch.equal(out8[0, 0], torch.from_numpy(gray[0]).float() / 255.0)
    assert torch.equal(out8[0, 0], out8[0, 2])
    out16 = to_rgb(torch.from_numpy(gray.astype(np.uint16) * 257), "mono16")
    assert torch.allclose(out16, out8, atol=1e-7)


def test_to_rgb8_gives_the_cloud_colours_of_every_encoding():
    rgb, _ = _pixels()
    for encoding, array in _colour_encodings(rgb).items():
        out = to_rgb8(array, encoding)
        assert out.dtype == torch.uint8 and torch.equal(out.permute(0, 2, 3, 1), torch.from_numpy(rgb)), encoding
    gray = np.arange(35, dtype=np.uint8).reshape(1, 5, 7) * 7
    for encoding, array in (("mono8", gray), ("mono16", gray.astype(np.uint16) * 257)):
        out = to_rgb8(torch.from_numpy(array), encoding)
        assert out.shape == (1, 3, 5, 7) and out.dtype == torch.uint8
        assert all(torch.equal(out[0, c], torch.from_numpy(gray[0])) for c in range(3)), encoding


@pytest.mark.parametrize(
    ("array", "encoding", "message"),
    [
        (np.zeros((4, 4, 3), np.uint8), "yuv422", "unsupported encoding"),
        (np.zeros((4, 4, 3), np.uint16), "rgb8", "must be uint8, got uint16"),
        (np.zeros((4, 4), np.uint8), "rgb8", r"must be \(H, W, 3\)"),
        (np.zeros((4, 4, 3), np.uint8), "rgba8", r"must be \(H, W, 4\)"),
        (np.zeros((4, 4, 3), np.uint8), "mono8", r"must be \(H, W\)"),
        (np.zeros((0, 4, 3), np.uint8), "bgr8", "H, W > 0"),
        (np.zeros((4, 4), np.float32), "mono16", "must be uint16"),
        ([[1, 2]], "mono8", "numpy array"),
    ],
)
def test_check_image_names_the_problem(array, encoding, message):
    with pytest.raises(ValueError, match=message):
        check_image(array, encoding)


def test_check_image_accepts_every_encoding():
    for encoding, (channels, dtype, _, _) in ENCODINGS.items():
        shape = (3, 5) if channels == 1 else (3, 5, channels)
        check_image(np.zeros(shape, dtype), encoding)
    check_image(np.zeros((3, 5, 1), np.uint8), "mono8")


def test_upsample_depth_is_bilinear_align_corners():
    depth = torch.tensor([[[0.0, 1.0], [2.0, 3.0]]], dtype=torch.bfloat16)
    out = upsample_depth(depth, (3, 5))
    assert out.shape == (1, 3, 5) and out.dtype == torch.float32
    assert out[0, 0, 0] == 0 and out[0, -1, -1] == 3  # corners kept exactly
    assert torch.allclose(out[0, 1], torch.tensor([1.0, 1.25, 1.5, 1.75, 2.0]))
