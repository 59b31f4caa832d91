"""One stage's network on its runtime: export once (cached), load, or fall back to torch.

`accelerate` is what a stage calls after loading its torch model: it returns the forward
function the stage runs (torch tensor in, torch tensor out, so the stage's pre- and
post-processing stay as they are) and a `StageRuntime` saying what runs and why. A model the
runtime cannot export or load falls back to torch with one log line and the reason kept in
the `StageRuntime` (``GET /v1/info`` shows it); it never fails the load.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.errors import ModelUnavailable
from runtimes.cache import ExportKey, lookup, publish, source_digest
from runtimes.engines import (
    PRECISIONS,
    RUNTIMES,
    OpenVinoModel,
    OrtModel,
    RuntimeNotInstalled,
    ort_providers_available,
    require,
    resolve_runtime,
)

log = logging.getLogger(__name__)

#: ONNX opset of every export (part of the cache key).
OPSET = 17

Forward = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class StageRuntime:
    """What one stage runs on (reported by ``GET /v1/info``).

    Attributes:
        stage: ``detector``, ``embedder:<name>``...
        runtime: the runtime that runs (``torch`` after a fallback).
        precision: ``fp32`` or ``int8`` (what runs).
        requested: the runtime and precision asked for, ``<runtime>/<precision>``.
        reason: why what runs differs from what was asked for (None when it does not).
        export: the cache folder of the exported model (None for torch).
    """

    stage: str
    runtime: str
    precision: str
    requested: str
    reason: str | None = None
    export: str | None = None

    def as_dict(self) -> dict:
        """JSON-ready fields."""
        return asdict(self)


@dataclass(frozen=True)
class RuntimeRequest:
    """Which runtime and precision a stage should run on, and where exports are cached."""

    runtime: str = "auto"
    precision: str = "fp32"
    cache_dir: Path = Path(".cache/exports")
    threads: int = 0

    def __post_init__(self) -> None:
        if self.runtime not in (*RUNTIMES, "auto"):
            raise ModelUnavailable(f"unknown runtime {self.runtime!r}; known: auto, {RUNTIMES}")
        if self.precision not in PRECISIONS:
            raise ModelUnavailable(f"unknown precision {self.precision!r}; known: {PRECISIONS}")


def export_onnx(module: nn.Module, sample: torch.Tensor, path: Path, shape: tuple) -> None:
    """Write ``module`` as ONNX (opset `OPSET`), the axes named by a letter in ``shape``
    (``b``, ``h``, ``w``) dynamic."""
    require("onnx")
    axes = {i: str(d) for i, d in enumerate(shape) if isinstance(d, str)}
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(
            module,
            (sample,),
            str(path),
            opset_version=OPSET,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": axes, "output": {0: "b"}} if axes else None,
            dynamo=False,
        )


def writer(runtime: str, module: nn.Module, sample: torch.Tensor, shape: tuple):
    def write(folder: Path) -> list[str]:
        onnx_path = folder / "model.onnx"
        export_onnx(module, sample, onnx_path, shape)
        if runtime == "onnxruntime":
            return ["model.onnx"]
        ov = require("openvino")
        model = ov.convert_model(str(onnx_path))
        ov.save_model(model, str(folder / "model.xml"), compress_to_fp16=False)
        onnx_path.unlink()
        return ["model.xml", "model.bin"]

    return write


def load_exported(runtime: str, folder: Path, threads: int, device_type: str):
    """The runtime's model for an export folder: a callable float32 array -> array."""
    if runtime == "onnxruntime":
        return OrtModel(folder / "model.onnx", threads, device_type)
    return OpenVinoModel(folder / "model.xml", threads)


def export_key(
    runtime: str, precision: str, stem: str, sources: list[Path], shape: tuple
) -> ExportKey:
    """The cache key of one export (see `runtimes.cache`)."""
    fmt = "onnx" if runtime == "onnxruntime" else "openvino"
    return ExportKey(stem, source_digest(sources), OPSET, tuple(shape), precision, fmt)


class RuntimeForward:
    """A runtime's model behind a torch-tensor interface (float32 through numpy)."""

    def __init__(self, model: OrtModel | OpenVinoModel, device: torch.device) -> None:
        self.model = model
        self.device = device

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy()))
        return torch.from_numpy(out).to(self.device)


def check_against_torch(
    module: nn.Module, model, sample: torch.Tensor, shape: tuple | None = None
) -> None:
    """Run a random batch of two through both: a trace that baked a value in as a constant
    (Python control flow, numpy inside forward) gives other outputs, and must not run.

    When ``shape`` names dynamic sides (``h``, ``w``), a second batch at twice the sample's
    sides is checked too: a trace that baked the traced size in (Python arithmetic on
    ``x.shape``, such as kornia's ALIKED ``max(h, w) / 4``) agrees at the traced size only.

    Raises:
        ValueError: the outputs differ by more than float32 rounding allows.
    """
    generator = torch.Generator().manual_seed(0)
    sizes = [tuple(sample.shape[1:])]
    if shape is not None and any(isinstance(d, str) for d in shape[2:]):
        dims = zip(sample.shape[1:], shape[1:], strict=True)
        sizes.append(tuple(2 * n if isinstance(d, str) else n for n, d in dims))
    device = next(module.parameters()).device
    for size in sizes:
        x = torch.rand((2, *size), generator=generator, dtype=torch.float32)
        with torch.no_grad():
            expected = module(x.to(device)).float().cpu().numpy()
        got = model(x.numpy())
        if got.shape != expected.shape:
            raise ValueError(
                f"the export's output shape {got.shape} is not torch's {expected.shape} "
                f"(input {tuple(x.shape)})"
            )
        error = float(np.abs(got - expected).max())
        if error > 1e-3 * (1.0 + float(np.abs(expected).max())):
            raise ValueError(
                f"the export's outputs differ from torch's by up to {error:.3g} "
                f"(input {tuple(x.shape)})"
            )


def accelerate(
    module: nn.Module,
    *,
    stage: str,
    stem: str,
    sources: list[Path],
    sample: torch.Tensor,
    shape: tuple,
    request: RuntimeRequest,
    device: torch.device,
) -> tuple[Forward, StageRuntime]:
    """The forward function of ``module`` on the requested runtime, exporting it on first use.

    Args:
        module: the loaded torch model, in eval mode (float32 on the CPU for the export).
        stage: the stage's name in `StageRuntime` (``detector``, ``embedder:products``).
        stem: a readable name for the cache folder.
        sources: the files the model was loaded from (their sha256 is in the cache key).
        sample: an input of the model's shape, for the export's trace.
        shape: the input shape with dynamic axes as letters, e.g. ``("b", 3, 224, 224)``.
        request: runtime, precision, cache folder and threads.
        device: where the stage's tensors live (outputs are moved there).

    Returns:
        ``(forward, runtime)``: ``forward`` takes and returns torch tensors. An int8 request
        with no int8 export (``python -m matching.quantize`` writes them) runs fp32 and says
        so; a runtime that cannot export or load the model falls back to ``module`` itself.

    Raises:
        RuntimeNotInstalled: a runtime named explicitly whose package is missing.
    """
    requested = f"{request.runtime}/{request.precision}"
    runtime = resolve_runtime(request.runtime, device.type, ort_providers_available())
    if runtime == "torch":
        reason = None if request.precision == "fp32" else "int8 is offered on openvino only"
        return module, StageRuntime(stage, "torch", "fp32", requested, reason)
    require(runtime)  # named explicitly and missing: an error naming the package
    if runtime == "openvino" and device.type == "cuda":
        reason = "openvino runs on the CPU here; the GPU runs torch (or onnxruntime)"
        log.warning("%s: %s", stage, reason)
        return module, StageRuntime(stage, "torch", "fp32", requested, reason)
    precision, reason = request.precision, None
    try:
        if precision == "int8":
            key = export_key(runtime, "int8", stem, sources, shape)
            folder = lookup(request.cache_dir, key)
            if folder is None:
                precision = "fp32"
                reason = (
                    f"no int8 export in {request.cache_dir} for this file "
                    f"(python -m matching.quantize writes it); running fp32"
                )
                log.warning("%s: %s", stage, reason)
        if precision == "fp32":
            key = export_key(runtime, "fp32", stem, sources, shape)
            folder = lookup(request.cache_dir, key)
            if folder is None:
                log.info("%s: exporting %s for %s (once)", stage, stem, runtime)
                folder = publish(request.cache_dir, key, writer(runtime, module, sample, shape))
        model = load_exported(runtime, folder, request.threads, device.type)
        if precision == "fp32":
            check_against_torch(module, model, sample, shape)
    except RuntimeNotInstalled:
        raise
    except Exception as exc:  # any export/load failure: torch runs it, with the reason
        reason = f"{runtime} could not export or load {stem}: {type(exc).__name__}: {exc}"
        reason = reason[:500]
        log.warning("%s: falling back to torch: %s", stage, reason)
        return module, StageRuntime(stage, "torch", "fp32", requested, reason)
    info = StageRuntime(stage, runtime, precision, requested, reason, folder.name)
    return RuntimeForward(model, device), info
