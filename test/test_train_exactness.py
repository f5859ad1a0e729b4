"""Our training recipe against the OFFICIAL metric_depth train.py: loss, one (three) optimizer steps, schedule.

test/data/train_reference/README.md says how the reference was made (tools/make_train_reference.py, official
commit a561b84) and the agreement measured. The official code is not needed here, only its recorded outputs.
"""

from pathlib import Path

import numpy as np
import torch

from depth_anything_ros.models.synthetic_weights import synthetic_state_dict
from depth_anything_ros.models.v2.network import DepthAnythingV2
from depth_anything_ros.train.config import Recipe
from depth_anything_ros.train.recipe import (
    learning_rate,
    make_optimizer,
    parameter_groups,
    set_learning_rate,
    silog_loss,
    train_step,
)

REF = np.load(Path(__file__).parent / "data" / "train_reference" / "train_reference.npz")
CROP, STEPS, TOTAL, LR, MAX_DEPTH, MIN_DEPTH = REF["config"]
STEPS, TOTAL = int(STEPS), int(TOTAL)
PROBES = [k.split(":", 1)[1] for k in REF.files if k.startswith("after:")]


def test_silog_loss_equals_official():
    pred, target, mask = (torch.from_numpy(REF[k]) for k in ("loss_pred", "loss_target", "loss_mask"))
    ours = silog_loss(pred, target, mask, 0.5).item()
    assert abs(ours - float(REF["loss_official"])) <= 1e-6 * float(REF["loss_official"])
    assert float(REF["loss_official"]) > 0.1  # a real value, not a degenerate zero


def test_schedule_equals_official_formula_and_update_timing():
    # train.py sets the rate for iteration i after step i: step k runs with the rate computed after step k - 1
    official_used = [float(LR)] + [float(v) for v in REF["schedule"][:TOTAL - 1]]
    ours = [learning_rate(k, TOTAL, float(LR), Recipe().power) for k in range(TOTAL)]
    np.testing.assert_allclose(ours, official_used, rtol=1e-12)
    np.testing.assert_allclose(REF["step_lrs"][:, 0], ours[:STEPS], rtol=1e-12)
    np.testing.assert_allclose(REF["step_lrs"][:, 1], 10 * np.array(ours[:STEPS]), rtol=1e-12)


def test_parameter_groups_split_encoder_from_the_rest():
    model = DepthAnythingV2("vits", MAX_DEPTH)
    groups = parameter_groups(model, 1.0, 10.0)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(names[id(p)].startswith("pretrained.") for p in groups[0]["params"])
    assert all(names[id(p)].startswith("depth_head.") for p in groups[1]["params"])
    assert len(groups[0]["params"]) + len(groups[1]["params"]) == len(names)


def test_three_optimizer_steps_equal_official_train_py():
    model = DepthAnythingV2("vits", float(MAX_DEPTH)).train()
    model.load_state_dict(synthetic_state_dict("vits", seed=0))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    recipe = Recipe(lr=float(LR), min_depth=float(MIN_DEPTH))
    optimizer = make_optimizer(model, recipe)
    batch = [tuple(torch.from_numpy(REF[f"step_{k}"]) for k in ("image", "depth", "valid"))]
    losses, grads = [], {}
    for step in range(STEPS):
        set_learning_rate(optimizer, learning_rate(step, TOTAL, recipe.lr, recipe.power), recipe.head_lr_factor)
        if step == 0:  # gradients of the first step, kept by hooking the optimizer's step
            handle = optimizer.register_step_pre_hook(lambda *_, g=grads: g.update(
                {n: p.grad.clone() for n, p in model.named_parameters() if n in PROBES}))
        losses.append(train_step(model, optimizer, batch, recipe))
        if step == 0:
            handle.remove()
    np.testing.assert_allclose(losses, REF["step_losses"], rtol=2e-5)
    for name in PROBES:
        g_ref = REF[f"grad0:{name}"]
        assert np.abs(grads[name].numpy() - g_ref).max() <= 2e-4 * np.abs(g_ref).max() + 1e-9, name
    after = model.state_dict()
    for name in PROBES:
        diff = np.abs(after[name].numpy() - REF[f"after:{name}"]).max()
        # each step moves a parameter by about lr (5e-6 encoder, 5e-5 head); float32 noise is far below that
        assert diff <= 1e-6, f"{name}: max |diff| {diff:.3g}"
    assert list(REF["param_names"]) == list(before)
    ours = np.array([float((after[k] - before[k]).double().norm()) for k in before])
    np.testing.assert_allclose(ours, REF["delta_norms"], rtol=1e-3, atol=1e-9)
    assert (REF["delta_norms"] > 0).mean() > 0.95  # nearly every parameter moved (mask_token has no gradient)
