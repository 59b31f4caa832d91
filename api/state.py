"""The worker's one state object (`service.state.SightingState`), as the routes reach it.

Built by ``create_app`` and kept in ``app.extensions["sighting"]``; each gunicorn worker builds
its own (models are never loaded in the master: see gunicorn.conf.py).
"""

from __future__ import annotations

from flask import current_app

from service.state import ModelQueue, SightingState

__all__ = ["ModelQueue", "SightingState", "state"]


def state() -> SightingState:
    """The current app's `SightingState`."""
    return current_app.extensions["sighting"]
