"""The network input-size rule every family and every front-end states the same way (imports nothing heavy)."""

from __future__ import annotations

from numbers import Integral

PATCH = 14
MAX_INPUT_SIZE = PATCH * (4096 // PATCH)  # 4088, the largest multiple of 14 up to 4096
INPUT_SIZE_RULE = f"a multiple of {PATCH} from {PATCH} to {MAX_INPUT_SIZE}"


def check_input_size(input_size) -> int:
    """Return input_size as an int, or raise ValueError stating INPUT_SIZE_RULE."""
    if isinstance(input_size, bool) or not isinstance(input_size, Integral) or \
            not PATCH <= input_size <= MAX_INPUT_SIZE or input_size % PATCH:
        raise ValueError(f"input size must be {INPUT_SIZE_RULE} (518 is V2's official one, 504 DA3's), "
                         f"got {input_size!r}")
    return int(input_size)
