"""image_codec against real sensor_msgs messages (rclpy) and rosbags dataclasses."""

import cv2
import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from depth_anything_ros.frame.image_codec import (
    SUPPORTED_ENCODINGS,
    ImageDecodeError,
    decode_compressed,
    decode_image,
    depth_from_image,
    depth_image_fields,
    rgb_image_fields,
)

sensor_msgs = pytest.importorskip('sensor_msgs.msg')
TYPESTORE = get_typestore(Stores.ROS2_KILTED)
FLAVOURS = ('rclpy', 'rosbags')


def _header(flavour):
    if flavour == 'rclpy':
        return None
    types = TYPESTORE.types
    return types['std_msgs/msg/Header'](stamp=types['builtin_interfaces/msg/Time'](sec=1, nanosec=2), frame_id='cam')


def make_image(flavour, height, width, encoding, step, data, is_bigendian=0):
    """Image message of either flavour; ``data`` bytes."""
    if flavour == 'rclpy':
        return sensor_msgs.Image(height=height, width=width, encoding=encoding, is_bigendian=is_bigendian,
                                 step=step, data=bytes(data))
    return TYPESTORE.types['sensor_msgs/msg/Image'](
        header=_header(flavour), height=height, width=width, encoding=encoding, is_bigendian=is_bigendian,
        step=step, data=np.frombuffer(bytes(data), dtype=np.uint8).copy())


def make_compressed(flavour, fmt, data):
    if flavour == 'rclpy':
        return sensor_msgs.CompressedImage(format=fmt, data=bytes(data))
    return TYPESTORE.types['sensor_msgs/msg/CompressedImage'](
        header=_header(flavour), format=fmt, data=np.frombuffer(bytes(data), dtype=np.uint8).copy())


def padded_rows(array: np.ndarray, pad: int, dtype=None) -> tuple[bytes, int]:
    """Serialise (H, W[, C]) rows with ``pad`` garbage bytes after each row; returns (data, step)."""
    rows = array.reshape(array.shape[0], -1)
    raw = np.ascontiguousarray(rows.astype(dtype) if dtype else rows).view(np.uint8).reshape(array.shape[0], -1)
    garbage = np.full((array.shape[0], pad), 0xAB, dtype=np.uint8)
    return np.concatenate([raw, garbage], axis=1).tobytes(), raw.shape[1] + pad


def rng_image(shape, dtype=np.uint8, seed=0):
    info = np.iinfo(dtype)
    return np.random.default_rng(seed).integers(0, info.max, size=shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize('flavour', FLAVOURS)
@pytest.mark.parametrize('pad', [0, 5])
@pytest.mark.parametrize('encoding,channels', [('rgb8', 3), ('bgr8', 3), ('rgba8', 4), ('bgra8', 4), ('mono8', 1)])
def test_8bit_pass_through_honours_step(flavour, pad, encoding, channels):
    shape = (7, 11, channels) if channels > 1 else (7, 11)
    image = rng_image(shape)
    data, step = padded_rows(image, pad)
    array, out_encoding = decode_image(make_image(flavour, 7, 11, encoding, step, data))
    assert out_encoding == encoding
    assert array.shape == shape and array.dtype == np.uint8
    np.testing.assert_array_equal(array, image)


def test_unpadded_rosbags_image_is_zero_copy():
    image = rng_image((6, 8, 3))
    msg = make_image('rosbags', 6, 8, 'rgb8', 24, image.tobytes())
    array, _ = decode_image(msg)
    assert np.shares_memory(array, msg.data)


@pytest.mark.parametrize('flavour', FLAVOURS)
@pytest.mark.parametrize('big_endian', [False, True])
@pytest.mark.parametrize('pad', [0, 3, 4])
def test_mono16_endianness_and_padding(flavour, big_endian, pad):
    image = rng_image((5, 9), np.uint16, seed=3)
    data, step = padded_rows(image, pad, dtype='>u2' if big_endian else '<u2')
    array, encoding = decode_image(make_image(flavour, 5, 9, 'mono16', step, data, is_bigendian=int(big_endian)))
    assert encoding == 'mono16'
    assert array.dtype == np.uint16 and array.dtype.isnative
    np.testing.assert_array_equal(array, image)


# Flat colour blocks: away from block edges demosaicing must give back the exact colour.
BLOCK_COLOURS = np.array([[200, 40, 30], [20, 180, 60], [30, 60, 220], [250, 250, 10]], dtype=np.uint8)
PATTERN_OFFSETS = {  # ROS pattern -> which channel sits at (row%2, col%2)
    'bayer_rggb8': ((0, 1), (1, 2)),
    'bayer_bggr8': ((2, 1), (1, 0)),
    'bayer_gbrg8': ((1, 2), (0, 1)),
    'bayer_grbg8': ((1, 0), (2, 1)),
}


def bayer_mosaic(rgb: np.ndarray, encoding: str) -> np.ndarray:
    """Sample (H, W, 3) RGB with the ROS Bayer pattern ``encoding`` into a (H, W) mosaic."""
    pattern = np.array(PATTERN_OFFSETS[encoding])
    rows, cols = np.indices(rgb.shape[:2])
    channel = pattern[rows % 2, cols % 2]
    return np.take_along_axis(rgb, channel[..., None], axis=2)[..., 0]


@pytest.mark.parametrize('flavour', FLAVOURS)
@pytest.mark.parametrize('encoding', sorted(PATTERN_OFFSETS))
def test_bayer_recovers_colours_of_flat_regions(flavour, encoding):
    rgb = np.repeat(np.repeat(BLOCK_COLOURS.reshape(2, 2, 3), 16, axis=0), 16, axis=1)  # (32, 32, 3)
    data, step = padded_rows(bayer_mosaic(rgb, encoding), 3)
    array, out_encoding = decode_image(make_image(flavour, 32, 32, encoding, step, data))
    assert out_encoding == 'rgb8' and array.shape == (32, 32, 3)
    for by in range(2):
        for bx in range(2):
            inner = array[by * 16 + 4:by * 16 + 12, bx * 16 + 4:bx * 16 + 12].reshape(-1, 3).astype(int)
            assert np.abs(inner - BLOCK_COLOURS[by * 2 + bx]).max() <= 2, (encoding, by, bx, inner[0])


def bt601_yuv(rgb: np.ndarray) -> np.ndarray:
    """Video-range BT.601 YUV of RGB colours (what OpenCV's YUV 4:2:2 conversions invert)."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    return np.round(np.stack([y, u, v], -1)).astype(np.uint8)


@pytest.mark.parametrize('flavour', FLAVOURS)
@pytest.mark.parametrize('encoding', ['yuv422', 'yuv422_yuy2', 'yuyv'])
def test_yuv422_known_colours(flavour, encoding):
    colours = np.array([[200, 40, 30], [30, 60, 220], [20, 180, 60], [128, 128, 128]], dtype=np.uint8)
    height, width = 4, 8
    rgb = np.repeat(colours[:, None, :], width, axis=1)  # one colour per row
    y, u, v = np.moveaxis(bt601_yuv(rgb), -1, 0)
    packed = np.empty((height, width, 2), dtype=np.uint8)
    packed[..., 0 if encoding != 'yuv422' else 1] = y
    chroma = np.empty((height, width), dtype=np.uint8)
    chroma[:, 0::2], chroma[:, 1::2] = u[:, 0::2], v[:, 1::2]
    packed[..., 1 if encoding != 'yuv422' else 0] = chroma
    data, step = padded_rows(packed, 4)
    array, out_encoding = decode_image(make_image(flavour, height, width, encoding, step, data))
    assert out_encoding == 'rgb8' and array.shape == (height, width, 3)
    assert np.abs(array.astype(int) - rgb.astype(int)).max() <= 3


@pytest.mark.parametrize('flavour', FLAVOURS)
def test_size_errors(flavour):
    with pytest.raises(ImageDecodeError, match='zero size'):
        decode_image(make_image(flavour, 0, 4, 'rgb8', 12, b''))
    with pytest.raises(ImageDecodeError, match='step 10 is smaller'):
        decode_image(make_image(flavour, 2, 4, 'rgb8', 10, bytes(24)))
    with pytest.raises(ImageDecodeError, match='23 bytes, expected step\\*height'):
        decode_image(make_image(flavour, 2, 4, 'rgb8', 12, bytes(23)))
    with pytest.raises(ImageDecodeError, match='odd'):
        decode_image(make_image(flavour, 2, 3, 'yuv422', 6, bytes(12)))


@pytest.mark.parametrize('flavour', FLAVOURS)
def test_unsupported_encoding_lists_supported(flavour):
    with pytest.raises(ImageDecodeError) as err:
        decode_image(make_image(flavour, 2, 2, '32FC1', 8, bytes(16)))
    assert "'32FC1'" in str(err.value)
    assert all(name in str(err.value) for name in SUPPORTED_ENCODINGS)


def smooth_bgr(height=24, width=32):
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([xx * 6, yy * 8, 100 + xx + yy], -1).astype(np.uint8)


@pytest.mark.parametrize('flavour', FLAVOURS)
@pytest.mark.parametrize('fmt', ['jpeg', 'rgb8; jpeg compressed bgr8'])
def test_compressed_jpeg(flavour, fmt):
    bgr = smooth_bgr()
    ok, encoded = cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    array, encoding = decode_compressed(make_compressed(flavour, fmt, encoded.tobytes()))
    assert encoding == 'bgr8' and array.shape == bgr.shape
    assert np.abs(array.astype(int) - bgr.astype(int)).mean() < 3


@pytest.mark.parametrize('flavour', FLAVOURS)
@pytest.mark.parametrize('image,fmt,expected', [
    (smooth_bgr(), 'bgr8; png compressed bgr8', 'bgr8'),
    (smooth_bgr()[..., 0], 'mono8; png compressed mono8', 'mono8'),
    (rng_image((9, 7), np.uint16), 'png', 'mono16'),
])
def test_compressed_png_is_exact(flavour, image, fmt, expected):
    ok, encoded = cv2.imencode('.png', image)
    assert ok
    array, encoding = decode_compressed(make_compressed(flavour, fmt, encoded.tobytes()))
    assert encoding == expected
    np.testing.assert_array_equal(array, image)


@pytest.mark.parametrize('flavour', FLAVOURS)
def test_compressed_png_alpha_and_16bit_colour(flavour):
    bgra = np.dstack([smooth_bgr(), np.full((24, 32), 200, np.uint8)])
    array, encoding = decode_compressed(make_compressed(flavour, 'png', cv2.imencode('.png', bgra)[1].tobytes()))
    assert encoding == 'bgra8'
    np.testing.assert_array_equal(array, bgra)
    bgr16 = smooth_bgr().astype(np.uint16) * 257
    array, encoding = decode_compressed(make_compressed(flavour, 'png', cv2.imencode('.png', bgr16)[1].tobytes()))
    assert encoding == 'bgr8'
    np.testing.assert_array_equal(array, smooth_bgr())


@pytest.mark.parametrize('flavour', FLAVOURS)
def test_compressed_errors(flavour):
    ok, encoded = cv2.imencode('.jpg', smooth_bgr())
    with pytest.raises(ImageDecodeError, match='corrupt'):
        decode_compressed(make_compressed(flavour, 'jpeg', b'\x00garbage' + encoded.tobytes()[:40]))
    with pytest.raises(ImageDecodeError, match='no data'):
        decode_compressed(make_compressed(flavour, 'jpeg', b''))
    with pytest.raises(ImageDecodeError, match='compressedDepth'):
        decode_compressed(make_compressed(flavour, '16UC1; compressedDepth png', encoded.tobytes()))


@pytest.mark.parametrize('flavour', FLAVOURS)
def test_depth_fields_round_trip(flavour):
    depth = np.random.default_rng(1).uniform(0.1, 30.0, size=(6, 10)).astype(np.float32)
    fields = depth_image_fields(depth)
    assert (fields['encoding'], fields['is_bigendian'], fields['step']) == ('32FC1', 0, 40)
    msg = make_image(flavour, fields['height'], fields['width'], fields['encoding'], fields['step'], fields['data'])
    np.testing.assert_array_equal(depth_from_image(msg), depth)
    # decode(encode(x)) == x also through rclpy's own field setters
    np.testing.assert_array_equal(depth_from_image(sensor_msgs.Image(**fields)), depth)


@pytest.mark.parametrize('flavour', FLAVOURS)
def test_rgb_fields_round_trip(flavour):
    rgb = rng_image((5, 4, 3))
    fields = rgb_image_fields(rgb)
    msg = make_image(flavour, fields['height'], fields['width'], fields['encoding'], fields['step'], fields['data'])
    array, encoding = decode_image(msg)
    assert encoding == 'rgb8'
    np.testing.assert_array_equal(array, rgb)


@pytest.mark.parametrize('flavour', FLAVOURS)
@pytest.mark.parametrize('big_endian', [False, True])
def test_depth_from_32fc1_marks_invalid(flavour, big_endian):
    depth = np.array([[1.5, 0.0, -2.0], [np.inf, np.nan, 80.25]], dtype=np.float32)
    data, step = padded_rows(depth, 4, dtype='>f4' if big_endian else '<f4')
    out = depth_from_image(make_image(flavour, 2, 3, '32FC1', step, data, is_bigendian=int(big_endian)))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[1.5, np.nan, np.nan], [np.nan, np.nan, 80.25]])


@pytest.mark.parametrize('flavour', FLAVOURS)
@pytest.mark.parametrize('big_endian', [False, True])
def test_depth_from_16uc1_millimetres(flavour, big_endian):
    millimetres = np.array([[0, 1, 1500], [65535, 0, 2345]], dtype=np.uint16)
    data, step = padded_rows(millimetres, 2, dtype='>u2' if big_endian else '<u2')
    out = depth_from_image(make_image(flavour, 2, 3, '16UC1', step, data, is_bigendian=int(big_endian)))
    expected = np.where(millimetres == 0, np.nan, millimetres.astype(np.float32) * np.float32(0.001))
    np.testing.assert_array_equal(out, expected.astype(np.float32))


def test_depth_from_image_rejects_other_encodings():
    with pytest.raises(ImageDecodeError, match="'rgb8'.*32FC1"):
        depth_from_image(make_image('rclpy', 1, 1, 'rgb8', 3, bytes(3)))
