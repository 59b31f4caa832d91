"""INT8 post-training quantization (NNCF) of a stage's OpenVINO export.

The fp32 export (exported first when missing) is quantized with statistics from a few hundred
calibration inputs and published in the export cache under the same key with precision
``int8``; a stage asked for ``int8`` (``SIGHTING_DETECTOR_PRECISION=int8``) then runs it.
``python -m matching.quantize`` is the command that feeds it real photos.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from runtimes.cache import discard, lookup, publish
from runtimes.engines import require
from runtimes.stage import export_key, writer

log = logging.getLogger(__name__)


def quantize_openvino(
    module: nn.Module,
    *,
    stem: str,
    sources: list[Path],
    sample: torch.Tensor,
    shape: tuple,
    inputs: Sequence[np.ndarray],
    cache_dir: Path,
    ignored_types: Sequence[str] = (),
    overflow_fix: str = "enable",
) -> Path:
    """Quantize ``module``'s OpenVINO export to INT8 and cache it.

    Args:
        module, stem, sources, sample, shape: as for `runtimes.accelerate`.
        inputs: calibration inputs, each float32 of the model's input shape (batch 1).
        cache_dir: the export cache.
        ignored_types: OpenVINO op types left in float (e.g. a detector's box decoding).
        overflow_fix: NNCF's ``OverflowFix``: ``enable`` (7-bit weights in every layer, see
            below), ``first_layer_only`` (NNCF's default) or ``disable``.

    Returns:
        The int8 export's folder.

    Raises:
        RuntimeNotInstalled: openvino or nncf missing.
        ValueError: no calibration inputs.
    """
    if not inputs:
        raise ValueError("no calibration inputs")
    ov = require("openvino")
    nncf = require("nncf")
    fp32_key = export_key("openvino", "fp32", stem, sources, shape)
    fp32 = lookup(cache_dir, fp32_key) or publish(
        cache_dir, fp32_key, writer("openvino", module, sample, shape)
    )
    model = ov.Core().read_model(str(fp32 / "model.xml"))
    ignored = (
        nncf.IgnoredScope(types=list(ignored_types), validate=False) if ignored_types else None
    )
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        OverflowFix,
    )

    quantized = nncf.quantize(
        model,
        nncf.Dataset(list(inputs)),
        subset_size=len(inputs),
        preset=nncf.QuantizationPreset.MIXED,
        ignored_scope=ignored,
        # enable = 7-bit weights in every layer: on a CPU without VNNI (AVX2 only, as the
        # 2-core machine here) int8 products are summed in int16 and saturate. With NNCF's
        # default (first layer only) the products and animals embedders gave vectors at a
        # median cosine of 0.46-0.57 to torch's (dogs recall@1 -24 points); with it, 0.986.
        advanced_parameters=AdvancedQuantizationParameters(overflow_fix=OverflowFix(overflow_fix)),
    )

    def write(folder: Path) -> list[str]:
        ov.save_model(quantized, str(folder / "model.xml"), compress_to_fp16=False)
        return ["model.xml", "model.bin"]

    int8_key = export_key("openvino", "int8", stem, sources, shape)
    old = lookup(cache_dir, int8_key)
    if old is not None:  # a new calibration replaces the old one
        discard(old)
    folder = publish(cache_dir, int8_key, write)
    log.info("int8 export of %s written to %s (%d calibration inputs)", stem, folder, len(inputs))
    return folder
