"""Generate test/data/train_reference/train_reference.npz by running the OFFICIAL metric_depth training code.

Usage (the official repository is NOT part of this project; export it anywhere outside it):
    git -C <Depth-Anything-V2 clone> archive HEAD metric_depth | tar -x -C /tmp/official
    PYTHONPATH=. python tools/make_train_reference.py --official /tmp/official --commit <sha>

The official `SiLogLoss` (metric_depth/util/loss.py) and `DepthAnythingV2` (metric_depth/depth_anything_v2) are
imported from --official at run time; the optimizer is built the way train.py builds it, the schedule is
train.py's formula. Only inputs and outputs are written. See test/data/train_reference/README.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_official_reference import (  # noqa: E402 - the sibling tool, found through the path set above
    build_official,
    forward_input,
    import_official,
    install_torchvision_shim,
    synthetic_scene,
)

OUT = Path(__file__).resolve().parents[1] / "test" / "data" / "train_reference" / "train_reference.npz"
CROP = 42  # training crop side (a multiple of 14)
STEPS = 3  # optimizer steps recorded
TOTAL = 10  # total_iters of the schedule
LR = 5e-6
MAX_DEPTH = 20.0
MIN_DEPTH = 0.001
PROBES = ("pretrained.cls_token", "pretrained.blocks.0.attn.qkv.bias", "pretrained.blocks.11.ls2.gamma",
          "depth_head.projects.0.weight", "depth_head.scratch.output_conv2.2.weight",
          "depth_head.scratch.output_conv2.2.bias")


def batch() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image (2,3,S,S) network input, depth (2,S,S) metres (0 invalid), valid (2,S,S) bool with the official rule."""
    x = forward_input(synthetic_scene(97, 131), CROP)[0].numpy()  # (3, 42, 56)
    image = np.stack([x[:, :, :CROP], x[:, :, -CROP:]])
    yy, xx = np.mgrid[0:CROP, 0:CROP] / (CROP - 1)
    depth = np.stack([1.0 + 4.0 * yy + xx, 8.0 - 3.0 * xx + 0.5 * np.sin(9 * yy)]).astype(np.float32)
    depth[0, :5, :] = np.nan  # no ground truth
    depth[1, :, :3] = 25.0  # beyond max_depth
    valid = ~np.isnan(depth) & (depth >= MIN_DEPTH) & (depth <= MAX_DEPTH)
    return image.astype(np.float32), np.nan_to_num(depth, nan=0.0), valid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", required=True, type=Path, help="export of DepthAnything/Depth-Anything-V2")
    parser.add_argument("--commit", required=True, help="the official commit the export was made from")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.manual_seed(0)
    install_torchvision_shim()
    dpt = import_official(args.official, metric=True)
    sys.path.insert(0, str(args.official / "metric_depth"))
    from util.loss import SiLogLoss  # the official loss

    data: dict[str, np.ndarray] = {}
    gen = torch.Generator().manual_seed(1)
    pred = 0.5 + 10 * torch.rand(2, 30, 40, generator=gen)
    target = 0.5 + 10 * torch.rand(2, 30, 40, generator=gen)
    mask = torch.rand(2, 30, 40, generator=gen) > 0.3
    data |= {"loss_pred": pred.numpy(), "loss_target": target.numpy(), "loss_mask": mask.numpy(),
             "loss_official": np.array(SiLogLoss(lambd=0.5)(pred, target, mask).item())}

    image, depth, valid = batch()
    data |= {"step_image": image, "step_depth": depth, "step_valid": valid}
    model = build_official(dpt, "vits", metric=True).train()
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    named = list(model.named_parameters())
    optimizer = torch.optim.AdamW([{"params": [p for n, p in named if "pretrained" in n], "lr": LR},
                                   {"params": [p for n, p in named if "pretrained" not in n], "lr": LR * 10.0}],
                                  lr=LR, betas=(0.9, 0.999), weight_decay=0.01)
    criterion = SiLogLoss()
    img, dep, val = torch.from_numpy(image), torch.from_numpy(depth), torch.from_numpy(valid)
    losses, lrs = [], []
    for iters in range(STEPS):
        lrs.append([g["lr"] for g in optimizer.param_groups])
        optimizer.zero_grad()
        loss = criterion(model(img), dep, val)
        loss.backward()
        if iters == 0:
            for k in PROBES:
                data[f"grad0:{k}"] = dict(model.named_parameters())[k].grad.numpy().copy()
        optimizer.step()
        losses.append(loss.item())
        lr = LR * (1 - iters / TOTAL) ** 0.9
        optimizer.param_groups[0]["lr"] = lr
        optimizer.param_groups[1]["lr"] = lr * 10.0
    after = model.state_dict()
    data["step_losses"] = np.array(losses)
    data["step_lrs"] = np.array(lrs)
    data["param_names"] = np.array(list(before))
    data["delta_norms"] = np.array([float((after[k] - before[k]).double().norm()) for k in before])
    for k in PROBES:
        data[f"after:{k}"] = after[k].numpy().copy()
    data["schedule"] = np.array([LR * (1 - i / TOTAL) ** 0.9 for i in range(TOTAL)])
    data["config"] = np.array([CROP, STEPS, TOTAL, LR, MAX_DEPTH, MIN_DEPTH])
    data["official_commit"] = np.array(args.commit)
    data["torch_version"] = np.array(torch.__version__)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **data)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB); losses {losses}")


if __name__ == "__main__":
    main()
