"""Generate test/data/vda_reference/vda_reference.npz by running the OFFICIAL Video Depth Anything code.

Usage (the official repository is NOT part of this project; extract it anywhere outside it):
    git -C <Video-Depth-Anything clone> archive HEAD | tar -x -C /tmp/vda_official
    pip install --target /tmp/vdadeps easydict einops
    PYTHONPATH=.:/tmp/vda_official:/tmp/vdadeps python tools/make_vda_reference.py --commit <sha>

The official modules are imported from the PYTHONPATH at run time; only their outputs are written. Weights are
`synthetic_vda_state_dict(encoder, seed=0)`; the clip is `synthetic_clip` (stored too). Everything runs on the CPU
in float32 (fp32=True: the official autocast is not entered).
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import numpy as np
import torch

from depth_anything_ros.models.vda.checkpoint import synthetic_vda_state_dict
from depth_anything_ros.models.vda.preprocess import network_input, network_size

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "test" / "data" / "vda_reference" / "vda_reference.npz"
CONFIGS = {"vits": (64, [48, 96, 192, 384]), "vitb": (128, [96, 192, 384, 768]), "vitl": (256, [256, 512, 1024, 1024])}
CLIP = (36, 48)  # frame height, width: a 42x56 network input at input size 42
INPUT_SIZE = 42
STREAM_FRAMES = 48  # more than the 42 slots the streaming cache keeps: its slot rule shows
OFFLINE_FRAMES = 60  # three 32-frame windows (step 22), the last padded with copies of the final frame
WIDE = (24, 56)  # aspect 2.33 > 1.78: the official code shrinks the input size first
SUB = 2  # stream and offline depth are stored every SUB-th pixel in each direction
PROBE_KEYS = ("pretrained.pos_embed", "head.motion_modules.3.temporal_transformer.proj_out.weight",
              "head.scratch.output_conv2.2.weight")


def synthetic_clip(frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """(frames, H, W, 3) uint8 RGB: a textured scene panning right 1 px per frame, a disc moving down, sensor noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width + frames].astype(np.int64)
    texture = (x * 7919 + y * 104729 + (x * y) % 97) % 61
    scene = np.stack([(x * 3 + texture) % 256, (y * 255 // max(height - 1, 1) + 2 * texture) % 256,
                      40 + texture], axis=-1)
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        view = scene[:, t:t + width].copy()
        disc = (x[:, :width] - width // 2) ** 2 + (y[:, :width] - (t * height) // frames) ** 2 < (height // 4) ** 2
        view[disc] = (230, 200, 40)
        noisy = view + rng.normal(0.0, 3.0, view.shape)
        out[t] = np.clip(np.round(noisy), 0, 255).astype(np.uint8)
    return out


def _torchvision_stand_in() -> None:
    """Install torchvision.transforms.Compose (the one torchvision name the official code uses) when it is missing."""
    try:
        import torchvision.transforms  # noqa: F401
        return
    except ImportError:
        pass

    class Compose:
        def __init__(self, steps):
            self.steps = steps

        def __call__(self, sample):
            for step in self.steps:
                sample = step(sample)
            return sample

    transforms = types.ModuleType("torchvision.transforms")
    transforms.Compose = Compose
    package = types.ModuleType("torchvision")
    package.transforms = transforms
    sys.modules.update({"torchvision": package, "torchvision.transforms": transforms})


def _official(module, encoder: str, **kwargs) -> torch.nn.Module:
    features, out_channels = CONFIGS[encoder]
    model = module.VideoDepthAnything(encoder=encoder, features=features, out_channels=out_channels, **kwargs)
    model.load_state_dict(synthetic_vda_state_dict(encoder, seed=0), strict=True)
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commit", default="unknown", help="commit id of the official code, recorded")
    args = parser.parse_args()
    _torchvision_stand_in()
    from video_depth_anything import video_depth, video_depth_stream

    torch.manual_seed(0)
    out: dict[str, np.ndarray] = {"commit": np.array(args.commit)}
    clip = synthetic_clip(max(STREAM_FRAMES, OFFLINE_FRAMES), *CLIP)
    out["clip"] = clip
    # bare network: 4 frames of the clip through the official forward, every encoder
    x = network_input(torch.from_numpy(clip[:4]), "rgb8", network_size(*CLIP, INPUT_SIZE))[None]
    out["network_input"] = x.numpy()
    for encoder in CONFIGS:
        state = synthetic_vda_state_dict(encoder, seed=0)
        out[f"probe_{encoder}"] = np.stack([state[k].flatten()[:16].numpy() for k in PROBE_KEYS])
        with torch.no_grad():
            out[f"forward_{encoder}"] = _official(video_depth, encoder, metric=True)(x).numpy()
    # streaming: official infer_video_depth_one, one frame at a time, on the CPU in float32
    out["wide_clip"] = synthetic_clip(6, *WIDE, seed=1)
    for name, frames in (("stream", clip[:STREAM_FRAMES]), ("wide", out["wide_clip"])):
        model = _official(video_depth_stream, "vits")
        out[name] = np.stack([model.infer_video_depth_one(f, input_size=INPUT_SIZE, device="cpu", fp32=True)
                              for f in frames])[:, ::SUB, ::SUB]
    # offline: official infer_video_depth (windows of 32, overlap 10, blending), metric=True
    model = _official(video_depth, "vits", metric=True)
    out["offline"] = model.infer_video_depth(clip[:OFFLINE_FRAMES], 30, input_size=INPUT_SIZE, device="cpu",
                                             fp32=True)[0][:, ::SUB, ::SUB]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT}: " + ", ".join(f"{k} {v.shape}" for k, v in out.items()))


if __name__ == "__main__":
    main()
