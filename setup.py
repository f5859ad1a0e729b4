"""ament_python build entry for depth_anything_ros (colcon and pip)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "depth_anything_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/rviz", glob("rviz/*.rviz")),
    ],
    # OpenCV is not listed: ROS installs take python3-opencv from rosdep, which pip cannot see as
    # opencv-python; the virtualenv (scripts/setup_venv.sh) installs opencv-python-headless.
    # torch: the floor is depth_anything_ros/models/torch_support.py's MIN_TORCH (test/test_platform.py keeps them
    # equal).
    install_requires=["setuptools", "numpy", "torch>=2.3", "safetensors", "huggingface_hub", "rosbags", "matplotlib",
                      "pyyaml", "h5py", "scipy"],
    # `depth-anything-ros serve` only: pip install .[serve] (requirements-serve.txt pins the tested versions)
    # `export`, `--backend onnxruntime` and `--backend openvino`: pip install .[onnx] (requirements-onnx.txt pins the
    # tested versions; a robot that only runs exported files needs onnxruntime alone, or onnxruntime-gpu, or
    # openvino alone, docs/onnx.md)
    extras_require={"serve": ["gradio>=6.31,<7", "gradio-client>=2.7,<3"],
                    "onnx": ["onnx>=1.16", "onnxscript>=0.5", "onnxruntime>=1.16", "openvino>=2024.0"]},
    zip_safe=True,
    maintainer="depth_anything_ros maintainers",
    maintainer_email="maintainers@depth-anything-ros.invalid",
    description="Depth-Anything-V2 metric monocular depth for ROS 2: node, estimator, CLI and rosbag tools.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "depth_anything_node = depth_anything_ros.ros.node:main",
            "depth-anything-ros = depth_anything_ros.cli:main",
        ],
    },
)
