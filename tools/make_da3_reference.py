"""Generate test/data/da3_reference/da3_reference.npz by running the OFFICIAL Depth-Anything-3 code.

Usage (the official repository is NOT part of this project; extract it anywhere outside it):
    git -C <Depth-Anything-3 clone> archive HEAD src | tar -x -C /tmp/da3_official
    pip install --target /tmp/da3deps einops omegaconf addict
    PYTHONPATH=.:/tmp/da3deps python tools/make_da3_reference.py --official /tmp/da3_official/src --commit <sha>

The official network is built from its configs/da3metric-large.yaml and imported from --official at run time;
only its outputs are written. Weights are `synthetic_da3_state_dict(seed=0)`; the input image is stored too.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch

from depth_anything_ros.models.da3.checkpoint import synthetic_da3_state_dict
from depth_anything_ros.models.da3.network import FILE_PREFIX

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "test" / "data" / "da3_reference" / "da3_reference.npz"
KEYS_OUT = ROOT / "test" / "data" / "checkpoint_keys" / "checkpoint_keys_da3metric_large.json"
IMAGE_SIZE = (360, 500)  # non-square: 504 -> 364x504 (two cubic enlargements), 126 -> 98x126 (area, then cubic)
K = np.array([[350.0, 0.0, 249.5], [0.0, 340.0, 179.5], [0.0, 0.0, 1.0]])
RESOLUTIONS = ((504, 3), (126, 1))  # (process_res, stored every n-th pixel)
PROBE_KEYS = ("model.backbone.pretrained.pos_embed", "model.head.scratch.sky_output_conv2.2.weight")


def _torchvision_stand_in() -> None:
    """Install the torchvision.transforms names the official input processor uses, when torchvision is missing.

    As torchvision defines them: ToTensor uint8 HWC -> float32 CHW / 255; Normalize in place, sub mean, div std.
    """
    try:
        import torchvision.transforms  # noqa: F401
        return
    except ImportError:
        pass

    class ToTensor:
        def __call__(self, pic):
            return torch.from_numpy(np.array(pic, np.uint8, copy=True)).permute(2, 0, 1).contiguous().float().div(255)

    class Normalize:
        def __init__(self, mean, std):
            self.mean, self.std = mean, std

        def __call__(self, t):
            mean = torch.as_tensor(self.mean, dtype=t.dtype).view(-1, 1, 1)
            return t.sub_(mean).div_(torch.as_tensor(self.std, dtype=t.dtype).view(-1, 1, 1))

    transforms = types.ModuleType("torchvision.transforms")
    transforms.ToTensor, transforms.Normalize, transforms.CenterCrop = ToTensor, Normalize, object
    package = types.ModuleType("torchvision")
    package.transforms = transforms
    sys.modules.update({"torchvision": package, "torchvision.transforms": transforms})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="the official repository's src folder")
    parser.add_argument("--commit", default="unknown", help="commit id of the official code, recorded")
    args = parser.parse_args()
    sys.path.insert(0, str(args.official))
    _torchvision_stand_in()
    from depth_anything_3.cfg import create_object, load_config
    from depth_anything_3.utils.alignment import apply_metric_scaling
    from depth_anything_3.utils.io.input_processor import InputProcessor

    from tools.make_official_reference import synthetic_scene

    torch.manual_seed(0)  # the official sky fill samples pixels at random above 100,000 of them
    net = create_object(load_config(str(args.official / "depth_anything_3" / "configs" / "da3metric-large.yaml")))
    state = synthetic_da3_state_dict(seed=0)
    net.load_state_dict({k[len(FILE_PREFIX):]: v for k, v in state.items()}, strict=True)
    net.eval()
    official = net.state_dict()
    KEYS_OUT.write_text(json.dumps({
        "source": f"ByteDance-Seed/Depth-Anything-3 commit {args.commit[:7]}, DepthAnything3Net built from "
                  "src/depth_anything_3/configs/da3metric-large.yaml; names as in the Hub model.safetensors "
                  "(API prefix 'model.')",
        "keys": [{"name": FILE_PREFIX + k, "shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")}
                 for k, v in official.items()],
        "num_elements": sum(v.numel() for v in official.values())}, indent=1) + "\n")

    rgb = np.ascontiguousarray(synthetic_scene(*IMAGE_SIZE)[..., ::-1])
    out = {"image": rgb, "K": K, "commit": np.array(args.commit),
           "probe": np.stack([state[k].flatten()[:16].numpy() for k in PROBE_KEYS])}
    for res, step in RESOLUTIONS:
        x, _, k_net = InputProcessor()([rgb], None, K[None].copy(), res, "upper_bound_resize", num_workers=1)
        x = x[None].float()  # (1, 1, 3, h, w) as the API's _prepare_model_inputs
        with torch.no_grad():  # float32 throughout: the API's autocast is not entered
            feats, _ = net.backbone(x, cam_token=None, export_feat_layers=[])
            head = net._process_depth_head(feats, x.shape[-2], x.shape[-1])
            full = net(x, None, None, [], False, False)
            metric = apply_metric_scaling(head.depth, k_net[None])
        sub = (slice(None, None, step), slice(None, None, step))
        out[f"input_{res}_sub7"] = x[0, 0][:, ::7, ::7].numpy()
        out[f"input_{res}_shape"] = np.array(x.shape[-2:])
        out[f"k_net_{res}"] = k_net[0].numpy()
        out[f"depth_{res}"] = head.depth[0, 0][sub].numpy()
        out[f"sky_{res}"] = head.sky[0, 0][sub].numpy()
        out[f"metric_{res}"] = metric[0, 0][sub].numpy()
        out[f"filled_{res}"] = full.depth[0, 0][sub].numpy()
        d, s = head.depth[0, 0], head.sky[0, 0]
        print(f"res {res}: input {tuple(x.shape[-2:])}, depth {d.min():.3f}..{d.max():.3f}, "
              f"sky fraction {(s >= 0.3).float().mean():.3f}, focal {float(k_net[0, 0, 0] + k_net[0, 1, 1]) / 2:.4f}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB) and {KEYS_OUT}")


if __name__ == "__main__":
    main()
