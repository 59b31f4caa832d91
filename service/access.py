"""Who asks, and what they may use: the caller, owned catalogs and catalogs ready to match.

A catalog belongs to the tenant that made it; another tenant gets 404 (as for an unknown id),
an admin sees every catalog. A catalog indexed with another embedder than this service runs
for its kind answers matching calls with 409 until it is re-indexed.
"""

from __future__ import annotations

from dataclasses import dataclass

from catalog.manifest import Manifest
from core.errors import Conflict, NotFound
from matching.catalog_view import CatalogView
from service.state import SightingState


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of a request (``api.auth`` finds it from the API key)."""

    tenant: str
    admin: bool = False

    def may_use(self, owner: str) -> bool:
        """Whether the caller owns what ``owner`` owns, or is an admin."""
        return self.admin or owner == self.tenant

    @property
    def scope(self) -> str | None:
        """The tenant whose things the caller lists (None: an admin lists everything)."""
        return None if self.admin else self.tenant


def check_owner(caller: Caller, owner: str, catalog_id: str) -> None:
    """404 unless the caller owns the catalog or is an admin (404 hides foreign catalogs)."""
    if not caller.may_use(owner):
        raise NotFound(f"no catalog {catalog_id!r}")


def needs_reindex(s: SightingState, manifest: Manifest) -> bool:
    """Whether the catalog was built with another embedder than this service runs for its
    kind: searches answer 409 until ``python -m catalog reindex`` (docs/deploying.md, "after
    a model change")."""
    return manifest.indexed_with_other(s.pipeline.embedder_for(manifest.kind).fingerprint)


def owned_manifest(s: SightingState, caller: Caller, catalog_id: str) -> Manifest:
    """The catalog's manifest if the caller may use it, else 404."""
    manifest = s.repository.get_manifest(catalog_id)
    check_owner(caller, manifest.owner, catalog_id)
    return manifest


def catalog_for_matching(s: SightingState, caller: Caller, catalog_id: str) -> CatalogView:
    """The caller's catalog, ready to search (404 unknown or foreign; 409 when it was indexed
    with another embedder than this service runs for its kind)."""

    # answered from the worker's cached manifest (re-read every SIGHTING_SYNC_INTERVAL_S);
    # the cache runs the check on a newly read manifest before it builds a view from it:
    # another model's vectors may not even have this model's length
    def usable(manifest: Manifest) -> None:
        check_owner(caller, manifest.owner, manifest.catalog_id)
        if needs_reindex(s, manifest):
            mine = s.pipeline.embedder_for(manifest.kind).fingerprint
            raise Conflict(
                f"catalog {manifest.catalog_id!r} was indexed with embedder "
                f"{manifest.embedder_fingerprint}, this service runs {mine}: re-index it "
                f"(python -m catalog reindex {manifest.catalog_id}) or configure the same "
                "embedder"
            )

    return s.catalogs.get(catalog_id, check=usable)[1]


def calibration_source(s: SightingState, view: CatalogView) -> str:
    """``catalog`` (the catalog's own calibration scored the answer) or ``kind_default``."""
    return s.pipeline.calibration_for(view)[1]
