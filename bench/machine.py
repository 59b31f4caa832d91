"""A one-line description of the machine and settings, printed above every benchmark table."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch

from bench.results import save_results
from core.settings import Settings


def describe(settings: Settings) -> str:
    """CPU/GPU, threads, models and versions as one line."""
    if torch.cuda.is_available():
        device = f"GPU {torch.cuda.get_device_name(0)}"
    else:
        device = f"CPU {platform.processor() or platform.machine()} x{os.cpu_count()}"
    return (
        f"machine: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}; "
        f"models: detector={settings.detector} embedder={settings.embedder} "
        f"verifier={settings.verifier} device={settings.device} runtime={settings.runtime} "
        f"async_verify={settings.async_verify}"
    )


def save_json(path: str | Path, config: Settings, **table: Any) -> Path:
    """Write a benchmark's table as a result file (`bench.results.save_results`) whose machine
    line is `describe` and whose settings are ``config``'s model set, plus
    ``table["settings"]`` (name -> value: threads, images, sizes...).

    ``table``: ``title``, ``columns``, ``rows`` and optionally ``settings``, ``command``,
    ``notes``; rendered on the documentation site when saved under ``docs/benchmarks/``."""
    extra = dict(table.pop("settings", {}))
    models = {
        f"SIGHTING_{name.upper()}": getattr(config, name)
        for name in ("detector", "embedder", "verifier", "device", "threads", "shortlist")
    }
    return save_results(path, machine=describe(config), settings=models | extra, **table)
