"""The layout's rules: layers as folders with one-way imports, no circles, ROS-free lower layers, light entry points."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = REPO_ROOT / "depth_anything_ros"
ROS_MODULES = {"rclpy", "rosidl_runtime_py", "builtin_interfaces", "std_msgs", "sensor_msgs", "diagnostic_msgs",
               "lifecycle_msgs", "rcl_interfaces", "rosgraph_msgs", "geometry_msgs", "launch", "launch_ros"}
FAMILY_FILES = {"__init__.py", "network.py", "checkpoint.py", "preprocess.py", "estimator.py"}
FAMILY_EXTRA = {"vda": {"temporal.py"}}  # a temporal family also holds its streaming and windowing rules
# layer -> the package's layers it must not import (entry points cli*, estimate may import every layer)
FORBIDDEN = {
    "models": ("frame", "ros", "bag", "train", "cli", "cli_options", "estimate", "datasets", "evaluate"),
    "frame": ("ros", "bag", "train", "cli", "cli_options", "estimate", "datasets", "evaluate"),
    # beside frame/: entry points and train read datasets; readers need no model, ROS, bag or server
    "datasets": ("models", "frame", "ros", "bag", "train", "server", "cli", "cli_options", "estimate", "evaluate"),
    "ros": ("bag", "train", "cli", "cli_options", "estimate"),
    "bag": ("ros", "train", "cli", "estimate"),
    "train": ("ros", "cli", "estimate"),
    "server": ("ros", "bag", "train", "cli", "estimate"),
}
# models/backends/ (ONNX export, ONNX Runtime, OpenVINO, the self-check) sits on the families: they and the registry
# never import it (checkpoint_io reads an export's synthetic mark through the light backends.sidecar only)
MODEL_SUBLAYERS = {"depth_anything_ros.models.v2": "depth_anything_ros.models.backends",
                   "depth_anything_ros.models.da3": "depth_anything_ros.models.backends",
                   "depth_anything_ros.models.vda": "depth_anything_ros.models.backends",
                   "depth_anything_ros.models.registry": "depth_anything_ros.models.backends"}
MAX_MODULE_LINES = 400


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (packages as their __init__)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported_names(path: Path) -> set[str]:
    """Every absolute module name an import statement in the file names, inside functions too."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import (the package uses absolute imports)"
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """Return module -> the package's modules it imports."""
    mods = modules()
    return {name: {n for n in imported_names(path) if n in mods and n != name} for name, path in mods.items()}


def layer(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_graph_sees_the_package():
    graph = import_graph()
    assert {"depth_anything_ros.frame.pipeline", "depth_anything_ros.models.registry",
            "depth_anything_ros.ros.node"} <= set(graph)
    assert "depth_anything_ros.models.v2.estimator" in graph["depth_anything_ros.models.registry"]


def test_no_import_circles():
    graph = import_graph()
    done, on_path, cycles = set(), [], []

    def visit(node):
        on_path.append(node)
        for nxt in sorted(graph[node]):
            if nxt in on_path:
                cycles.append(on_path[on_path.index(nxt):] + [nxt])
            elif nxt not in done:
                visit(nxt)
        on_path.pop()
        done.add(node)

    for start in sorted(graph):
        if start not in done:
            visit(start)
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_cycle_finder_finds_a_circle(tmp_path):
    """The walk above must see a circle hidden in a function: feed it one."""
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("from depth_anything_ros.b import x\n")
    b.write_text("def f():\n    from depth_anything_ros.a import y\n")
    assert "depth_anything_ros.b" in imported_names(a) and "depth_anything_ros.a" in imported_names(b)


@pytest.mark.parametrize("name", sorted(m for m in modules() if layer(m) in FORBIDDEN))
def test_imports_point_down(name):
    bad = [n for n in imported_names(modules()[name]) if n.startswith("depth_anything_ros.")
           and layer(n) in FORBIDDEN[layer(name)]]
    assert not bad, f"{name} ({layer(name)}/) imports {sorted(bad)}"


@pytest.mark.parametrize("name", sorted(m for m in modules() if any(m.startswith(low) for low in MODEL_SUBLAYERS)))
def test_model_families_do_not_import_the_backends(name):
    above = next(MODEL_SUBLAYERS[low] for low in MODEL_SUBLAYERS if name.startswith(low))
    bad = [n for n in imported_names(modules()[name]) if n.startswith(above)]
    assert not bad, f"{name} imports {sorted(bad)}"


@pytest.mark.parametrize("name", sorted(m for m in modules() if layer(m) in ("models", "frame")))
def test_lower_layers_import_no_ros(name):
    bad = {n.split(".")[0] for n in imported_names(modules()[name])} & ROS_MODULES
    assert not bad, f"{name} imports {sorted(bad)}"


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_lower_layers_import_with_rclpy_unimportable():
    names = sorted(m for m in modules() if layer(m) in ("models", "frame"))
    code = ("import importlib, sys\n"
            f"for blocked in {sorted(ROS_MODULES)!r}:\n    sys.modules[blocked] = None\n"
            f"for name in {names!r}:\n    importlib.import_module(name)\n"
            "print(len(sys.modules) > 0)")
    result = run_python(code)
    assert result.returncode == 0 and result.stdout.strip() == "True", result.stderr


def test_family_folders_have_the_same_files():
    families = [d for d in (PACKAGE / "models").iterdir()
                if d.is_dir() and (d / "__init__.py").exists() and d.name != "backends"]  # backends: no family
    assert {d.name for d in families} >= {"v2", "da3", "vda"}
    for folder in families:
        assert {p.name for p in folder.glob("*.py")} == FAMILY_FILES | FAMILY_EXTRA.get(folder.name, set()), folder


def test_modules_stay_small():
    long = {str(p.relative_to(REPO_ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_public_api_is_lazy_and_complete():
    code = ("import sys\nimport depth_anything_ros as d\n"
            "light = 'torch' not in sys.modules and 'rclpy' not in sys.modules\n"
            "from depth_anything_ros import (DepthEstimator, DA3Estimator, load_estimator, FramePipeline,\n"
            "    FrameOptions, CheckpointError, write_synthetic_checkpoint)\n"
            "print(light, sorted(d.__all__), 'rclpy' in sys.modules, issubclass(CheckpointError, Exception))")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    light, *rest = result.stdout.split(" ", 1)
    assert light == "True", "import depth_anything_ros loaded torch or rclpy"
    assert rest[0].strip() == ("['CheckpointError', 'DA3Estimator', 'DepthEstimator', 'FrameOptions', 'FramePipeline', "
                               "'load_estimator', 'write_synthetic_checkpoint'] False True")


def test_unknown_public_name_is_an_attribute_error():
    import depth_anything_ros

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        depth_anything_ros.Nope  # noqa: B018


@pytest.mark.parametrize("argv", [["--help"], ["bag", "--help"], ["bag", "record", "--help"], ["bag", "play", "--help"],
                                  ["bag", "sample", "--help"], ["bag", "process", "--help"], ["estimate", "--help"],
                                  ["train", "--help"], ["demo", "--help"],
                                  ["serve", "--help"], ["export", "--help"]])
def test_help_imports_neither_torch_nor_rclpy(argv):
    code = ("import sys\nfrom depth_anything_ros.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit as exc:\n    code = exc.code\n"
            "print('RESULT', code, 'torch' in sys.modules, 'rclpy' in sys.modules)")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "RESULT 0 False False", result.stdout[-300:]


def test_bag_sample_runs_without_torch(tmp_path):
    code = ("import sys\nfrom depth_anything_ros.cli import main\n"
            f"code = main(['bag', 'sample', {str(tmp_path / 'bag')!r}, '--frames', '2', '--width', '64',"
            " '--height', '48'])\n"
            "print('RESULT', code, 'torch' in sys.modules, 'rclpy' in sys.modules)")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "RESULT 0 False False", result.stdout[-300:]
    assert (tmp_path / "bag" / "metadata.yaml").exists()


def test_estimate_loads_torch_when_it_runs(tmp_path):
    """The lazy path still loads the model stack when a model is needed (the check above can fail)."""
    code = ("import sys\nfrom depth_anything_ros.cli import main\n"
            f"code = main(['estimate', {str(tmp_path / 'missing.png')!r}, '--out', {str(tmp_path)!r}])\n"
            "print('RESULT', code, 'torch' in sys.modules)")
    result = run_python(code)
    assert result.stdout.splitlines()[-1] == "RESULT 2 True", result.stdout[-300:] + result.stderr[-300:]
