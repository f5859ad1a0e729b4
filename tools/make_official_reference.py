"""Generate test/data/official_reference/official_reference.npz by running the OFFICIAL Depth-Anything-V2 code.

Usage (the official repository is NOT part of this project; check it out anywhere outside it):
    git clone https://github.com/DepthAnything/Depth-Anything-V2 /tmp/official
    PYTHONPATH=. python tools/make_official_reference.py --official /tmp/official

The official code is imported from --official at run time; only its outputs are written. Weights are
`synthetic_state_dict(encoder, seed=0)`, inputs are small synthetic images stored in the same file.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch

from depth_anything_ros.models.image import network_input_size
from depth_anything_ros.models.synthetic_weights import synthetic_state_dict
from depth_anything_ros.models.v2.preprocess import normalise_resized
from depth_anything_ros.models.variants import ENCODERS

OUT = Path(__file__).resolve().parents[1] / "test" / "data" / "official_reference" / "official_reference.npz"
SMALL_INPUT = 70
FULL_INPUT = 518
SIZE_CASES = [  # (height, width, input_size): odd sizes, both orientations, a round-half-to-even tie (539 / 14 = 38.5)
    (97, 131, 126), (131, 97, 126), (480, 640, 518), (640, 480, 518), (720, 1280, 518), (1080, 1920, 518),
    (518, 518, 518), (518, 539, 518), (518, 553, 518), (120, 160, 518), (100, 100, 70), (600, 400, 70),
    (479, 641, 518), (37, 500, 518), (13, 13, 14), (7, 3000, 14), (1, 1, 518), (333, 333, 100),
]
PROBE_KEYS = ("pretrained.pos_embed", "pretrained.blocks.0.attn.qkv.weight", "depth_head.scratch.output_conv2.2.weight")


def synthetic_scene(height: int, width: int) -> np.ndarray:
    """Deterministic BGR uint8 test image (H, W, 3): gradients, a disc, a box and integer-hash texture."""
    y, x = np.mgrid[0:height, 0:width].astype(np.int64)
    texture = (x * 7919 + y * 104729 + (x * y) % 97) % 61
    b = (x * 255 // max(width - 1, 1) + texture) % 256
    g = (y * 255 // max(height - 1, 1) + 2 * texture) % 256
    r = np.where((x - width * 2 // 3) ** 2 + (y - height // 2) ** 2 < (min(height, width) // 4) ** 2, 230, 40)
    r = np.where((x < width // 4) & (y > height // 2), 120, r) + texture
    return np.clip(np.stack([b, g, r], axis=-1), 0, 255).astype(np.uint8)


def forward_input(bgr: np.ndarray, input_size: int) -> torch.Tensor:
    """Network input (1, 3, h, w) for the forward-level comparison; the test rebuilds it the same way."""
    rgb = torch.from_numpy(bgr[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 255.0
    return normalise_resized(rgb, network_input_size(*bgr.shape[:2], input_size))


def import_official(official: Path, metric: bool) -> types.ModuleType:
    """Import depth_anything_v2.dpt from the official checkout (metric_depth/ or the relative root)."""
    for name in [m for m in sys.modules if m.split(".")[0] == "depth_anything_v2"]:
        del sys.modules[name]
    root = str(official / "metric_depth") if metric else str(official)
    sys.path.insert(0, root)
    try:
        import depth_anything_v2.dpt as dpt
    finally:
        sys.path.remove(root)
    return dpt


def install_torchvision_shim() -> None:
    """Provide torchvision.transforms.Compose (all the official dpt.py imports from it) if torchvision is absent."""
    try:
        import torchvision.transforms  # noqa: F401
        return
    except ImportError:
        pass
    shim = tempfile.mkdtemp(prefix="tv_shim_")
    pkg = Path(shim) / "torchvision"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "transforms.py").write_text(
        "class Compose:\n"
        "    def __init__(self, transforms):\n        self.transforms = transforms\n\n"
        "    def __call__(self, x):\n        for t in self.transforms:\n            x = t(x)\n        return x\n")
    sys.path.insert(0, shim)


def build_official(dpt: types.ModuleType, encoder: str, metric: bool) -> torch.nn.Module:
    spec = ENCODERS[encoder]
    kwargs = {"max_depth": 20.0} if metric else {}
    model = dpt.DepthAnythingV2(encoder=encoder, features=spec.features, out_channels=list(spec.out_channels),
                                **kwargs)
    model.load_state_dict(synthetic_state_dict(encoder, seed=0))
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", required=True, type=Path, help="checkout of DepthAnything/Depth-Anything-V2")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--commit", help="official commit, when --official is an export without .git")
    args = parser.parse_args()
    torch.manual_seed(0)
    install_torchvision_shim()

    small = synthetic_scene(97, 131)
    full = synthetic_scene(120, 160)
    data: dict[str, np.ndarray] = {"image_small": small, "image_full": full}
    dpt = import_official(args.official, metric=True)
    sizes = []
    for h, w, s in SIZE_CASES:
        r = dpt.Resize(s, s, resize_target=False, keep_aspect_ratio=True, ensure_multiple_of=14,
                       resize_method="lower_bound")
        new_w, new_h = r.get_size(w, h)
        sizes.append((h, w, s, int(new_h), int(new_w)))
    data["official_sizes"] = np.array(sizes, dtype=np.int64)

    with torch.no_grad():
        for encoder in ENCODERS:
            model = build_official(dpt, encoder, metric=True)
            state = model.state_dict()
            data[f"probe_{encoder}"] = np.stack([state[k].flatten()[:16].numpy() for k in PROBE_KEYS])
            data[f"forward_{encoder}_{SMALL_INPUT}"] = model(forward_input(small, SMALL_INPUT))[0].numpy()
            data[f"infer_{encoder}_{SMALL_INPUT}"] = model.infer_image(small, SMALL_INPUT)
            data[f"forward_{encoder}_{FULL_INPUT}_sub7"] = model(forward_input(full, FULL_INPUT))[0, ::7, ::7].numpy()
            data[f"infer_{encoder}_{FULL_INPUT}"] = model.infer_image(full, FULL_INPUT)
            print(encoder, "done", flush=True)
        relative = build_official(import_official(args.official, metric=False), "vits", metric=False)
        data[f"relative_forward_vits_{SMALL_INPUT}"] = relative(forward_input(small, SMALL_INPUT))[0].numpy()
        data[f"relative_infer_vits_{SMALL_INPUT}"] = relative.infer_image(small, SMALL_INPUT)

    commit = subprocess.run(["git", "-C", str(args.official), "rev-parse", "HEAD"], capture_output=True, text=True)
    data["official_commit"] = np.array(commit.stdout.strip() or args.commit or "unknown")
    data["torch_version"] = np.array(torch.__version__)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **data)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
