"""The torch floor: the installed torch passes, older ones are refused with a fix; setup.py and README agree."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from depth_anything_ros.models.torch_support import MIN_TORCH, check_torch

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_installed_torch_passes():
    assert check_torch() == torch.__version__


@pytest.mark.parametrize("version", [MIN_TORCH, f"{MIN_TORCH}.0", f"{MIN_TORCH}.0a0+git1234", f"{MIN_TORCH}.1+cu121",
                                     "2.10.0", "2.13.0+cpu", "3.0.0"])
def test_versions_at_or_above_the_floor_pass(version):
    assert check_torch(version) == version


@pytest.mark.parametrize("version", ["1.8.1", "1.13.1", "1.13.1+dfsg", "2.0.1", "2.1.2", "2.2.2+cu121"])
def test_versions_below_the_floor_raise_an_error_that_says_what_to_do(version):
    with pytest.raises(ImportError) as error:
        check_torch(version)
    message = str(error.value)
    assert f"torch {version} is installed" in message
    assert f"torch >= {MIN_TORCH}" in message
    assert f"pip install 'torch>={MIN_TORCH}'" in message
    assert "pytorch.org" in message and "--skip-keys python3-torch" in message


def test_unparsable_version_is_a_value_error():
    with pytest.raises(ValueError, match="not a torch version"):
        check_torch("nightly")


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def test_importing_the_estimator_runs_the_check():
    """A torch that reports an old version is refused when the estimator (the node's and tools' way in) is imported."""
    result = run_python("import torch\ntorch.__version__ = '2.2.2'\nimport depth_anything_ros.models.v2.estimator")
    assert result.returncode != 0
    assert f"ImportError: depth_anything_ros needs torch >= {MIN_TORCH}, but torch 2.2.2 is installed" in result.stderr


def test_package_import_stays_light():
    result = run_python("import sys\nimport depth_anything_ros, depth_anything_ros.models.torch_support\n"
                        "print('torch' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_setup_py_and_readme_state_the_floor():
    setup_py = (REPO_ROOT / "setup.py").read_text()
    assert re.search(rf"""["']torch>={re.escape(MIN_TORCH)}["']""", setup_py)
    assert f"torch>={MIN_TORCH}" in (REPO_ROOT / "README.md").read_text()
