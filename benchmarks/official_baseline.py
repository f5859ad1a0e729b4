"""Official Depth-Anything-V2 `infer_image` (CPU preprocessing, fp32) against our DepthEstimator, in one run.

The official code is not part of this project: extract it anywhere and pass the folder with --official, e.g.
    mkdir -p /tmp/official
    git -C <Depth-Anything-V2 clone> archive HEAD metric_depth/depth_anything_v2 | tar -x -C /tmp/official
Both pipelines load the same synthetic weights (official key names) and run on the same BGR frames, timed
call by call in alternation so that load on a shared machine affects both alike. Rows:
- `official fp32`: official `infer_image(bgr)` (CPU cv2 preprocessing, fp32, returns numpy);
- `ours <precision>`: `DepthEstimator.estimate(bgr, "bgr8")` (numpy in, numpy out: upload, device preprocessing,
  network, upsample, download);
- `ours <precision> model-only`: `DepthEstimator.estimate_tensor` on a uint8 RGB tensor already on the device.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import tempfile
from pathlib import Path

import _common as common
import torch

from depth_anything_ros.models.variants import ENCODERS

_COMPOSE_SHIM = '''
class Compose:
    """Minimal stand-in for torchvision.transforms.Compose: applies the transforms in order."""

    def __init__(self, transforms):
        self.transforms = transforms

    def __call__(self, sample):
        for transform in self.transforms:
            sample = transform(sample)
        return sample
'''


def import_official(official_dir: Path, shim_dir: Path):
    """Import the official metric DepthAnythingV2 class, with a torchvision Compose shim when torchvision is absent."""
    package_root = official_dir / "metric_depth"
    if not (package_root / "depth_anything_v2" / "dpt.py").is_file():
        raise SystemExit(f"--official {official_dir}: metric_depth/depth_anything_v2/dpt.py not found")
    if importlib.util.find_spec("torchvision") is None:
        (shim_dir / "torchvision").mkdir()
        (shim_dir / "torchvision" / "__init__.py").write_text("")
        (shim_dir / "torchvision" / "transforms.py").write_text(_COMPOSE_SHIM)
        sys.path.insert(0, str(shim_dir))
    sys.path.insert(0, str(package_root))
    return importlib.import_module("depth_anything_v2.dpt").DepthAnythingV2


def official_model(cls, encoder: str, checkpoint: Path, max_depth: float, device: str) -> torch.nn.Module:
    """Build the official network as its run.py does, load `checkpoint`, fp32 on `device`."""
    spec = ENCODERS[encoder]
    model = cls(encoder=encoder, features=spec.features, out_channels=list(spec.out_channels), max_depth=max_depth)
    model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    return model.to(device).eval()


def bench_encoder(args, official_cls, encoder: str, estimator_cls) -> list[dict]:
    """Rows of official vs ours for one encoder over every requested resolution."""
    checkpoint = common.synthetic_checkpoint(encoder)
    official = official_model(official_cls, encoder, checkpoint, args.max_depth, args.device)
    kwargs = dict(checkpoint=str(checkpoint), encoder=encoder, max_depth=args.max_depth, device=args.device,
                  input_size=args.input_size)
    ours = {"fp32": estimator_cls(precision="fp32", **kwargs)}
    if args.device == "cuda":
        ours["auto+compile"] = estimator_cls(precision="auto", compile=True, **kwargs)
    rows = []
    for res in args.resolutions:
        width, height = (int(v) for v in res.split("x"))
        bgr = common.synthetic_image(height, width, seed=1)
        fns = {"official fp32": lambda bgr=bgr: official.infer_image(bgr, args.input_size)}
        rgb = torch.from_numpy(bgr[..., ::-1].copy()).permute(2, 0, 1)[None].contiguous()
        for label, est in ours.items():
            fns[f"ours {label}"] = lambda est=est, bgr=bgr: est.estimate(bgr, encoding="bgr8")
            device_rgb = rgb.to(est.device)
            fns[f"ours {label} model-only"] = lambda est=est, x=device_rgb: est.estimate_tensor(x)
        samples = common.time_interleaved(fns, args.warmup, args.iters, args.device)
        reference = official.infer_image(bgr, args.input_size)
        base_fps = common.summarise(samples["official fp32"])["fps"]
        for name, times in samples.items():
            row = {"encoder": encoder, "resolution": res, "pipeline": name, **common.summarise(times)}
            row["speedup_vs_official"] = row["fps"] / base_fps
            if name.startswith("ours") and not name.endswith("model-only"):
                diff = abs(ours[name.split(" ", 1)[1]].estimate(bgr, encoding="bgr8") - reference)
                row["max_abs_diff_m"], row["mean_abs_diff_m"] = float(diff.max()), float(diff.mean())
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, default=Path("/tmp/official"),
                        help="folder holding the extracted official repository (with metric_depth/)")
    parser.add_argument("--encoders", type=common.csv_list, default=None,
                        help="comma-separated encoders (default: vits on CPU, vits,vitl on CUDA)")
    parser.add_argument("--resolutions", type=common.csv_list, default=["640x480"],
                        help="comma-separated WxH camera resolutions")
    parser.add_argument("--input-size", type=int, default=518, help="network input size (lower bound, x14)")
    parser.add_argument("--max-depth", type=float, default=20.0)
    args = parser.parse_args(argv)
    common.apply_common(args)
    if args.encoders is None:
        args.encoders = ["vits", "vitl"] if args.device == "cuda" else ["vits"]
    if args.quick:
        args.input_size, args.resolutions = 70, ["64x48"]

    from depth_anything_ros.models.v2.estimator import DepthEstimator

    results = []
    with tempfile.TemporaryDirectory() as shim_dir:
        official_cls = import_official(args.official, Path(shim_dir))
        for encoder in args.encoders:
            results += bench_encoder(args, official_cls, encoder, DepthEstimator)
    common.print_table(results, ["encoder", "resolution", "pipeline", "p50_ms", "p95_ms", "fps",
                                 "speedup_vs_official", "max_abs_diff_m", "mean_abs_diff_m"],
                       title=f"official infer_image vs DepthEstimator.estimate ({args.device})")
    return common.write_json(args.json, "official_baseline", args, results)


if __name__ == "__main__":
    main()
