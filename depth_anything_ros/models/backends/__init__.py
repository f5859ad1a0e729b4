"""Backends below the entry points: ONNX export and its sidecar, ONNX Runtime, the startup self-check."""
