"""The container of finished payloads (image and cloud bytes): array('B'), the one rosidl keeps a uint8[] field in.

A payload made as array('B') is published by the ROS layer without another copy (ros/messages.py); bag writers and
the server read it through the buffer protocol like any bytes-like object.
"""

from __future__ import annotations

import array

import numpy as np


def byte_array(values: np.ndarray) -> array.array:
    """Return the bytes of a NumPy array (copied once; C order) as array('B')."""
    out = array.array("B")
    out.frombytes(np.ascontiguousarray(values).reshape(-1).view(np.uint8))
    return out
