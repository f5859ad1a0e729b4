"""precision auto on the CPU: bf16 where the CPU computes it natively, fp32 elsewhere; the CLI says which (stdout)."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_anything_ros.cli import main
from depth_anything_ros.models.cpu_features import auto_cpu_precision

COMMON = ("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU\n"
          "flags\t\t: fpu sse sse2 avx avx2 fma avx512f avx512bw avx512vl{extra}\nbogomips\t: 4000.00\n\n"
          "processor\t: 1\nflags\t\t: fpu sse avx512_bf16 amx_bf16\n")


@pytest.mark.parametrize("extra, expected, named", [
    (" avx512_bf16", "bf16", "avx512_bf16"),  # Cooper Lake, Zen 4
    (" amx_bf16 amx_tile", "bf16", "amx_bf16"),  # Sapphire Rapids
    (" avx512_bf16 amx_bf16", "bf16", "avx512_bf16, amx_bf16"),
    ("", "fp32", "avx512_bf16 and amx_bf16 absent"),  # AVX-512 without bf16: emulated, fp32 stays
    (" avx512_vnni bf16", "fp32", "avx512_bf16 and amx_bf16 absent"),  # other names do not count
])
def test_auto_picks_bf16_only_with_a_native_bf16_flag_of_the_first_processor(extra, expected, named):
    precision, why = auto_cpu_precision(COMMON.format(extra=extra))
    assert precision == expected and named in why


def test_a_cpuinfo_without_flags_gives_fp32():
    assert auto_cpu_precision("")[0] == "fp32"
    assert auto_cpu_precision("processor\t: 0\nFeatures\t: fp asimd bf16\n")[0] == "fp32"  # no x86 flags line


def test_the_cli_states_the_choice_for_this_machine(synthetic_vits_checkpoint, tmp_path, capsys):
    flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("flags")), [])
    expected = "bf16" if {"avx512_bf16", "amx_bf16"} & set(flags) else "fp32"  # read here, not by the code
    image = tmp_path / "room.png"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    code = main(["estimate", str(image), "--checkpoint", str(synthetic_vits_checkpoint), "--model-max-depth", "20",
                 "--input-size", "70", "--device", "cpu", "--out", str(tmp_path), "--format", "npy"])
    out = capsys.readouterr().out
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("precision auto on the CPU"))
    assert line.startswith(f"precision auto on the CPU: {expected}, ")
    code = main(["estimate", str(image), "--checkpoint", str(synthetic_vits_checkpoint), "--model-max-depth", "20",
                 "--input-size", "70", "--device", "cpu", "--out", str(tmp_path), "--format", "npy",
                 "--precision", "fp32"])
    assert code == 0 and "precision auto" not in capsys.readouterr().out  # an explicit precision is not announced
