"""Independent reader of the binary little-endian PLY files the CLI writes (for tests)."""

from pathlib import Path

import numpy as np


def read_ply(path: Path) -> tuple[list[str], np.ndarray]:
    """Return (header lines, structured vertex array) of a binary little-endian PLY file."""
    raw = Path(path).read_bytes()
    end = raw.index(b"end_header\n") + len(b"end_header\n")
    header = raw[:end].decode("ascii").splitlines()
    assert header[:2] == ["ply", "format binary_little_endian 1.0"]
    count = int(next(line for line in header if line.startswith("element vertex")).split()[-1])
    types = {"float": "<f4", "uchar": "u1"}
    dtype = [(line.split()[2], types[line.split()[1]]) for line in header if line.startswith("property")]
    vertices = np.frombuffer(raw[end:], dtype=dtype)
    assert len(vertices) == count
    return header, vertices
