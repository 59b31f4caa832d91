"""The registry of job kinds: ``@job_kind("analytics")`` names the function that runs a kind.

A kind's function is ``fn(params: dict, ctx: JobContext) -> dict | None``: it reads its
parameters, reports progress with ``ctx.progress(done, total, message)``, writes its result
files into ``ctx.files_dir`` and returns a small JSON summary (stored as the record's
``result``). It raises a `core.errors.SightingError` (e.g. `BadInput`) for a clear failure
message; anything else fails the job with the exception's type and text.

The consumer imports the modules named by ``SIGHTING_JOB_MODULES`` (comma-separated, e.g.
``analytics.job``) so that their ``@job_kind`` decorators run; those modules must import
heavy libraries (torch, models) inside the function, not at import time.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from core.errors import BadInput

if TYPE_CHECKING:
    from jobs.runner import JobContext

JobFunction = Callable[[dict[str, Any], "JobContext"], "dict[str, Any] | None"]
_KINDS: dict[str, JobFunction] = {}


def job_kind(name: str) -> Callable[[JobFunction], JobFunction]:
    """Register the decorated function as the runner of job kind ``name``.

    Raises:
        ValueError: another function already has this name.
    """

    def register(fn: JobFunction) -> JobFunction:
        existing = _KINDS.get(name)
        if existing is not None and existing is not fn:
            same = (existing.__module__, existing.__qualname__) == (fn.__module__, fn.__qualname__)
            if not same:  # a module imported twice (as __main__ and by name) is the same
                raise ValueError(f"job kind {name!r} is already registered by {existing!r}")
        _KINDS[name] = fn
        return fn

    return register


def get_kind(name: str) -> JobFunction:
    """The function of kind ``name``.

    Raises:
        BadInput: no such kind is registered in this process.
    """
    try:
        return _KINDS[name]
    except KeyError:
        known = ", ".join(sorted(_KINDS)) or "none"
        raise BadInput(f"unknown job kind {name!r} (registered: {known})") from None


def kinds() -> list[str]:
    """Names of the registered kinds."""
    return sorted(_KINDS)


def load_modules(modules: Iterable[str]) -> None:
    """Import the modules that register job kinds (``SIGHTING_JOB_MODULES``)."""
    for module in modules:
        importlib.import_module(module)
