"""Packaging: package.xml declares what the code uses, and `colcon build` installs the ROS layout."""

import ast
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "depth_anything_ros"
PACKAGE_SOURCES = ["package.xml", "setup.py", "setup.cfg", "resource", PACKAGE, "launch", "config", "rviz"]

# Python import name -> rosdep key (ROS packages are their own keys). safetensors has no rosdep key (pip only).
PYTHON_KEYS = {"numpy": "python3-numpy", "cv2": "python3-opencv", "torch": "python3-torch",
               "huggingface_hub": "python3-huggingface-hub-pip", "rosbags": "python3-rosbags-pip",
               "matplotlib": "python3-matplotlib", "yaml": "python3-yaml",
               "h5py": "python3-h5py", "scipy": "python3-scipy"}
ROS_PACKAGES = {"rclpy", "rcl_interfaces", "builtin_interfaces", "std_msgs", "sensor_msgs", "geometry_msgs",
                "diagnostic_msgs", "lifecycle_msgs", "rosgraph_msgs", "launch", "launch_ros"}
# message packages rclpy imports by type name at run time: `bag play --clock` publishes rosgraph_msgs/msg/Clock
BY_TYPE_NAME = {"rosgraph_msgs": "rosgraph_msgs/msg/Clock"}


def manifest() -> ET.Element:
    return ET.parse(REPO_ROOT / "package.xml").getroot()


def imported_top_levels(paths) -> set[str]:
    names = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_manifest_is_format_3_ament_python():
    root = manifest()
    assert root.get("format") == "3"
    assert root.findtext("name") == PACKAGE
    assert root.findtext("license") == "Apache-2.0"
    assert root.findtext("export/build_type") == "ament_python"
    assert (REPO_ROOT / "resource" / PACKAGE).is_file()


def test_exec_depends_are_exactly_what_the_code_uses():
    sources = [*(REPO_ROOT / PACKAGE).rglob("*.py"), *(REPO_ROOT / "launch").glob("*.launch.py")]
    imports = imported_top_levels(sources)
    used = {PYTHON_KEYS[name] for name in imports & PYTHON_KEYS.keys()} | (imports & ROS_PACKAGES)
    launch_text = "".join(path.read_text() for path in (REPO_ROOT / "launch").glob("*.launch.py"))
    used |= set(re.findall(r"package=['\"](rviz2)['\"]", launch_text))
    code_text = "".join(path.read_text() for path in sources)
    used |= {package for package, type_name in BY_TYPE_NAME.items() if f'"{type_name}"' in code_text}
    declared = {element.text for element in manifest().findall("exec_depend")}
    assert declared == used, f"unused: {sorted(declared - used)}; undeclared: {sorted(used - declared)}"
    assert {element.text for element in manifest().findall("test_depend")} == {"python3-pytest", "python3-ruff-pip"}


def copy_package(destination: Path) -> None:
    destination.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in PACKAGE_SOURCES:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, destination / name)


def test_colcon_build_installs_ros_layout(tmp_path):
    pytest.importorskip("colcon_core", reason="colcon is not installed (scripts/setup_venv.sh installs it)")
    copy_package(tmp_path / "src" / PACKAGE)
    build = subprocess.run(
        [sys.executable, "-c", "import sys; from colcon_core.command import main; sys.exit(main())",
         "--log-base", "log", "build", "--base-paths", "src", "--build-base", "build", "--install-base", "install",
         "--event-handlers", "console_direct-"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr

    prefix = tmp_path / "install" / PACKAGE
    share = prefix / "share" / PACKAGE
    for executable in ("depth_anything_node", "depth-anything-ros"):
        assert os.access(prefix / "lib" / PACKAGE / executable, os.X_OK), f"lib/{PACKAGE}/{executable} not installed"
    for pattern in ("launch/*.launch.py", "config/*.yaml", "rviz/*.rviz"):
        assert list(share.glob(pattern)), f"share/{PACKAGE}/{pattern} not installed"
    assert (share / "package.xml").is_file()
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE).is_file()

    site_packages = next(prefix.glob("lib/python3*/site-packages"))
    env = {**os.environ, "PYTHONPATH": str(site_packages)}
    run = subprocess.run([str(prefix / "lib" / PACKAGE / "depth-anything-ros"), "--help"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "estimate" in run.stdout


def test_readme_workspace_commands_run_as_written(tmp_path):
    """The README's robot install block, in a temporary workspace: every line but rosdep and pip, as written."""
    pytest.importorskip("colcon_package_selection", reason="colcon-common-extensions is not installed")
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Install on a ROS 2 robot", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.DOTALL).group(1).strip().splitlines()
    assert block[1] == "git clone <this repository> depth_anything_ros"
    home = tmp_path / "home"
    (home / "ros2_ws" / "src").mkdir(parents=True)
    copy_package(home / "ros2_ws" / "src" / PACKAGE)  # the clone
    kept = [line for i, line in enumerate(block) if i != 1 and not line.startswith(("rosdep ", "pip "))]
    assert kept == ["cd ~/ros2_ws/src", "cd ~/ros2_ws", "colcon build --packages-select depth_anything_ros",
                    "source install/setup.bash"]
    checks = ['python3 -c "import depth_anything_ros, sys; print(depth_anything_ros.__file__)"',
              f"test -x install/{PACKAGE}/lib/{PACKAGE}/depth_anything_node",
              f"install/{PACKAGE}/lib/{PACKAGE}/depth-anything-ros --help > /dev/null"]
    script = "set -e\n" + "\n".join(kept + checks) + "\n"
    env = {**os.environ, "HOME": str(home), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    run = subprocess.run(["bash", "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert str(home / "ros2_ws" / "install") in run.stdout, run.stdout  # the installed package, not the checkout
