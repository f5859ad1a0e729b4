"""Fixtures shared by the whole test suite."""

import os
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def synthetic_vits_checkpoint(tmp_path_factory) -> Path:
    """Official-layout vits state_dict with deterministic random weights, written once per session."""
    from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint

    return write_synthetic_checkpoint(tmp_path_factory.mktemp("checkpoints") / "synthetic_vits.pth", "vits", seed=0)


@pytest.fixture(scope="session")
def ros_env() -> Iterator[dict[str, str]]:
    """Environment for ROS processes of this session: a random domain, discovery on this host only.

    It is applied to this process too, so in-process rclpy sees the same graph as the subprocesses.
    """
    isolated = {
        "ROS_DOMAIN_ID": str(random.SystemRandom().randint(1, 200)),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    saved = {key: os.environ.get(key) for key in isolated}
    os.environ.update(isolated)
    yield dict(os.environ)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def cli() -> list[str]:
    """Command prefix for the `depth-anything-ros` console script (installed one when present)."""
    script = Path(sys.executable).with_name("depth-anything-ros")
    return [str(script)] if script.exists() else [sys.executable, "-m", "depth_anything_ros.cli"]


@pytest.fixture(scope="session")
def synthetic_da3_checkpoint(tmp_path_factory) -> Path:
    """Official-format DA3METRIC-LARGE model.safetensors, deterministic random weights (1.3 GB), once per session."""
    from depth_anything_ros.models.da3.checkpoint import write_synthetic_da3_checkpoint

    return write_synthetic_da3_checkpoint(tmp_path_factory.mktemp("da3") / "model.safetensors", seed=0)


@pytest.fixture(scope="session")
def synthetic_vda_checkpoint(tmp_path_factory) -> Path:
    """Official-format Video Depth Anything metric vits .pth (torch.save), deterministic random weights, per session."""
    from depth_anything_ros.models.vda.checkpoint import write_synthetic_vda_checkpoint

    folder = tmp_path_factory.mktemp("vda")
    return write_synthetic_vda_checkpoint(folder / "metric_video_depth_anything_vits.pth", "vits", seed=0)
