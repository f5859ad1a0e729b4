"""The backends' names and option values, importable without torch, onnxruntime or openvino.

The CLI parser (cli_options.py) and the node's parameters (ros/params.py) take their choices and defaults from here,
the loader and the runtimes their checks.
"""

BACKENDS = ("torch", "onnxruntime", "openvino")
DEFAULT_PROVIDERS = ("CPUExecutionProvider",)  # onnxruntime
OPENVINO_DEFAULT_DEVICE = "CPU"
# OpenVINO inference precision hint -> the OPTIMIZATION_CAPABILITIES entry a device must list to run it natively
OPENVINO_PRECISIONS = {"f32": "FP32", "bf16": "BF16", "f16": "FP16"}
OPENVINO_DEFAULT_PRECISION = "f32"  # torch fp32's numerics; OpenVINO's own CPU default is bf16 where AMX is
