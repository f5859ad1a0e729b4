"""What defines a training run, as plain data (no torch): the recipe's hyper-parameters and the run's settings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Recipe:
    """Hyper-parameters; the defaults are the official metric_depth/train.py values."""

    lr: float = 5e-6  # encoder learning rate (--lr)
    head_lr_factor: float = 10.0  # every parameter not in the encoder learns at lr x this
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.01
    power: float = 0.9  # polynomial decay exponent
    silog_lambda: float = 0.5
    min_depth: float = 0.001  # ground truth that counts: [min_depth, max_depth]
    flip_p: float = 0.5
    input_size: int = 518  # square training crops of this side
    batch_size: int = 2
    epochs: int = 40


@dataclass
class TrainConfig:
    """Everything that defines a run; stored in DIR/run.json, read back by --resume."""

    bags: list[str]  # rosbags and RGB-D datasets (datasets/registry.py tells them apart)
    gt_topic: str | None
    checkpoint: str
    image_topic: str | None = None
    encoder: str | None = None
    model_max_depth: float | None = None
    stamp_tolerance: float = 0.0
    gt_max_depth: float | None = None  # None: the model's max_depth (train.py uses one --max-depth for both)
    val_percent: float = 10.0
    val_every: int = 0  # steps between validations; 0: once per epoch
    steps: int = 0  # 0: epochs x steps per epoch
    grad_accum: int = 1
    seed: int = 0
    cache_mb: int = 4096
    dataset_format: str | None = None  # --format of the dataset inputs; None: detected
    recipe: Recipe = field(default_factory=Recipe)

    def to_json(self) -> dict:
        """JSON form (run.json)."""
        return asdict(self)

    @classmethod
    def from_json(cls, content: dict) -> TrainConfig:
        """Inverse of to_json."""
        recipe = dict(content["recipe"])
        recipe["betas"] = tuple(recipe["betas"])
        return cls(**{**content, "recipe": Recipe(**recipe)})
