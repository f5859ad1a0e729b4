"""CPU backends per encoder: torch fp32 and bf16, ONNX Runtime and OpenVINO on one frame, time and depth vs fp32.

For each encoder (synthetic weights, official key names): the torch estimator in fp32 and in bf16, the onnxruntime
estimator (models/backends, CPUExecutionProvider) and the openvino estimator (CPU device, precision hint f32, and
bf16 where OpenVINO lists BF16 among the CPU's optimization capabilities; else that column is empty and the title
says why) of the fp32 network exported for the frame's size; the same --image-size frame through each, calls
alternated (median of --iters), and the max and mean |depth difference| of each against torch fp32 in metres (max
depth 20 m). The title names the CPU, its bf16-related flags, what `precision: auto` picks on it
(models/cpu_features.py) and OpenVINO's capabilities for it.

    python benchmarks/cpu_backends.py [--encoders vits,vitb] [--iters 10] [--input-size 518] [--json out.json]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import _common as common
import torch

FLAGS_SHOWN = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")


def openvino_cpu_hints() -> tuple[list[str], str]:
    """Return the OpenVINO precision hints the CPU runs natively (f32 always) and its capabilities as text."""
    import openvino

    from depth_anything_ros.models.backends.choices import OPENVINO_PRECISIONS

    capabilities = list(openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    hints = [hint for hint in ("f32", "bf16") if OPENVINO_PRECISIONS[hint] in capabilities]
    return hints, f"OpenVINO {openvino.__version__} CPU capabilities {','.join(capabilities)}"


def measure(encoder: str, args, out_dir: Path, openvino_hints: list[str]) -> dict:
    """Time torch fp32 / bf16, ONNX Runtime CPU and OpenVINO CPU on one frame of one encoder; differences vs fp32."""
    from depth_anything_ros.models.backends.export import compare_depth, export_onnx, probe_image
    from depth_anything_ros.models.backends.loader import load_onnx_estimator, load_openvino_estimator
    from depth_anything_ros.models.registry import load_estimator

    options = {"device": "cpu", "compile": False, "max_depth": 20.0, "input_size": args.input_size}
    fp32 = load_estimator(common.synthetic_checkpoint(encoder), precision="fp32", **options)
    bf16 = load_estimator(common.synthetic_checkpoint(encoder), precision="bf16", **options)
    width, height = args.image_size
    exported = export_onnx(fp32, out_dir / f"{encoder}.onnx", (width, height))
    estimators = {"bf16": bf16, "ort": load_onnx_estimator(exported.onnx_path, ["CPUExecutionProvider"],
                                                           device="cpu")}
    for hint in openvino_hints:
        estimators[f"ov_{hint}"] = load_openvino_estimator(exported.onnx_path, "CPU", hint, device="cpu")
    image = probe_image(width, height)
    reference = fp32.estimate(image)
    row = {"encoder": encoder, "frame": f"{width}x{height}", "input_size": args.input_size}
    for name, estimator in estimators.items():
        row[f"{name}_max_diff_m"], row[f"{name}_mean_diff_m"] = compare_depth(estimator.estimate(image), reference)
    calls = {"fp32": fp32, **estimators}
    samples = common.time_interleaved({name: lambda e=estimator: e.estimate(image)
                                       for name, estimator in calls.items()}, args.warmup, args.iters)
    ms = {name: common.summarise(values)["p50_ms"] for name, values in samples.items()}
    exported.onnx_path.unlink()
    row["torch_fp32_ms"] = ms["fp32"]
    for name in estimators:
        row[f"{name}_ms"], row[f"{name}_speedup"] = ms[name], ms["fp32"] / ms[name]
    return row


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
    openvino_hints, openvino_text = openvino_cpu_hints()
    if "bf16" not in openvino_hints:
        openvino_text += " (no BF16: OpenVINO would ignore a bf16 hint here, the ov_bf16 columns stay empty)"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for encoder in args.encoders:
            rows.append(measure(encoder, args, Path(tmp), openvino_hints))
            common.write_json(args.json, "cpu_backends", args, rows, {"cpu_flags": shown,
                                                                    "auto": auto_cpu_precision_text(),
                                                                    "openvino": openvino_text})
    names = ("bf16", "ort", "ov_f32", "ov_bf16")
    common.print_table(rows, ["encoder", "frame", "input_size", "torch_fp32_ms",
                              *(f"{name}_ms" for name in names), *(f"{name}_speedup" for name in names),
                              *(f"{name}_{stat}_diff_m" for name in names for stat in ("max", "mean"))],
                       title=f"CPU backends, median of {args.iters} alternated calls, synthetic weights "
                             f"({common.cpu_model()}, torch threads {torch.get_num_threads()}, flags: {shown}; "
                             f"{auto_cpu_precision_text()}; {openvino_text})")


if __name__ == "__main__":
    main()
