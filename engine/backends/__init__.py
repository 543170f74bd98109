"""Runtimes for the two networks behind one small interface, chosen from a registry.

``torch`` is the reference; ``onnxruntime`` and ``openvino`` run ONNX exports on
the CPU without torch. See :mod:`engine.backends.registry` for the default.
"""

from engine.backends.base import AUStepBackend, BackendUnavailable, GeneratorBackend
from engine.backends.registry import BACKENDS, DEFAULT_BACKEND, BackendOptions, create_backends

__all__ = [
    "AUStepBackend",
    "BACKENDS",
    "BackendOptions",
    "BackendUnavailable",
    "DEFAULT_BACKEND",
    "GeneratorBackend",
    "create_backends",
]
