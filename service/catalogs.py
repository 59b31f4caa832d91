"""Catalogs: create, list, read (with its calibration state), delete."""

from __future__ import annotations

from dataclasses import dataclass

from catalog.calibration import calibration_state
from catalog.manifest import Manifest
from jobs.calibration import forget_refit
from service.access import Caller, needs_reindex, owned_manifest
from service.state import SightingState
from sightings.duplicates import DuplicateLog


@dataclass(frozen=True)
class CatalogSummary:
    """A catalog's manifest and whether it must be re-indexed for this service's models."""

    manifest: Manifest
    needs_reindex: bool
    calibration: dict | None = None  # `catalog.calibration.calibration_state` (one catalog)


def _summary(s: SightingState, manifest: Manifest) -> CatalogSummary:
    return CatalogSummary(manifest, needs_reindex(s, manifest))


def create_catalog(s: SightingState, caller: Caller, name: str, kind: str) -> CatalogSummary:
    """A new, empty catalog of the caller."""
    return _summary(s, s.repository.create_catalog(name, kind, caller.tenant))


def list_catalogs(s: SightingState, caller: Caller) -> list[CatalogSummary]:
    """The caller's catalogs (an admin's: every catalog), oldest first."""
    return [_summary(s, m) for m in s.repository.list_catalogs(owner=caller.scope)]


def get_catalog(s: SightingState, caller: Caller, catalog_id: str) -> CatalogSummary:
    """One catalog with its calibration state."""
    manifest = owned_manifest(s, caller, catalog_id)
    state = calibration_state(s.repository, manifest, s.pipeline)
    uploads = DuplicateLog(s.repository.store).pairs(manifest)
    if uploads:  # an upload's possible duplicates join the look-alike list
        state["look_alikes"] = list(state.get("look_alikes", [])) + uploads
    return CatalogSummary(manifest, needs_reindex(s, manifest), state)


def delete_catalog(s: SightingState, caller: Caller, catalog_id: str) -> None:
    """Delete a catalog with every image, feature and pending calibration refit."""
    owned_manifest(s, caller, catalog_id)
    s.repository.delete_catalog(catalog_id)
    s.catalogs.invalidate(catalog_id)
    forget_refit(s.repository.store, catalog_id)
