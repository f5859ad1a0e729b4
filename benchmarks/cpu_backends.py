"""CPU backends per encoder: torch fp32, torch bf16 and ONNX Runtime CPU on one frame, time and depth vs fp32.

For each encoder (synthetic weights, official key names): the torch estimator in fp32 and in bf16, and the
onnxruntime estimator (models/backends, CPUExecutionProvider) of the fp32 network exported for the frame's size;
the same --image-size frame through each, calls alternated (median of --iters), and the max and mean |depth
difference| of bf16 and ONNX Runtime against fp32 in metres (max depth 20 m). The title names the CPU, its
bf16-related flags and what `precision: auto` picks on it (models/cpu_features.py).

    python benchmarks/cpu_backends.py [--encoders vits,vitb] [--iters 10] [--input-size 518] [--json out.json]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import _common as common
import torch

FLAGS_SHOWN = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")


def measure(encoder: str, args, out_dir: Path) -> dict:
    """Time torch fp32 / bf16 and ONNX Runtime CPU on one frame of one encoder; differences against fp32."""
    from depth_anything_ros.models.backends.export import compare_depth, export_onnx, probe_image
    from depth_anything_ros.models.backends.loader import load_onnx_estimator
    from depth_anything_ros.models.registry import load_estimator

    options = {"device": "cpu", "compile": False, "max_depth": 20.0, "input_size": args.input_size}
    fp32 = load_estimator(common.synthetic_checkpoint(encoder), precision="fp32", **options)
    bf16 = load_estimator(common.synthetic_checkpoint(encoder), precision="bf16", **options)
    width, height = args.image_size
    exported = export_onnx(fp32, out_dir / f"{encoder}.onnx", (width, height))
    ort = load_onnx_estimator(exported.onnx_path, ["CPUExecutionProvider"], device="cpu")
    image = probe_image(width, height)
    reference = fp32.estimate(image)
    bf16_max, bf16_mean = compare_depth(bf16.estimate(image), reference)
    ort_max, ort_mean = compare_depth(ort.estimate(image), reference)
    samples = common.time_interleaved({"fp32": lambda: fp32.estimate(image), "bf16": lambda: bf16.estimate(image),
                                       "ort": lambda: ort.estimate(image)}, args.warmup, args.iters)
    ms = {name: common.summarise(values)["p50_ms"] for name, values in samples.items()}
    exported.onnx_path.unlink()
    return {"encoder": encoder, "frame": f"{width}x{height}", "input_size": args.input_size,
            "torch_fp32_ms": ms["fp32"], "torch_bf16_ms": ms["bf16"], "ort_cpu_ms": ms["ort"],
            "bf16_speedup": ms["fp32"] / ms["bf16"], "ort_speedup": ms["fp32"] / ms["ort"],
            "bf16_max_diff_m": bf16_max, "bf16_mean_diff_m": bf16_mean, "ort_max_diff_m": ort_max,
            "ort_mean_diff_m": ort_mean}


def main() -> None:
    from depth_anything_ros.models.cpu_features import auto_cpu_precision_text, cpu_flags

    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--encoders", type=common.csv_list, default=["vits"], help="comma-separated (default vits)")
    parser.add_argument("--image-size", nargs=2, type=int, default=(640, 480), metavar=("W", "H"))
    parser.add_argument("--input-size", type=int, default=518, help="network input short side")
    args = parser.parse_args()
    common.apply_common(args)
    if args.quick:
        args.encoders, args.image_size, args.input_size = args.encoders[:1], (140, 112), 70
    try:
        flags = cpu_flags(Path("/proc/cpuinfo").read_text())
    except OSError:
        flags = set()
    shown = " ".join(flag for flag in FLAGS_SHOWN if flag in flags) or "none of " + " ".join(FLAGS_SHOWN)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for encoder in args.encoders:
            rows.append(measure(encoder, args, Path(tmp)))
            common.write_json(args.json, "cpu_backends", args, rows, {"cpu_flags": shown,
                                                                    "auto": auto_cpu_precision_text()})
    common.print_table(rows, ["encoder", "frame", "input_size", "torch_fp32_ms", "torch_bf16_ms", "ort_cpu_ms",
                              "bf16_speedup", "ort_speedup", "bf16_max_diff_m", "bf16_mean_diff_m",
                              "ort_max_diff_m", "ort_mean_diff_m"],
                       title=f"CPU backends, median of {args.iters} alternated calls, synthetic weights "
                             f"({common.cpu_model()}, torch threads {torch.get_num_threads()}, flags: {shown}; "
                             f"{auto_cpu_precision_text()})")


if __name__ == "__main__":
    main()
