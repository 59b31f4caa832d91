"""A one-line description of the machine and settings, printed above every benchmark table."""

from __future__ import annotations

import os
import platform

import torch

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
