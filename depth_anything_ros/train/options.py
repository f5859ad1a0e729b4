"""`depth-anything-ros train`: its options (the official recipe's values as defaults) and the run behind them."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from depth_anything_ros.bag.bagfile import BagError, check_bag
from depth_anything_ros.datasets.registry import FORMATS, is_dataset, open_dataset
from depth_anything_ros.cli_options import add_model_options, check_checkpoint_name, make_estimator, number
from depth_anything_ros.train.config import Recipe, TrainConfig

OFFICIAL = "official metric_depth/train.py value"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train` subcommand to the top-level parser."""
    r = Recipe()
    p = subparsers.add_parser(
        "train", help="fine-tune a metric checkpoint on RGB-D rosbags and datasets with the official recipe",
        description="Pair each image with the ground-truth depth of the same header stamp (the rules and errors of "
                    "'bag evaluate'; 16UC1 millimetres or 32FC1 metres, aligned to the image or a uniform resize "
                    "of it), keep the last --val-percent of frames in time for validation, and fine-tune with the "
                    "official Depth-Anything-V2 metric_depth recipe. Every recipe default below is the official "
                    "train.py value. Writes DIR/best.pth and DIR/last.pth (official state_dicts, with a .json "
                    "that lets the node and the tools load them by path alone), a report, and metrics.json last. "
                    "Ctrl-C stops after the current step and saves DIR/resume.pt; --resume DIR continues it. "
                    "The same command runs data-parallel under 'torchrun --nproc_per_node=N --no-python' or "
                    "'accelerate launch'. See docs/training.md.")
    p.add_argument("bags", nargs="*", type=Path, metavar="BAG",
                   help="input bags (mcap or sqlite3) and/or RGB-D datasets (NYU Depth V2, SUN RGB-D, TUM RGB-D, "
                        "KITTI, folders: docs/datasets.md), which keep their official train/test split where they "
                        "have one")
    p.add_argument("--gt-topic", help="ground-truth depth topic of the bags (sensor_msgs/Image 16UC1 or 32FC1)")
    p.add_argument("--format", dest="dataset_format", choices=tuple(FORMATS),
                   help="format of the dataset inputs (default: detected from each one's layout)")
    p.add_argument("--image-topic", help="image topic; default: the only image topic other than the ground truth")
    p.add_argument("--stamp-tolerance", type=number(float, 0.0, unit=" seconds"), default=0.0, metavar="S",
                   help="largest stamp difference between an image and its ground truth (default 0: equal stamps)")
    p.add_argument("--out", type=Path, metavar="DIR", help="new output folder (must not exist or be empty)")
    p.add_argument("--resume", type=Path, metavar="DIR",
                   help="continue the interrupted run in DIR with its recorded options and step count (only "
                        "--device, --precision, --cache-mb and --no-progress may be given with it)")
    add_model_options(p, inference=False)
    g = p.add_argument_group("official recipe", "defaults are the official metric_depth/train.py values")
    g.add_argument("--lr", type=number(float, 0.0, above=True), default=r.lr,
                   help=f"encoder (pretrained.*) learning rate (default {r.lr:g}, {OFFICIAL})")
    g.add_argument("--head-lr-factor", type=number(float, 0.0, above=True), default=r.head_lr_factor,
                   help=f"the other parameters learn at lr x this (default {r.head_lr_factor:g}, {OFFICIAL})")
    g.add_argument("--betas", type=number(float, 0.0, 1.0), nargs=2, default=list(r.betas), metavar=("B1", "B2"),
                   help=f"AdamW betas (default {r.betas[0]:g} {r.betas[1]:g}, {OFFICIAL})")
    g.add_argument("--weight-decay", type=number(float, 0.0), default=r.weight_decay,
                   help=f"AdamW weight decay (default {r.weight_decay:g}, {OFFICIAL})")
    g.add_argument("--poly-power", type=number(float, 0.0), default=r.power,
                   help=f"polynomial decay power over the total steps (default {r.power:g}, {OFFICIAL})")
    g.add_argument("--silog-lambda", type=number(float, 0.0, 1.0), default=r.silog_lambda,
                   help=f"SiLog loss lambda (default {r.silog_lambda:g}, {OFFICIAL})")
    g.add_argument("--gt-min-depth", type=number(float, 0.0, above=True, unit=" metres"), default=r.min_depth,
                   metavar="M", help=f"ground truth below this is ignored (default {r.min_depth:g}, {OFFICIAL})")
    g.add_argument("--gt-max-depth", type=number(float, 0.0, above=True, unit=" metres"), metavar="M",
                   help="ground truth above this is ignored (default: the model's max depth, as train.py's one "
                        "--max-depth)")
    g.add_argument("--flip-p", type=number(float, 0.0, 1.0), default=r.flip_p,
                   help=f"probability of a horizontal flip per batch (default {r.flip_p:g}, {OFFICIAL})")
    g.add_argument("--batch-size", type=number(int, 1), default=r.batch_size, metavar="N",
                   help=f"frames per micro-batch (default {r.batch_size}, {OFFICIAL}); training crops are "
                        "--input-size squares")
    g.add_argument("--grad-accum", type=number(int, 1), default=1, metavar="N",
                   help="micro-batches per optimizer step (default 1, as train.py)")
    g.add_argument("--epochs", type=number(int, 1), metavar="N",
                   help=f"length in epochs (default {r.epochs}, {OFFICIAL})")
    g.add_argument("--steps", type=number(int, 1), metavar="N", help="length in optimizer steps (instead of --epochs)")
    g = p.add_argument_group("run")
    g.add_argument("--val-percent", type=number(float, 0.0, 100.0, above=True), default=10.0, metavar="P",
                   help="the last P %% of frames in time validate (default 10)")
    g.add_argument("--val-every", type=number(int, 1), metavar="N", help="validate every N steps (default: "
                                                                          "once per epoch)")
    g.add_argument("--seed", type=int, default=0, help="seed of the frame order, crops and flips (default 0)")
    g.add_argument("--cache-mb", type=number(int, 0), default=4096, metavar="MB",
                   help="decoded frames kept in memory (default 4096 MB); the rest go to a temporary folder as "
                        "arrays, so no bag is decoded twice")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--dist-timeout", type=number(float, 1.0, unit=" seconds"), default=300.0, metavar="S",
                   help="under torchrun or accelerate launch: seconds a process waits for the others (to join, and "
                        "in each exchange) before it stops with an error naming what it waited for (default 300)")
    p.set_defaults(func=run_train)


def _config(args: argparse.Namespace) -> object:
    """TrainConfig of a new run; BagError naming the missing flag."""
    needs_topic = any(not _is_dataset(Path(b), args.dataset_format) for b in args.bags)
    for flag, value in (("BAG", args.bags), ("--gt-topic", args.gt_topic or not needs_topic), ("--out", args.out)):
        if not value:
            raise BagError(f"train needs {flag} (or --resume DIR to continue a run)")
    if args.steps and args.epochs:
        raise BagError(f"give --steps {args.steps} or --epochs {args.epochs}, not both")
    recipe = Recipe(lr=args.lr, head_lr_factor=args.head_lr_factor, betas=tuple(args.betas),
                    weight_decay=args.weight_decay, power=args.poly_power, silog_lambda=args.silog_lambda,
                    min_depth=args.gt_min_depth, flip_p=args.flip_p,
                    input_size=args.input_size or Recipe.input_size,
                    batch_size=args.batch_size, epochs=args.epochs or Recipe.epochs)
    return TrainConfig(bags=[str(b) for b in args.bags], gt_topic=args.gt_topic, checkpoint=args.checkpoint,
                       image_topic=args.image_topic, encoder=args.encoder, model_max_depth=args.model_max_depth,
                       stamp_tolerance=args.stamp_tolerance, gt_max_depth=args.gt_max_depth,
                       val_percent=args.val_percent, val_every=args.val_every or 0, steps=args.steps or 0,
                       grad_accum=args.grad_accum, seed=args.seed, cache_mb=args.cache_mb,
                       dataset_format=args.dataset_format, recipe=recipe)


def _is_dataset(path: Path, dataset_format: str | None) -> bool:
    """Whether an input is an RGB-D dataset (not a bag): its layout is one the readers know, or --format says so."""
    return not (path / "metadata.yaml").is_file() and (is_dataset(path) or (dataset_format is not None
                                                                             and path.exists()
                                                                             and not path.suffix == ".mcap"))


def _resumed_config(args: argparse.Namespace) -> object:
    from depth_anything_ros.train.outputs import check_resume_dir

    if args.bags or args.gt_topic or args.out:
        raise BagError("--resume DIR takes the bags, topics and options recorded in DIR/run.json; give no BAG, "
                       "--gt-topic or --out with it")
    config = TrainConfig.from_json(check_resume_dir(args.resume))
    return replace(config, cache_mb=args.cache_mb)


def run_train(args: argparse.Namespace) -> int:
    """Train; exit 0 when finished, 130 when Ctrl-C saved a resumable state (every process of a launch alike)."""
    from depth_anything_ros.train import distributed

    config = _resumed_config(args) if args.resume else _config(args)
    out = args.resume or args.out
    ranks = distributed.join(args.device, args.dist_timeout)
    try:
        return _check_and_run(config, out, ranks, args)
    finally:
        ranks.close()


def _check_and_run(config: object, out: Path, ranks: object, args: argparse.Namespace) -> int:
    import torch

    from depth_anything_ros.models.v2.estimator import resolve_precision
    from depth_anything_ros.models.v2.network import DepthAnythingV2
    from depth_anything_ros.train import outputs

    if not args.resume:
        outputs.check_new_run_dir(out)
    if config.gt_max_depth is not None and not config.recipe.min_depth < config.gt_max_depth:
        raise BagError(f"--gt-min-depth {config.recipe.min_depth:g} must be below --gt-max-depth "
                       f"{config.gt_max_depth:g}")
    check_checkpoint_name(config.checkpoint)
    for bag in config.bags:
        if _is_dataset(Path(bag), config.dataset_format):
            open_dataset(Path(bag), config.dataset_format)  # its layout's errors before the model loads
        else:
            check_bag(Path(bag))
    model_args = argparse.Namespace(checkpoint=config.checkpoint, encoder=config.encoder,
                                    model_max_depth=config.model_max_depth, input_size=config.recipe.input_size,
                                    device=ranks.model_device(args.device), precision="fp32", compile="off")
    estimator = make_estimator(model_args, announce_synthetic=ranks.main)
    if getattr(estimator, "temporal", False):
        raise BagError(f"--checkpoint {config.checkpoint} is a Video Depth Anything (temporal) model; fine-tuning a "
                       "temporal model is not supported: train fine-tunes V2 metric checkpoints (hypersim-*, vkitti-*)")
    if not isinstance(estimator.model, DepthAnythingV2):
        raise BagError(f"--checkpoint {config.checkpoint} is not a Depth-Anything-V2 model; train fine-tunes V2 "
                       "metric checkpoints (hypersim-*, vkitti-* or their files)")
    if not estimator.is_metric:
        raise BagError(f"--checkpoint {config.checkpoint} is a relative checkpoint (affine-invariant inverse depth, "
                       "not metres); train fine-tunes metric ones: start from hypersim-* or vkitti-*")
    try:
        autocast = resolve_precision(args.precision, estimator.device)
    except ValueError as exc:
        raise BagError(f"invalid --precision: {exc}") from None
    autocast = None if autocast == torch.float32 else autocast
    return _run(config, out, estimator, autocast, ranks, args)


def _run(config: object, out: Path, estimator: object, autocast: object, ranks: object,
         args: argparse.Namespace) -> int:
    from depth_anything_ros.train import outputs
    from depth_anything_ros.train.dataset import load_split
    from depth_anything_ros.train.finish import finish
    from depth_anything_ros.train.loop import Trainer, plan

    max_depth = config.gt_max_depth or estimator.max_depth
    if not config.recipe.min_depth < max_depth:
        raise BagError(f"--gt-min-depth {config.recipe.min_depth:g} must be below the ground-truth limit "
                       f"{max_depth:g} (--gt-max-depth, default the model's max depth)")
    inputs = [Path(b) for b in config.bags]
    datasets = [p for p in inputs if _is_dataset(p, config.dataset_format)]
    split = load_split([p for p in inputs if p not in datasets], config.gt_topic, config.image_topic,
                       config.stamp_tolerance, config.recipe.min_depth, max_depth, config.val_percent,
                       config.cache_mb * 2**20, datasets, config.dataset_format)
    try:
        plan(config, len(split.train), ranks.world)
        _check_same_run(ranks, out, config)  # every process checked before the main one writes
        if not args.resume and ranks.main:
            out.mkdir(parents=True, exist_ok=True)
            outputs.write_json(out / outputs.RUN, config.to_json())
        trainer = Trainer(config, out, estimator, split, autocast, progress=not args.no_progress, ranks=ranks)
        state = outputs.load_resume(out) if args.resume else None
        if state is not None:
            trainer.restore(state)
        elif args.resume and ranks.main:  # stopped before its first step: start over
            for name in (outputs.LOG, outputs.VAL):
                (out / name).unlink(missing_ok=True)
        many = f" on {ranks.world} processes" if ranks.distributed else ""
        say = print if ranks.main else (lambda *_, **__: None)
        say(f"train: {len(split.train)} training and {len(split.val)} validation frames "
            f"({split.frames.on_disk} cached on disk), {trainer.plan.total} steps of {trainer.plan.per_step} "
            f"frames{many}{f', resuming at step {trainer.step}' if state else ''}", file=sys.stderr)
        result = trainer.run()
        if result.interrupted:
            say(f"train: interrupted at step {result.step}/{result.total}; saved {out / outputs.RESUME}; continue "
                f"with: depth-anything-ros train --resume {out}", file=sys.stderr)
            return 130
        if ranks.main:
            print(finish(trainer, result))
    finally:
        split.frames.close()
    return 0


def _check_same_run(ranks: object, out: Path, config: object) -> None:
    """BagError on every process unless all of them were given the same run folder and options."""
    runs = ranks.gather((str(out.resolve()), config.to_json()), "comparing the processes' runs")
    if any(run != runs[0] for run in runs):
        folders = sorted({run[0] for run in runs})
        what = f"folders {', '.join(folders)}" if len(folders) > 1 else "options"
        raise BagError(f"the {ranks.world} processes were given different {what}; launch the same command on "
                       "every process")
