"""ONNX Runtime and OpenVINO vs our torch fp32: depth difference and time per frame, per model, synthetic weights.

For each model: a synthetic checkpoint with the official key names, `export_onnx` for --image-size images, then
the same probe frame (models/backends/export.probe_image) through the torch fp32 estimator, the onnxruntime
estimator with --providers and the openvino estimator on the CPU at each --openvino-precisions hint (the same pre-
and post-processing; only the network call differs). Prints max and mean |diff| in metres, max |diff| per 20 m of
the depth scale (the issue's target: <= 1e-4 m per 20 m), and the frame times (full estimate, calls alternated).
DA3METRIC-LARGE needs ~10 GB of memory to export. With --float64, the networks alone (the same network input) are
also compared with the torch network in float64, which says how much of the difference is float32 rounding.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import _common as common

MODELS = {"vits": ("v2", "vits"), "vitb": ("v2", "vitb"), "vitl": ("v2", "vitl"), "da3": ("da3", "vitl")}


def checkpoint(name: str) -> Path:
    """Return the cached synthetic checkpoint of a MODELS entry (DA3: official-format safetensors)."""
    family, encoder = MODELS[name]
    if family == "v2":
        return common.synthetic_checkpoint(encoder)
    from depth_anything_ros.models.da3.checkpoint import write_synthetic_da3_checkpoint

    path = Path(tempfile.gettempdir()) / "depth_anything_ros_bench" / "synthetic_da3_0.safetensors"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_synthetic_da3_checkpoint(path, seed=0)
    return path


def measure(name: str, args, out_dir: Path) -> dict:
    """Export one model, compare ONNX Runtime and OpenVINO with torch fp32 on the probe frame and time them."""
    from depth_anything_ros.models.backends.export import compare_depth, export_onnx, probe_image
    from depth_anything_ros.models.backends.loader import load_onnx_estimator, load_openvino_estimator
    from depth_anything_ros.models.registry import load_estimator

    family, encoder = MODELS[name]
    options = {"max_depth": 20.0} if family == "v2" else {}
    reference = load_estimator(checkpoint(name), device="cpu", precision="fp32", compile=False, **options)
    exported = export_onnx(reference, out_dir / f"{name}.onnx", tuple(args.image_size))
    backend = load_onnx_estimator(exported.onnx_path, common.csv_list(args.providers), device="cpu")
    openvino = {f"ov_{hint}": load_openvino_estimator(exported.onnx_path, "CPU", hint, device="cpu")
                for hint in common.csv_list(args.openvino_precisions)}
    width, height = args.image_size
    image = probe_image(width, height)
    focal = {"focal": (0.8 * width, 0.8 * width)} if family == "da3" else {}
    want = reference.estimate(image, **focal)
    max_diff, mean_diff = compare_depth(backend.estimate(image, **focal), want)
    scale = float(reference.max_depth)
    row = {"model": f"{family} {encoder}", "scale_m": scale, "max_diff_m": max_diff, "mean_diff_m": mean_diff,
           "max_diff_per_20m": max_diff * 20.0 / scale, "export_s": exported.seconds,
           "providers": ",".join(backend.providers)}
    for key, estimator in openvino.items():
        row[f"{key}_max_diff_m"], row[f"{key}_mean_diff_m"] = compare_depth(estimator.estimate(image, **focal), want)
    calls = {"torch": reference, "ort": backend, **openvino}
    samples = common.time_interleaved({key: lambda e=estimator: e.estimate(image, **focal)
                                       for key, estimator in calls.items()}, args.warmup, args.iters)
    row["torch_fp32_ms"] = common.summarise(samples["torch"])["p50_ms"]
    row.update({f"{key}_ms": common.summarise(samples[key])["p50_ms"] for key in ("ort", *openvino)})
    if args.float64 and family == "v2":  # DA3's forward casts its taps to float32 by design: no float64 run
        row.update(float64_row(reference, backend, image, openvino))
    exported.onnx_path.unlink()
    return row


def float64_row(reference, backend, image, openvino: dict) -> dict:
    """Max |diff| of the V2 network outputs (depth at network input size) of torch fp32, ORT, OpenVINO vs float64."""
    import torch

    from depth_anything_ros.models.image import network_input_size
    from depth_anything_ros.models.v2.preprocess import network_input

    size = network_input_size(*image.shape[:2], reference.input_size)
    x = network_input(torch.from_numpy(image)[None], "rgb8", size)
    with torch.inference_mode():
        outputs = {"torch_fp32": reference.model(x), "ort": backend._forward(x),
                   **{key: estimator._forward(x) for key, estimator in openvino.items()}}
        exact = reference.model.double()(x.double()).numpy()
    reference.model.float()
    return {f"{key}_vs_fp64_m": float(abs(out.double().numpy() - exact).max()) for key, out in outputs.items()}


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--models", type=common.csv_list, default=["vits", "vitb", "vitl", "da3"],
                        help=f"comma-separated subset of {', '.join(MODELS)} (default all)")
    parser.add_argument("--image-size", nargs=2, type=int, default=(640, 480), metavar=("W", "H"))
    parser.add_argument("--providers", default="CPUExecutionProvider", help="ONNX Runtime providers, comma-separated")
    parser.add_argument("--openvino-precisions", default="f32",
                        help="OpenVINO CPU precision hints, comma-separated (f32, bf16 where the CPU runs it; '' none)")
    parser.add_argument("--float64", action="store_true", help="also compare the networks with torch float64")
    args = parser.parse_args()
    common.apply_common(args)
    if args.quick:
        args.models, args.image_size = args.models[:1], (140, 112)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            rows.append(measure(name, args, Path(tmp)))
            common.write_json(args.json, "onnx_numerics", args, rows)
    openvino = [f"ov_{hint}" for hint in common.csv_list(args.openvino_precisions)]
    common.print_table(rows, ["model", "scale_m", "max_diff_m", "mean_diff_m", "max_diff_per_20m",
                              *(f"{key}_{stat}_diff_m" for key in openvino for stat in ("max", "mean")), "export_s",
                              "torch_fp32_ms", "ort_ms", *(f"{key}_ms" for key in openvino), "providers"]
                      + ([f"{key}_vs_fp64_m" for key in ("torch_fp32", "ort", *openvino)] if args.float64 else []),
                       title=f"ONNX Runtime (max_diff, mean_diff) and OpenVINO (ov_*) vs torch fp32, "
                             f"{args.image_size[0]}x{args.image_size[1]} probe frame, synthetic weights "
                             f"({common.cpu_model()})")


if __name__ == "__main__":
    main()
