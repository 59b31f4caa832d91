"""Inference runtimes: each stage's network exported once (ONNX, then OpenVINO IR) and run on
``torch`` (the reference), ``openvino`` (the CPU default) or ``onnxruntime`` (CPU, or CUDA /
TensorRT on a GPU). See docs/runtimes.md.

>>> forward, info = accelerate(model, stage="detector", stem="yolov5n", sources=[path],
...                            sample=x, shape=("b", 3, "h", "w"),
...                            request=request_for(settings, "detector"), device=device)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtimes.engines import PACKAGES, RUNTIMES, RuntimeNotInstalled, select_providers
from runtimes.stage import RuntimeRequest, StageRuntime, accelerate

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = [
    "PACKAGES",
    "RUNTIMES",
    "RuntimeNotInstalled",
    "RuntimeRequest",
    "StageRuntime",
    "accelerate",
    "request_for",
    "select_providers",
]


def request_for(settings: Settings, stage: str) -> RuntimeRequest:
    """The runtime request of ``stage`` (``detector`` or ``embedder``) from the settings: the
    stage's own runtime when set, else ``SIGHTING_RUNTIME``; its precision; the export cache;
    the threads."""
    runtime = getattr(settings, f"{stage}_runtime") or settings.runtime
    return RuntimeRequest(
        runtime=runtime,
        precision=getattr(settings, f"{stage}_precision"),
        cache_dir=settings.export_dir,
        threads=settings.threads,
    )
