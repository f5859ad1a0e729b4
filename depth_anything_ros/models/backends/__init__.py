"""Backends below the entry points: ONNX export and its sidecar, ONNX Runtime, OpenVINO, the startup self-check."""
