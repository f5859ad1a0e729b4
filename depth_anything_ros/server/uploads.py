"""Uploaded bytes -> pixels: size checked from the header before decoding, then decoded as `estimate` decodes files."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from depth_anything_ros.frame import image_codec


class RequestError(ValueError):
    """A request that cannot be served; `status` is the HTTP status that says why (400, 413, 422, 503)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _too_large(max_pixels: int) -> str:
    """Return the reason given for an image over the pixel limit."""
    return f"over the server's limit of {max_pixels:,} pixels (serve --max-pixels); refused before decoding"


def header_size(data: bytes, max_pixels: int) -> tuple[int, int]:
    """Return (width, height) read from the image header alone; RequestError when it is no image or too large."""
    if not data:
        raise RequestError(400, "the uploaded file is empty")
    what = (f"the uploaded file ({len(data)} bytes) is not an image in a format the server reads (PNG, JPEG, TIFF, "
            "BMP, WebP, ...)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies, below
            with Image.open(io.BytesIO(data)) as image:  # reads the header only
                return image.size
    except Image.DecompressionBombError:
        raise RequestError(413, f"image header claims more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels: "
                                f"{_too_large(max_pixels)}") from None
    except UnidentifiedImageError:
        raise RequestError(400, what) from None
    except (OSError, ValueError, SyntaxError) as exc:  # a header PIL recognises but cannot read
        raise RequestError(400, f"{what}: {exc}") from None


def decode_upload(data: bytes, max_pixels: int) -> tuple[np.ndarray, str]:
    """Return ((H, W[, C]) pixels, encoding) of uploaded image bytes; RequestError when it cannot or must not be."""
    width, height = header_size(data, max_pixels)
    if width * height > max_pixels:
        raise RequestError(413, f"image of {width}x{height} = {width * height:,} pixels: {_too_large(max_pixels)}")
    try:
        return image_codec.decode_encoded(np.frombuffer(data, np.uint8), "the uploaded file")
    except image_codec.ImageDecodeError as exc:
        raise RequestError(400, str(exc)) from None
