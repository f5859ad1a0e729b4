"""sensor_msgs Image / CompressedImage fields <-> numpy arrays, vectorised and duck-typed.

Works with rclpy messages and rosbags dataclasses alike: only the message fields are read
(``height, width, encoding, is_bigendian, step, data`` and ``format, data``). Nothing here imports rclpy.

Arrays returned by :func:`decode_image` for the pass-through encodings are read-only views of the message
buffer when no conversion is needed (zero copy); copy them before writing.
"""

import sys

import cv2
import numpy as np

from depth_anything_ros.frame.byte_buffers import byte_array


class ImageDecodeError(ValueError):
    """An image message that cannot be decoded; the message names the encoding or the size problem."""


# Encodings handed to the estimator as they are: encoding -> (channels, dtype).
_PASS_THROUGH = {
    'rgb8': (3, np.uint8),
    'bgr8': (3, np.uint8),
    'rgba8': (4, np.uint8),
    'bgra8': (4, np.uint8),
    'mono8': (1, np.uint8),
    'mono16': (1, np.uint16),
}

# ROS Bayer pattern -> OpenCV code. OpenCV's classic names are taken from the second row and column of the
# pattern (ROS ``bayer_rggb8`` is ``COLOR_BayerBG2RGB``, as in cv_bridge); the old names exist in every
# OpenCV 4/5 release, test_image_codec checks the mapping by recovering known colours.
_BAYER = {
    'bayer_rggb8': cv2.COLOR_BayerBG2RGB,
    'bayer_bggr8': cv2.COLOR_BayerRG2RGB,
    'bayer_gbrg8': cv2.COLOR_BayerGR2RGB,
    'bayer_grbg8': cv2.COLOR_BayerGB2RGB,
}

# Packed 4:2:2 YUV, two bytes per pixel. ROS ``yuv422`` is UYVY; ``yuv422_yuy2`` (and the alias ``yuyv``) is YUYV.
_YUV422 = {
    'yuv422': cv2.COLOR_YUV2RGB_UYVY,
    'uyvy': cv2.COLOR_YUV2RGB_UYVY,
    'yuv422_yuy2': cv2.COLOR_YUV2RGB_YUY2,
    'yuyv': cv2.COLOR_YUV2RGB_YUY2,
}

SUPPORTED_ENCODINGS = tuple(_PASS_THROUGH) + tuple(_BAYER) + tuple(_YUV422)

_LITTLE_ENDIAN_HOST = sys.byteorder == 'little'


def _as_uint8_buffer(data) -> np.ndarray:
    """Return message ``data`` (bytes, array.array, numpy, list) as a flat uint8 array, without copying buffers."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def _image_rows(msg, encoding: str, bytes_per_pixel: int) -> tuple[np.ndarray, int, int, int]:
    """Validate sizes and return (flat uint8 buffer, height, width, step) of an Image-like message."""
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f'{encoding} image has zero size (height={height}, width={width})')
    row_bytes = width * bytes_per_pixel
    if step < row_bytes:
        raise ImageDecodeError(
            f'{encoding} image step {step} is smaller than width*bytes_per_pixel = {width}*{bytes_per_pixel}'
            f' = {row_bytes}')
    buf = _as_uint8_buffer(msg.data)
    if buf.size < step * height:
        raise ImageDecodeError(
            f'{encoding} image data has {buf.size} bytes, expected step*height = {step}*{height} = {step * height}')
    return buf, height, width, step


def _pixel_view(buf: np.ndarray, height: int, width: int, step: int, channels: int, dtype) -> np.ndarray:
    """Return a (H, W[, C]) view of ``buf`` honouring the row ``step`` (no copy); dtype may be non-native."""
    dtype = np.dtype(dtype)
    shape = (height, width, channels) if channels > 1 else (height, width)
    strides = (step, channels * dtype.itemsize, dtype.itemsize)[:len(shape)]
    return np.ndarray(shape, dtype=dtype, buffer=buf, offset=0, strides=strides)


def decode_image(msg) -> tuple[np.ndarray, str]:
    """Decode an Image-like message into ((H, W[, C]) array, encoding) the estimator accepts.

    rgb8/bgr8/rgba8/bgra8/mono8 come back as zero-copy views, mono16 in native byte order, Bayer and
    packed YUV 4:2:2 are converted to rgb8 (H, W, 3) with OpenCV.
    """
    encoding = str(msg.encoding)
    key = encoding.lower()
    if key in _PASS_THROUGH:
        channels, dtype = _PASS_THROUGH[key]
        itemsize = np.dtype(dtype).itemsize
        buf, height, width, step = _image_rows(msg, encoding, channels * itemsize)
        if itemsize == 1:
            return _pixel_view(buf, height, width, step, channels, dtype), key
        big = bool(msg.is_bigendian)
        view = _pixel_view(buf, height, width, step, channels, '>u2' if big else '<u2')
        if big != _LITTLE_ENDIAN_HOST and view.flags.aligned:
            return view.view(np.uint16), key
        return view.astype(np.uint16), key
    if key in _BAYER:
        buf, height, width, step = _image_rows(msg, encoding, 1)
        mosaic = np.ascontiguousarray(_pixel_view(buf, height, width, step, 1, np.uint8))
        return cv2.cvtColor(mosaic, _BAYER[key]), 'rgb8'
    if key in _YUV422:
        buf, height, width, step = _image_rows(msg, encoding, 2)
        if width % 2:
            raise ImageDecodeError(f'{encoding} image width {width} is odd; packed YUV 4:2:2 needs an even width')
        packed = np.ascontiguousarray(_pixel_view(buf, height, width, step, 2, np.uint8))
        return cv2.cvtColor(packed, _YUV422[key]), 'rgb8'
    raise ImageDecodeError(
        f"unsupported image encoding '{encoding}'; supported: {', '.join(SUPPORTED_ENCODINGS)}")


def decode_compressed(msg) -> tuple[np.ndarray, str]:
    """Decode a CompressedImage-like message (JPEG/PNG) into ((H, W[, C]) array, encoding).

    Colour images come back as bgr8 (bgra8 with alpha), grey ones as mono8 or mono16 (16-bit PNG).
    """
    fmt = str(msg.format)
    if 'compresseddepth' in fmt.lower().replace(' ', ''):
        raise ImageDecodeError(
            f"compressedDepth images are not supported (format '{fmt}'); subscribe to the raw or the "
            "'compressed' (jpeg/png) transport")
    return decode_encoded(_as_uint8_buffer(msg.data), f"compressed image (format '{fmt}')")


def decode_encoded(buf: np.ndarray, what: str) -> tuple[np.ndarray, str]:
    """Decode JPEG/PNG (any format OpenCV reads) bytes into ((H, W[, C]) array, encoding); `what` names the source.

    Colour images come back as bgr8 (bgra8 with alpha; 16-bit colour reduced to its high byte), grey ones as mono8
    or mono16 (16-bit PNG): the rule for compressed messages and for image files alike.
    """
    if buf.size == 0:
        raise ImageDecodeError(f"{what} has no data")
    image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise ImageDecodeError(f"{what} ({buf.size} bytes) is corrupt or not an image format OpenCV decodes")
    if image.ndim == 2:
        if image.dtype == np.uint8:
            return image, 'mono8'
        if image.dtype == np.uint16:
            return image, 'mono16'
    elif image.dtype == np.uint8 and image.shape[2] == 3:
        return image, 'bgr8'
    elif image.dtype == np.uint8 and image.shape[2] == 4:
        return image, 'bgra8'
    elif image.dtype == np.uint16 and image.shape[2] in (3, 4):
        return (image[..., :3] >> 8).astype(np.uint8), 'bgr8'
    raise ImageDecodeError(f"{what} decodes to an unsupported {image.dtype} array of shape {image.shape}")


def depth_image_fields(depth: np.ndarray) -> dict:
    """Return Image fields (data: array('B')) of a 32FC1 little-endian depth image (metres) of (H, W) float32."""
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f'depth must be a (H, W) array, got shape {depth.shape}')
    height, width = depth.shape
    data = byte_array(np.asarray(depth, dtype='<f4'))
    return {'height': height, 'width': width, 'encoding': '32FC1', 'is_bigendian': 0,
            'step': 4 * width, 'data': data}


def rgb_image_fields(rgb: np.ndarray) -> dict:
    """Return Image fields of an rgb8 image from a (H, W, 3) uint8 array (data: array('B'))."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f'rgb must be a (H, W, 3) uint8 array, got {rgb.dtype} of shape {rgb.shape}')
    height, width = rgb.shape[:2]
    return {'height': height, 'width': width, 'encoding': 'rgb8', 'is_bigendian': 0,
            'step': 3 * width, 'data': byte_array(rgb)}


def depth_from_image(msg) -> np.ndarray:
    """Return a depth Image-like message as (H, W) float32 metres with NaN where invalid (REP 118).

    32FC1: metres, non-finite and <= 0 are invalid. 16UC1 (and mono16): millimetres, 0 is invalid.
    """
    encoding = str(msg.encoding)
    key = encoding.upper()
    big = bool(msg.is_bigendian)
    if key == '32FC1':
        buf, height, width, step = _image_rows(msg, encoding, 4)
        depth = _pixel_view(buf, height, width, step, 1, '>f4' if big else '<f4').astype(np.float32)
        depth[~(depth > 0) | ~np.isfinite(depth)] = np.nan
        return depth
    if key in ('16UC1', 'MONO16'):
        buf, height, width, step = _image_rows(msg, encoding, 2)
        millimetres = _pixel_view(buf, height, width, step, 1, '>u2' if big else '<u2')
        depth = millimetres.astype(np.float32) * np.float32(0.001)
        depth[millimetres == 0] = np.nan
        return depth
    raise ImageDecodeError(f"unsupported depth encoding '{encoding}'; supported: 32FC1 (metres), 16UC1 (millimetres)")


def depth_to_millimetres(depth: np.ndarray) -> np.ndarray:
    """Return (H, W) metres as uint16 millimetres (REP 118 16UC1): round half up, 0 = invalid, clipped at 65535."""
    valid = np.isfinite(depth) & (depth > 0)
    millimetres = np.floor(np.where(valid, depth, 0.0).astype(np.float64) * 1000.0 + 0.5)
    return np.clip(millimetres, 0, 65535).astype(np.uint16)
