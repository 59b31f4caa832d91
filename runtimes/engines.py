"""The runtimes a stage's network can run on, and how each loads an exported model.

``torch`` is today's eager code (the reference). ``openvino`` runs the OpenVINO IR on the CPU
(the default there when the package is installed). ``onnxruntime`` runs the ONNX file, on the
CPU or with the CUDA / TensorRT execution providers on a GPU (`select_providers`). Every
runtime is given the thread count explicitly (``SIGHTING_THREADS``): left alone, each picks
every core, and several gunicorn workers then fight over them.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
from pathlib import Path
from types import ModuleType

import numpy as np

from core.errors import ModelUnavailable

RUNTIMES = ("torch", "openvino", "onnxruntime")
PRECISIONS = ("fp32", "int8")

#: The package each runtime needs (as pinned in requirements.txt).
PACKAGES = {
    "openvino": "openvino==2026.4.1",
    "onnxruntime": "onnxruntime==1.32.0 (onnxruntime-gpu for the CUDA/TensorRT providers)",
    "nncf": "nncf==3.4.0",
    "onnx": "onnx==1.23.2",
}


class RuntimeNotInstalled(ModelUnavailable):
    """A runtime was asked for whose Python package is not installed."""


def require(package: str) -> ModuleType:
    """Import a runtime's package, or raise `RuntimeNotInstalled` naming what to install."""
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise RuntimeNotInstalled(
            f"runtime {package!r} is not installed ({exc}); install the Python package: "
            f"pip install {PACKAGES.get(package, package)}"
        ) from None


def installed(package: str) -> bool:
    """Whether ``package`` can be imported (without importing it)."""
    return importlib.util.find_spec(package) is not None


def thread_count(threads: int) -> int:
    """``SIGHTING_THREADS`` as a number: 0 means every core of this machine."""
    return threads if threads > 0 else max(1, os.cpu_count() or 1)


def resolve_runtime(requested: str, device_type: str, available_providers: list[str]) -> str:
    """The runtime ``auto`` stands for: on the CPU ``openvino`` when installed, else
    ``onnxruntime`` when installed, else ``torch``; on a GPU ``onnxruntime`` when its CUDA
    provider is there (``onnxruntime-gpu``), else ``torch`` (which runs CUDA itself).
    Other names are returned as they are."""
    if requested != "auto":
        return requested
    if device_type == "cuda":
        return "onnxruntime" if "CUDAExecutionProvider" in available_providers else "torch"
    if installed("openvino"):
        return "openvino"
    return "onnxruntime" if installed("onnxruntime") else "torch"


def select_providers(available: list[str], device_type: str, *, tensorrt: bool = True) -> list[str]:
    """ONNX Runtime execution providers, best first: on a GPU TensorRT (when asked for and
    present), then CUDA, and always the CPU last (ONNX Runtime runs any node a GPU provider
    leaves on it). On the CPU: the CPU provider only.

    Raises:
        ModelUnavailable: a GPU was asked for and this onnxruntime has no CUDA provider.
    """
    if device_type != "cuda":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in available:
        raise ModelUnavailable(
            "onnxruntime on a GPU needs its CUDA execution provider; this onnxruntime offers "
            f"{available}: install onnxruntime-gpu instead of onnxruntime"
        )
    chosen = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if tensorrt and "TensorrtExecutionProvider" in available:
        chosen.insert(0, "TensorrtExecutionProvider")
    return chosen


def ort_providers_available() -> list[str]:
    """The execution providers of the installed onnxruntime ([] when not installed)."""
    if not installed("onnxruntime"):
        return []
    import onnxruntime

    return list(onnxruntime.get_available_providers())


class OrtModel:
    """An ONNX file in an ONNX Runtime session: float32 array in, first output out."""

    def __init__(self, path: Path, threads: int, device_type: str = "cpu") -> None:
        ort = require("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = thread_count(threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.providers = select_providers(ort.get_available_providers(), device_type)
        self.session = ort.InferenceSession(str(path), options, providers=self.providers)
        self.input = self.session.get_inputs()[0].name
        self._lock = threading.Lock()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with self._lock:
            return self.session.run(None, {self.input: x})[0]


class OpenVinoModel:
    """An OpenVINO IR compiled for the CPU at full float32 precision (OpenVINO would otherwise
    run bf16 on CPUs that have it), for latency, with an explicit thread count."""

    def __init__(self, xml: Path, threads: int) -> None:
        ov = require("openvino")
        core = ov.Core()
        config = {
            "INFERENCE_NUM_THREADS": thread_count(threads),
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32",
        }
        self.compiled = core.compile_model(core.read_model(str(xml)), "CPU", config)
        self.request = self.compiled.create_infer_request()
        self._lock = threading.Lock()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with self._lock:
            self.request.infer({0: x})
            return self.request.get_output_tensor(0).data.copy()
