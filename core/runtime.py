"""Process start-up for the model code: environment for ultralytics, torch device and threads.

Call `prepare_environment()` before ultralytics is imported (the packages that use it do so
at their top), and `configure_threads()` once models are loaded in each worker.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from core.settings import REPO_ROOT

if TYPE_CHECKING:
    import torch


def prepare_environment() -> None:
    """Keep ultralytics offline and quiet: no DNS look-ups, analytics, auto-installs or fonts."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    config_dir = Path(os.environ.setdefault("YOLO_CONFIG_DIR", str(REPO_ROOT / ".cache" / "yolo")))
    config_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> cuda when available, else cpu. Asking for cuda without one is an error."""
    import torch

    from core.errors import ModelUnavailable

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ModelUnavailable("SIGHTING_DEVICE=cuda but no CUDA device is available")
    return torch.device(name)


def configure_threads(threads: int = 0) -> None:
    """Set torch's and FAISS's CPU thread counts explicitly (ultralytics forces torch to 1 on
    its first predict; FAISS's OpenMP takes every core, which a process sharing the CPU with
    others, a gunicorn worker or a one-thread benchmark lane, must not).

    Args:
        threads: threads to use; 0 means every core of this machine.
    """
    import faiss
    import torch

    count = threads if threads > 0 else max(1, os.cpu_count() or 1)
    torch.set_num_threads(count)
    faiss.omp_set_num_threads(count)
