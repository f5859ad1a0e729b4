"""The node's parameters, declared once: name, default, description, range or choices, run-time changeability."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

from depth_anything_ros.frame.colorize import DEFAULT_COLORMAP
from depth_anything_ros.frame.frame_io import FrameOptions
from depth_anything_ros.frame.scale import SCALE_MODES, ScaleOptions
from depth_anything_ros.frame.scan import ScanOptions
from depth_anything_ros.models.backends.choices import (
    BACKENDS,
    DEFAULT_PROVIDERS,
    OPENVINO_DEFAULT_DEVICE,
    OPENVINO_DEFAULT_PRECISION,
    OPENVINO_PRECISIONS,
)
from depth_anything_ros.models.cpu_features import auto_cpu_precision_text
from depth_anything_ros.models.input_size import INPUT_SIZE_RULE, MAX_INPUT_SIZE, PATCH, check_input_size

_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
          float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING,
          list: ParameterType.PARAMETER_STRING_ARRAY}

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter; `low`/`high` give a numeric range, `choices` the accepted strings."""

    name: str
    default: object
    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    runtime: bool = False  # True: takes effect on the next frame; False: on the next configure/activate
    any_type: bool = False  # True: the value may also be a bool (YAML 'true'/'false') besides the choices
    step: int = 1  # integers: the accepted values are low, low + step, ... up to high
    rule: str = ""  # the accepted values in words, where the range alone would word them differently

    def descriptor(self) -> ParameterDescriptor:
        """Return the ParameterDescriptor (type, description, range, read-only never) of this parameter."""
        text = self.description
        if self.choices:
            text += f" One of: {', '.join(self.choices)}."
        text += " Changes at run time." if self.runtime else " Applies on reconfigure (cleanup, configure, activate)."
        desc = ParameterDescriptor(name=self.name, type=_TYPES[type(self.default)], description=text,
                                   dynamic_typing=self.any_type)
        if isinstance(self.default, float) and self.low is not None:
            desc.floating_point_range = [FloatingPointRange(from_value=float(self.low), to_value=float(self.high))]
        elif isinstance(self.default, int) and not isinstance(self.default, bool) and self.low is not None:
            desc.integer_range = [IntegerRange(from_value=int(self.low), to_value=int(self.high), step=self.step)]
        return desc


PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("model.checkpoint", "hypersim-vits",
              "Metric checkpoint: a variant name (hypersim-vits/vitb/vitl, vkitti-vits/vitb/vitl, '-hf' suffix for "
              "the transformers format; da3metric-large, which needs camera_info; vda-metric-vits/vitb/vitl, "
              "temporal) or a path to an official .pth file, a Hugging Face model folder or a DA3 model.safetensors."),
    ParamSpec("model.encoder", "auto",
              "Encoder; auto: the variant's, or read from the checkpoint's tensor shapes.",
              choices=("auto", "vits", "vitb", "vitl")),
    ParamSpec("model.max_depth", 0.0,
              "Metric head scale in metres (hypersim 20, vkitti 80); 0 = auto: the variant's, config.json's or "
              "known from the official file name.", low=0.0, high=1000.0),
    ParamSpec("model.input_size", 0,
              f"Network input size, 0 (auto) or {INPUT_SIZE_RULE}; auto: the official one of the model's family, "
              "518 for Depth-Anything-V2 (the shorter side resized to at least this), 504 for DA3 (its process_res: "
              "the longer side resized to at most this).",
              low=0, high=MAX_INPUT_SIZE, step=PATCH, rule=f"0 (auto) or {INPUT_SIZE_RULE}"),
    ParamSpec("model.sky", "invalid",
              "da3metric-large only: sky pixels (sky probability >= 0.3) are NaN in depth and absent from points "
              "(invalid), or filled with the 0.99-quantile of the other pixels' depth as the official code does.",
              choices=("invalid", "official_fill")),
    ParamSpec("model.temporal_max_gap", 1.0,
              "Temporal models (vda-metric-*): a camera's frames more than this many seconds apart (header stamps) "
              "start its temporal state over, as do a stamp going back, an image size change and deactivate; "
              "0 = never for a gap.", low=0.0, high=3600.0, runtime=True),
    ParamSpec("model.reset_temporal", False,
              "Temporal models: setting this true starts every camera's temporal state over (each set to true "
              "does it again; it reads back as set).", runtime=True),
    ParamSpec("model.compile", "auto",
              "torch.compile the network (one graph per input shape, each compile logged) and warm it up at "
              "activation for every camera whose camera_info is known; auto: on for CUDA, off for CPU.",
              choices=("auto", "true", "false"), any_type=True),
    ParamSpec("model.backend", "torch",
              "What runs the network: torch, or onnxruntime or openvino with model.checkpoint an exported .onnx "
              "file (depth-anything-ros export; encoder, max depth and input size come from its sidecar). "
              "Preprocessing and everything after the network are the same code for all three (docs/onnx.md).",
              choices=BACKENDS),
    ParamSpec("model.providers", list(DEFAULT_PROVIDERS),
              "onnxruntime: execution providers in order of preference (TensorrtExecutionProvider, "
              "CUDAExecutionProvider, OpenVINOExecutionProvider, CPUExecutionProvider); one that this onnxruntime "
              "lacks fails activation, naming the available ones."),
    ParamSpec("model.tensorrt_cache", "",
              "TensorrtExecutionProvider: folder for its engines (one per input shape, minutes to build on a Jetson) "
              "and timing cache; '' = none, every activation builds again."),
    ParamSpec("model.tensorrt_fp16", False, "TensorrtExecutionProvider: build fp16 engines (the self-check bounds "
              "the difference)."),
    ParamSpec("model.openvino_device", OPENVINO_DEFAULT_DEVICE,
              "openvino: the OpenVINO device that runs the network (CPU; GPU, NPU where OpenVINO lists them); one "
              "that OpenVINO does not list here fails activation, naming the available ones."),
    ParamSpec("model.openvino_precision", OPENVINO_DEFAULT_PRECISION,
              "openvino: inference precision hint. f32 (default) keeps torch fp32's numerics (OpenVINO's own CPU "
              "default is bf16 on CPUs with AMX or avx512_bf16); bf16 and f16 only on a device that runs them "
              "natively, else activation fails; the self-check bounds the difference.",
              choices=tuple(OPENVINO_PRECISIONS)),
    ParamSpec("model.self_check", True,
              "onnxruntime and openvino: at activation, run one probe frame through the backend and through the "
              "PyTorch checkpoint the file was exported from (on the CPU); a difference above the tolerance (1% of "
              "the max depth, 0.1% mean; docs/onnx.md) fails activation with an ERROR. Logged and in /diagnostics."),
    ParamSpec("device", "auto", "Torch device: auto (cuda if available, else cpu), cpu, cuda or cuda:N."),
    ParamSpec("precision", "auto", "Inference precision; auto: bf16 where supported, else fp16 on CUDA; on the CPU "
              "bf16 where it is native (avx512_bf16 or amx_bf16 in /proc/cpuinfo), else fp32 (the choice is logged)",
              choices=("auto", "fp32", "fp16", "bf16")),
    ParamSpec("image_transport", "raw",
              "raw: subscribe sensor_msgs/Image on 'image'; compressed: sensor_msgs/CompressedImage (jpeg/png) on "
              "'image/compressed' (the remapped 'image' name + '/compressed').", choices=("raw", "compressed")),
    ParamSpec("qos.reliability", "best_effort",
              "Reliability of the image and camera_info subscriptions (history depth 1, volatile). best_effort "
              "hears every publisher; reliable hears reliable publishers only.", choices=("best_effort", "reliable")),
    ParamSpec("cloud.enabled", True, "Publish the point cloud on 'points' (only computed while it has subscribers).",
              runtime=True),
    ParamSpec("cloud.stride", 1, "Use every n-th row and column of the depth image for the cloud.",
              low=1, high=64, runtime=True),
    ParamSpec("cloud.min_depth", 0.0, "Points closer than this (metres) are invalid (NaN / dropped).",
              low=0.0, high=1000.0, runtime=True),
    ParamSpec("cloud.max_depth", 0.0, "Points farther than this (metres) are invalid; 0 = no limit.",
              low=0.0, high=1000.0, runtime=True),
    ParamSpec("cloud.color", True, "Add the packed 'rgb' FLOAT32 field (b, g, r bytes) from the input image.",
              runtime=True),
    ParamSpec("cloud.organized", True,
              "true: height x width of the strided grid with NaN for invalid points (is_dense false); "
              "false: invalid points dropped (height 1).", runtime=True),
    ParamSpec("cloud.edge_filter", False,
              "Drop flying pixels (the smear a monocular network puts between a foreground object and the background) "
              "from points and scan: a pixel whose two row or two column neighbours are both seen at less than "
              "cloud.edge_angle_deg from its viewing ray (jump-edge rule of May et al. 2009).", runtime=True),
    ParamSpec("cloud.edge_angle_deg", 5.0,
              "Edge filter threshold, degrees: surfaces seen more obliquely than this are dropped (at 5 degrees and "
              "0.3 m above it, the floor beyond 3.4 m too).", low=0.1, high=45.0, runtime=True),
    ParamSpec("cloud.voxel_size", 0.0,
              "Voxel grid of this side (metres): one point per occupied voxel, the centroid with the average colour; "
              "needs cloud.organized false; 0 = off.", low=0.0, high=100.0, runtime=True),
    ParamSpec("cloud.min_confidence", 0.0,
              "Points whose depth/confidence is below this are invalid (the confidence is then computed: the "
              "network runs on the mirrored image too); 0 = no gate.", low=0.0, high=1.0, runtime=True),
    ParamSpec("scan.enabled", False,
              "Publish a sensor_msgs/LaserScan on 'scan' with depthimage_to_laserscan's conventions (only computed "
              "while it has subscribers).", runtime=True),
    ParamSpec("scan.height", 1, "Rows of the depth image, centred on the optical centre, each scan bin keeps the "
              "nearest of (depthimage_to_laserscan scan_height).", low=1, high=4096, runtime=True),
    ParamSpec("scan.range_min", 0.45, "Nearest valid range, metres; a bin with only closer pixels is -inf.",
              low=0.0, high=1000.0, runtime=True),
    ParamSpec("scan.range_max", 10.0, "Farthest valid range, metres; a bin with only farther pixels is +inf (free "
              "space: Nav2's inf_is_valid).", low=0.001, high=1000.0, runtime=True),
    ParamSpec("scan.time", 0.033, "scan_time of the LaserScan, seconds between scans.", low=0.0, high=3600.0,
              runtime=True),
    ParamSpec("scan.output_frame", "camera_depth_frame",
              "frame_id of the scan: a frame at the camera with x forward and z up (the scan turns about z), not "
              "the image's optical frame; '' = the image's frame_id.", runtime=True),
    ParamSpec("scan.min_confidence", 0.0, "Pixels whose depth/confidence is below this are invalid for the scan; "
              "0 = no gate.", low=0.0, high=1.0, runtime=True),
    ParamSpec("confidence.enabled", False,
              "Publish 'depth/confidence' (32FC1, 0..1): agreement of the image and its mirror image run in the "
              "same batch (doubles the network's work) times the sine of the angle the surface is seen at (only "
              "computed while it has subscribers).", runtime=True),
    ParamSpec("depth.scale", 1.0, "Multiplicative correction applied to the estimated depth (and the cloud).",
              low=0.001, high=1000.0, runtime=True),
    ParamSpec("scale.mode", "fixed",
              "fixed: depth.scale; reference: fitted per frame to 'reference_depth' (an RGB-D camera's aligned "
              "depth or a projected LiDAR scan), relative checkpoints allowed; ground_plane: scale.camera_height / "
              "the floor distance fitted to the unscaled cloud. depth.scale is the scale until the first fit.",
              choices=SCALE_MODES, runtime=True),
    ParamSpec("scale.time_constant", 1.0,
              "Seconds (header stamps) of the exponential smoothing of the fitted scale; 0 = every fit applies at "
              "once.", low=0.0, high=3600.0, runtime=True),
    ParamSpec("scale.max_rate", 0.5,
              "Largest relative change of the scale per second; a larger jump is rate-limited and logged.",
              low=0.001, high=1000.0, runtime=True),
    ParamSpec("scale.timeout", 2.0,
              "Seconds without a good fit before the camera's status goes WARN (the last scale is kept).",
              low=0.0, high=3600.0, runtime=True),
    ParamSpec("scale.max_stamp_diff", 0.05,
              "A reference depth is paired with the image of the nearest header stamp within this many seconds.",
              low=0.0, high=10.0, runtime=True),
    ParamSpec("scale.min_reference_depth", 0.1, "Reference pixels closer than this (metres) are not used.",
              low=0.0, high=1000.0, runtime=True),
    ParamSpec("scale.max_reference_depth", 20.0, "Reference pixels farther than this (metres) are not used.",
              low=0.001, high=1000.0, runtime=True),
    ParamSpec("scale.min_pixels", 100,
              "Fewer valid reference pixels (reference) or floor inliers (ground_plane: floor grid points): no fit.",
              low=3, high=100_000_000, runtime=True),
    ParamSpec("scale.camera_height", 0.0, "ground_plane: height of the camera's optical centre above the floor, "
              "metres.", low=0.0, high=1000.0, runtime=True),
    ParamSpec("scale.floor_pitch_deg", 0.0,
              "ground_plane: the camera looks down by this many degrees (expected floor normal in the optical "
              "frame: (0, -cos, -sin)).", low=-90.0, high=90.0, runtime=True),
    ParamSpec("scale.max_normal_angle_deg", 10.0,
              "ground_plane: a fitted floor normal farther than this from the expected direction is refused.",
              low=0.0, high=90.0, runtime=True),
    ParamSpec("scale.learn_floor", False,
              "ground_plane: the first accepted floor normal becomes the expected direction (learns roll and the "
              "exact pitch of the mount).", runtime=True),
    ParamSpec("colored.enabled", True,
              "Publish the colourised depth on 'depth/colored' (only computed while it has subscribers).",
              runtime=True),
    ParamSpec("colored.colormap", DEFAULT_COLORMAP, "Colormap of 'depth/colored' (near = warm, invalid = black).",
              runtime=True),
    ParamSpec("camera.fallback_fov_deg", 0.0,
              "Horizontal field of view (degrees) of an ideal pinhole used for the cloud when no camera_info "
              "arrived within 3 s; 0 = off (publish depth only).", low=0.0, high=179.0, runtime=True),
    ParamSpec("camera.undistort", True,
              "Back-project raw (distorted) images through their camera_info distortion (plumb_bob, "
              "rational_polynomial, equidistant); false: treat the image as rectified.", runtime=True),
    ParamSpec("cameras", [""],
              "Camera namespaces served by one model, frames arriving together batched: [''] = the node's own "
              "'image', 'camera_info', 'depth', ...; ['left', 'right'] = 'left/image', 'left/depth', ..."),
    ParamSpec("autostart", True, "Configure and activate at startup, so a plain 'ros2 run' processes images."),
)

SPECS: dict[str, ParamSpec] = {spec.name: spec for spec in PARAMS}
# ScaleOptions fields, each the parameter scale.<field>
_SCALE_FIELDS = ("mode", "time_constant", "max_rate", "timeout", "min_reference_depth", "max_reference_depth",
                 "min_pixels", "camera_height", "floor_pitch_deg", "max_normal_angle_deg", "learn_floor")
# ScanOptions fields, each the parameter scan.<field>
_SCAN_FIELDS = ("height", "range_min", "range_max", "time", "output_frame", "min_confidence")


def validate(values: dict[str, object], colormaps: tuple[str, ...] = ()) -> str | None:
    """Return why `values` (name -> value, a full or partial parameter set) are invalid, or None when valid.

    Checks choices, device syntax, camera namespaces, the min/max cloud range and, when `colormaps` is given, the
    colormap name. Types and numeric ranges are enforced by the descriptors.
    """
    for name, value in values.items():
        spec = SPECS.get(name)
        if spec is None:
            continue
        if spec.any_type and isinstance(value, bool):
            continue
        if spec.choices and value not in spec.choices:
            return f"{name} must be one of {', '.join(spec.choices)}, got '{value}'"
    device = values.get("device")
    if device is not None and not _DEVICE.match(str(device)):
        return f"device must be auto, cpu, cuda or cuda:N, got '{device}'"
    size = values.get("model.input_size")
    if size:  # 0: the family's own
        try:
            check_input_size(size)
        except ValueError as exc:
            return f"model.input_size: {exc}"
    colormap = values.get("colored.colormap")
    if colormap is not None and colormaps and str(colormap).lower() not in colormaps:
        return f"colored.colormap must be one of {', '.join(colormaps)}, got '{colormap}'"
    cameras = values.get("cameras")
    if cameras is not None:
        names = [camera_namespace(c) for c in cameras]
        if not names:
            return "cameras must hold at least one namespace ('' = the node's own topics)"
        if len(set(names)) != len(names):
            return f"cameras must be unique, got {list(cameras)}"
        bad = [c for c in names if c and not re.match(r"^/?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$", c)]
        if bad:
            return f"cameras entries must be valid namespaces, got '{bad[0]}'"
    low, high = values.get("cloud.min_depth"), values.get("cloud.max_depth")
    if low is not None and high is not None and high > 0 and low >= high:
        return f"cloud.min_depth ({low}) must be smaller than cloud.max_depth ({high}; 0 = no limit)"
    return None


def frame_options(values: dict[str, object]) -> FrameOptions:
    """Return the pipeline's per-frame options from the run-time parameters (ValueError naming a bad value)."""
    scale = ScaleOptions(**{name: values[f"scale.{name}"] for name in _SCALE_FIELDS})
    return FrameOptions(depth_scale=values["depth.scale"], cloud_stride=values["cloud.stride"],
                        cloud_min_depth=values["cloud.min_depth"], cloud_max_depth=values["cloud.max_depth"],
                        cloud_color=values["cloud.color"], cloud_organized=values["cloud.organized"],
                        colormap=values["colored.colormap"], undistort=values["camera.undistort"], scale=scale,
                        edge_filter=values["cloud.edge_filter"], edge_angle_deg=values["cloud.edge_angle_deg"],
                        voxel_size=values["cloud.voxel_size"], cloud_min_confidence=values["cloud.min_confidence"],
                        scan=ScanOptions(**{name: values[f"scan.{name}"] for name in _SCAN_FIELDS}),
                        temporal_max_gap=values["model.temporal_max_gap"])


def allowed(spec: ParamSpec) -> str:
    """Describe the values a parameter accepts, in words, for error messages."""
    if spec.rule:
        return spec.rule
    if spec.choices:
        return "one of " + ", ".join(spec.choices)
    if spec.low is not None:
        kind = "a number" if isinstance(spec.default, float) else "an integer"
        steps = f", a multiple of {spec.step}" if spec.step > 1 else ""
        return f"{kind} in [{spec.low:g}, {spec.high:g}]{steps}"
    return f"a {type(spec.default).__name__}"


def command_line_type_errors(argv: list[str]) -> dict[str, str]:
    """Return parameter -> reason for `-p name:=value` rules in argv whose value has the wrong type.

    rcl drops a command-line value whose type differs from the same parameter's value in a --params-file without a
    word, so the node checks its own command line: 'model.input_size:=abc' must fail configure, not run with 518.
    """
    errors: dict[str, str] = {}
    in_ros_args, tokens = False, iter(argv)
    for token in tokens:
        if token == "--ros-args":
            in_ros_args = True
        elif token == "--":
            in_ros_args = False
        elif in_ros_args and token in ("-p", "--param"):
            rule = next(tokens, "")
            name, sep, value = rule.rpartition(":=")
            name = name.rsplit(":", 1)[-1]  # '[node:]name'
            spec = SPECS.get(name)
            if sep and spec is not None and not _fits(spec, _typed(value)):
                errors[name] = (f"invalid parameter {name} = {value!r}: must be {allowed(spec)}; configure fails until "
                                "it is set to a valid value")
    return errors


def _typed(text: str) -> object:
    """Type a command-line parameter value as rcl's YAML reading does (bool, int, float, list or string)."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return [] if text.strip().startswith("[") else text


def _fits(spec: ParamSpec, value: object) -> bool:
    """Return whether a typed value has a type the parameter accepts."""
    if spec.any_type and isinstance(value, bool):
        return True
    expected = type(spec.default)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is str:
        return isinstance(value, str)
    return isinstance(value, expected)


def model_options(values: dict[str, object]) -> dict[str, object]:
    """Keyword arguments of models/backends/loader.load_backend_estimator from the model.* parameters."""
    return {"backend": values["model.backend"], "providers": list(values["model.providers"]),
            "input_size": values["model.input_size"] or None, "sky": values["model.sky"],
            "tensorrt_cache": values["model.tensorrt_cache"], "tensorrt_fp16": values["model.tensorrt_fp16"],
            "openvino_device": values["model.openvino_device"],
            "openvino_precision": values["model.openvino_precision"],
            "encoder": None if values["model.encoder"] == "auto" else values["model.encoder"],
            "max_depth": values["model.max_depth"] or "auto", "device": values["device"],
            "precision": values["precision"], "compile": compile_mode(values["model.compile"])}


def precision_note(values: dict[str, object], estimator) -> str:
    """' (precision auto on the CPU: <choice>, <why>)' for the torch backend with precision auto on a CPU, else ''."""
    on_cpu = str(getattr(estimator, "device", "")).startswith("cpu")
    if values["precision"] != "auto" or values["model.backend"] != "torch" or not on_cpu:
        return ""
    return f" ({auto_cpu_precision_text()})"


def compile_mode(value: object) -> bool | str:
    """Map model.compile ('auto', 'true', 'false' or a YAML bool) to DepthEstimator's compile argument."""
    return value if isinstance(value, bool) else {"true": True, "false": False}.get(str(value), "auto")


def camera_namespace(name: str) -> str:
    """Normalise one `cameras` entry: surrounding blanks and a trailing '/' removed ('' = the node's own topics)."""
    return str(name).strip().rstrip("/")


def camera_topic(namespace: str, topic: str) -> str:
    """Return the topic name of one camera: `topic` for the node's own namespace, else '<namespace>/<topic>'."""
    return f"{namespace}/{topic}" if namespace else topic
