"""launch, config and rviz files: checked statically (no launch here) and by running exactly what launch runs.

`ros2 launch depth_anything_ros depth_anything.launch.py` starts `depth_anything_node --ros-args --params-file
config/depth_anything.yaml -p model.checkpoint:=... -r __ns:=/camera`; the last test runs that command and checks the
node comes up, publishes what the rviz file displays and processes an image.
"""

import ast
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from graph_harness import CameraIO, GraphClient, NodeProcess, camera_info_msg, image_msg, node_command, wait_until
from lifecycle_msgs.srv import GetState
from rclpy.impl.implementation_singleton import rclpy_implementation

from depth_anything_ros.ros import params as node_params

REPO_ROOT = Path(__file__).resolve().parent.parent
LAUNCH = REPO_ROOT / "launch" / "depth_anything.launch.py"
CONFIG = REPO_ROOT / "config" / "depth_anything.yaml"
RVIZ = REPO_ROOT / "rviz" / "depth_anything.rviz"
PACKAGE = "depth_anything_ros"
NODE_OUTPUTS = {"depth", "depth/camera_info", "points", "depth/colored", "scan", "depth/confidence"}


def launch_tree() -> ast.Module:
    return ast.parse(LAUNCH.read_text(), filename=str(LAUNCH))


def calls(tree, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == name]


def keyword(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def launch_arguments() -> dict[str, str]:
    """DeclareLaunchArgument name -> default (literal defaults only)."""
    args = {}
    for call in calls(launch_tree(), "DeclareLaunchArgument"):
        default = keyword(call, "default_value")
        args[call.args[0].value] = default.value if isinstance(default, ast.Constant) else None
    return args


def depth_node_call() -> ast.Call:
    nodes = [c for c in calls(launch_tree(), "Node") if isinstance(keyword(c, "executable"), ast.Constant)
             and keyword(c, "executable").value == "depth_anything_node"]
    assert len(nodes) == 1
    return nodes[0]


def console_scripts() -> dict[str, str]:
    setup = ast.parse((REPO_ROOT / "setup.py").read_text())
    entry_points = next(k.value for c in calls(setup, "setup") for k in c.keywords if k.arg == "entry_points")
    scripts = ast.literal_eval(entry_points)["console_scripts"]
    return dict(re.match(r"\s*([^=\s]+)\s*=\s*(\S+)", s).groups() for s in scripts)


def flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_launch_file_is_declarative_without_eval():
    tree = launch_tree()
    called = {getattr(n.func, "id", None) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert not called & {"eval", "exec", "compile", "__import__"}
    assert {"generate_launch_description"} <= {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_launch_executable_is_an_installed_console_script():
    call = depth_node_call()
    assert keyword(call, "package").id == "PACKAGE" or keyword(call, "package").value == PACKAGE
    target = console_scripts()["depth_anything_node"]
    module, function = target.split(":")
    assert module == "depth_anything_ros.ros.node" and function == "main"
    assert (REPO_ROOT / "setup.cfg").read_text().count("$base/lib/depth_anything_ros") >= 1


def test_launch_arguments_are_declared_and_used():
    args = launch_arguments()
    assert {"camera", "image", "camera_info", "model", "use_sim_time", "rviz", "params_file"} <= set(args)
    used = {c.args[0].value for c in calls(launch_tree(), "LaunchConfiguration")}
    assert used == set(args), f"declared but unused: {set(args) - used}; used but undeclared: {used - set(args)}"
    call = depth_node_call()
    assert isinstance(keyword(call, "namespace"), ast.Name)  # the camera namespace
    remapped = {pair.elts[0].value for pair in keyword(call, "remappings").elts}
    assert remapped == {"image", "camera_info"}


def test_params_file_is_installed_and_holds_every_parameter_with_its_default():
    joined = [[e.value for e in c.args[0].elts if isinstance(e, ast.Constant)]
              for c in calls(launch_tree(), "PathJoinSubstitution")]
    assert ["config", "depth_anything.yaml"] in joined and CONFIG.is_file()
    assert ["rviz", "depth_anything.rviz"] in joined and RVIZ.is_file()
    setup = (REPO_ROOT / "setup.py").read_text()
    assert 'glob("config/*.yaml")' in setup and 'glob("rviz/*.rviz")' in setup
    params = yaml.safe_load(CONFIG.read_text())["/**"]["ros__parameters"]
    flat = flatten(params)
    assert set(flat) == set(node_params.SPECS)
    for name, value in flat.items():
        default = node_params.SPECS[name].default
        assert type(value) is type(default) and value == default, name


def test_node_reference_documents_every_parameter_and_topic():
    section = (REPO_ROOT / "docs" / "node.md").read_text()
    for name in [*node_params.SPECS, *NODE_OUTPUTS, "image", "image/compressed", "camera_info", "/diagnostics"]:
        assert f"| `{name}` |" in section, name


def test_documented_launch_commands_use_only_declared_arguments():
    """An undeclared argument (e.g. checkpoint:= for model:=) would be ignored without a word."""
    texts = [(REPO_ROOT / "README.md").read_text(), *(p.read_text() for p in (REPO_ROOT / "docs").glob("*.md"))]
    lines = [line for text in texts for line in text.splitlines()
             if line.startswith(f"ros2 launch {PACKAGE} depth_anything.launch.py")]
    assert len(lines) >= 3
    for line in lines:
        names = {arg.split(":=")[0] for arg in line.split()[4:] if ":=" in arg}
        assert names <= set(launch_arguments()), line


def test_rviz_displays_node_outputs_in_the_optical_frame():
    config = yaml.safe_load(RVIZ.read_text())
    manager = config["Visualization Manager"]
    displays = {d["Class"]: d for d in manager["Displays"]}
    image = displays["rviz_default_plugins/Image"]["Topic"]["Value"]
    cloud = displays["rviz_default_plugins/PointCloud2"]["Topic"]["Value"]
    camera = launch_arguments()["camera"]
    assert image == f"/{camera}/depth/colored" and cloud == f"/{camera}/points"
    assert manager["Global Options"]["Fixed Frame"].endswith("optical_frame")


@pytest.mark.ros
def test_the_command_launch_runs_starts_the_node(ros_env, tmp_path):
    from depth_anything_ros.models.synthetic_weights import write_synthetic_checkpoint

    # the official file name, so the config's max_depth 0 (auto) resolves as for a downloaded checkpoint
    checkpoint = write_synthetic_checkpoint(tmp_path / "depth_anything_v2_metric_hypersim_vits.pth", "vits", seed=0)
    camera = launch_arguments()["camera"]
    process = NodeProcess(node_command(f"/{camera}", checkpoint), ros_env, tmp_path / "node.log")
    client = GraphClient("launch_file_test")
    try:
        assert wait_until(lambda: client.call(GetState, f"/{camera}/depth_anything/get_state",
                                              GetState.Request()).current_state.label == "active", timeout=120), (
            process.log())
        def node_topics() -> set[str]:
            try:  # the service answered, but the client's graph cache may not list the node yet
                return {name for name, _ in client.node.get_publisher_names_and_types_by_node(
                    "depth_anything", f"/{camera}")}
            except rclpy_implementation.NodeNameNonExistentError:
                return set()

        published = wait_until(lambda: node_topics() >= {f"/{camera}/{t}" for t in NODE_OUTPUTS} and True)
        assert published, process.log()
        rviz = yaml.safe_load(RVIZ.read_text())["Visualization Manager"]["Displays"]
        rviz_topics = {d["Topic"]["Value"] for d in rviz if "Topic" in d}
        assert rviz_topics <= node_topics()

        cam = CameraIO(client, f"/{camera}")  # default model.input_size 0: V2 runs at 518; one frame is enough on a CPU
        pixels = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)

        def make(stamp):
            image = image_msg(stamp, "camera_optical_frame", pixels)
            return image, camera_info_msg(image.header, 64, 48, [50.0, 0, 31.5, 0, 50.0, 23.5, 0, 0, 1])

        _, _, out = cam.roundtrip(make, ("depth", "points"), timeout=180)
        assert out["depth"].header.frame_id == "camera_optical_frame"
        assert process.proc.poll() is None
        code, _ = process.interrupt()
        assert code == 0, process.log()
    finally:
        client.close()
        process.stop()
