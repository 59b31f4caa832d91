"""One exit-code convention for every command (``python -m catalog``, ``matching``, ``bench.*``...).

0: done. 2: usage or bad input: argparse's own errors (it exits 2), and every error the API
would answer with a 4xx (`BadInput`, `NotFound`, `Conflict`...: a missing file, a set in the
wrong layout, an unknown catalog). 1: a failure while running: a 5xx error (a model or the
store unavailable) or any other exception. Each command's ``--help`` ends with `EXIT_STATUS`;
`command` turns a `SightingError` (or a bad setting) escaping ``main`` into its message and
exit code.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec

from pydantic import ValidationError

from core.errors import SightingError

OK = 0
FAILURE = 1  # a failure while running
USAGE = 2  # usage or bad input

EXIT_STATUS = (
    "Exit status: 0 done; 2 usage or bad input (bad arguments, a missing or unreadable input, "
    "an unknown catalog or item, a bad SIGHTING_* setting); 1 a failure while running (a model "
    "or the store unavailable)."
)

P = ParamSpec("P")


def epilog(text: str | None = None) -> str:
    """A parser's epilog: ``text`` (if any), then `EXIT_STATUS`."""
    return f"{text}\n\n{EXIT_STATUS}" if text else EXIT_STATUS


def exit_code(exc: SightingError) -> int:
    """`USAGE` for an error that is the caller's (HTTP 4xx), else `FAILURE`."""
    return USAGE if exc.status < 500 else FAILURE


def report(exc: SightingError) -> int:
    """Print ``error: <message>`` on stderr and return the error's exit code."""
    print(f"error: {exc.message}", file=sys.stderr)
    return exit_code(exc)


def command(main: Callable[P, int]) -> Callable[P, int]:
    """Decorate a command's ``main``: a `SightingError` it raises becomes `report`'s code, a
    settings `ValidationError` (a bad ``SIGHTING_*`` value) `USAGE`."""

    @functools.wraps(main)
    def run(*args: P.args, **kwargs: P.kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except SightingError as exc:
            return report(exc)
        except ValidationError as exc:
            print(f"error: bad setting: {exc}", file=sys.stderr)
            return USAGE

    return run
