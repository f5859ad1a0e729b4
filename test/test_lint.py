"""Linters as tests: ruff (pycodestyle, pyflakes, pep257 docstrings) and the no-rclpy rule of the algorithm layer."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = REPO_ROOT / "depth_anything_ros"
ROS_MODULES = {"rclpy", "rosidl_runtime_py", "builtin_interfaces", "std_msgs", "sensor_msgs", "diagnostic_msgs",
               "lifecycle_msgs", "rcl_interfaces", "rosgraph_msgs", "launch", "launch_ros"}


def ros_free_modules() -> list[str]:
    """Modules that docs/architecture.md puts in the algorithm layer or marks `no rclpy`."""
    table = (REPO_ROOT / "docs" / "architecture.md").read_text()
    rows = re.findall(r"^\| `depth_anything_ros/(\w+)\.py` \| ([^|]*) \|", table, flags=re.MULTILINE)
    return [name for name, layer in rows if "algorithm" in layer or "no rclpy" in layer]


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=REPO_ROOT, capture_output=True, text=True)


def test_ruff_check_whole_repository():
    result = ruff("check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_pep257_docstrings_are_checked_in_package():
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")
    lint = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "D" in lint["select"] and lint["pydocstyle"]["convention"] == "pep257"
    assert set(lint["ignore"]) <= {"D105", "D107"}, "only magic methods and __init__ may go undocumented"
    assert not [pattern for pattern in lint.get("per-file-ignores", {}) if "depth_anything_ros" in pattern]


def test_architecture_lists_ros_free_modules():
    assert {"model", "estimator", "geometry", "image_codec"} <= set(ros_free_modules())


@pytest.mark.parametrize("module", ros_free_modules())
def test_algorithm_module_has_no_ros_import(module):
    path = PACKAGE / f"{module}.py"
    assert path.exists(), f"{path.name} is listed in docs/architecture.md but missing"
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & ROS_MODULES, f"{path.name} imports {sorted(imported & ROS_MODULES)}"


def test_algorithm_layer_imports_no_ros_transitively():
    modules = ros_free_modules()
    code = ("import sys\n" + "".join(f"import depth_anything_ros.{m}\n" for m in modules)
            + f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(ROS_MODULES)!r}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"importing the algorithm layer loads {result.stdout.strip()}"
