"""The CPU features `precision: auto` depends on, read from /proc/cpuinfo (Linux; no torch).

On a CPU the automatic precision is bf16 only where the CPU computes bf16 natively (AVX512-BF16 or AMX-BF16: Intel
Cooper Lake, Sapphire Rapids and later, AMD Zen 4 and later); elsewhere bf16 is emulated and fp32 stays the choice.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo: str) -> set[str]:
    """Return the feature flags of the first processor of a /proc/cpuinfo text (its x86 `flags` line)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


@lru_cache(maxsize=1)
def _this_cpuinfo() -> str:
    """Return this machine's /proc/cpuinfo text, '' where there is none (not Linux) or it cannot be read."""
    try:
        return CPUINFO.read_text(errors="replace")
    except OSError:
        return ""


def auto_cpu_precision(cpuinfo: str | None = None) -> tuple[str, str]:
    """('bf16' | 'fp32', why) that precision auto picks on a CPU; cpuinfo: a /proc/cpuinfo text, None = this one."""
    flags = cpu_flags(_this_cpuinfo() if cpuinfo is None else cpuinfo)
    native = [flag for flag in NATIVE_BF16_FLAGS if flag in flags]
    if native:
        return "bf16", f"this CPU computes bf16 natively ({', '.join(native)})"
    return "fp32", f"no native bf16 on this CPU ({' and '.join(NATIVE_BF16_FLAGS)} absent from its flags)"


def auto_cpu_precision_text() -> str:
    """Return one line saying what precision auto picks on this CPU and why."""
    precision, why = auto_cpu_precision()
    return f"precision auto on the CPU: {precision}, {why}"
