"""Sightings and reviews (issue 23): keeping answers, listing, reading and reviewing them.

Thin use cases over the sightings package (`sightings.keep`, `sightings.repository`,
`sightings.review`): access checks (the caller's catalog; a sighting another tenant kept is
404), the worker's models for the crops a review turns into catalog images, and the refit a
review schedules.
"""

from __future__ import annotations

import numpy as np

from catalog.cache import model_fingerprints
from matching.catalog_view import CatalogView
from matching.references import to_blobs
from matching.result import FrameResult, Match
from service.access import Caller, calibration_source, owned_manifest
from service.jobs import refit_calibration_soon
from service.options import SightingListOptions
from service.state import SightingState
from sightings.keep import KeepContext, Kept, TrackKeeper, keep_frame, keep_ranked
from sightings.model import Sighting, SightingFilter, SightingPage, SightingSource
from sightings.repository import SightingRepository
from sightings.review import ReviewOutcome, ReviewRequest, review_sighting


def repository(s: SightingState) -> SightingRepository:
    """The sightings of the worker's store."""
    return SightingRepository(s.repository.store)


def keep_context(
    s: SightingState, caller: Caller, view: CatalogView, source: SightingSource, photo=True
) -> KeepContext:
    """What every sighting of one answer shares."""
    return KeepContext(
        catalog_id=view.catalog_id,
        tenant=caller.tenant,
        catalog_version=view.version,
        source=source,
        calibration=calibration_source(s, view),
        embedder=view.embedder,
        retention=s.settings.sightings_retention,
        keep_photo=photo,
    )


def wants_keep(s: SightingState, requested: bool) -> bool:
    """``keep`` asked for, or ``SIGHTING_SIGHTINGS_KEEP_ALL``."""
    return bool(requested) or s.settings.sightings_keep_all


def keep_detected(
    s: SightingState, caller: Caller, view: CatalogView, result: FrameResult, pixels, source
) -> Kept:
    """A detect answer's matched objects, one sighting each."""
    return keep_frame(repository(s), result, pixels, keep_context(s, caller, view, source))


def keep_searched(
    s: SightingState, caller: Caller, view: CatalogView, matches: list[Match], pixels, source
) -> Kept:
    """A search answer: one sighting of the photo and its ranked list."""
    return keep_ranked(repository(s), matches, pixels, keep_context(s, caller, view, source))


def keep_tracks(
    s: SightingState, caller: Caller, view: CatalogView, keeper: TrackKeeper, result, pixels, source
) -> Kept:
    """A stream frame's tracks: one sighting per track, its best view."""
    return keeper.keep(repository(s), result, pixels, keep_context(s, caller, view, source))


def _scope(caller: Caller) -> str | None:
    return None if caller.admin else caller.tenant


def list_sightings(
    s: SightingState, caller: Caller, catalog_id: str, options: SightingListOptions
) -> SightingPage:
    """One page of the catalog's sightings, newest first, filtered."""
    owned_manifest(s, caller, catalog_id)
    where = SightingFilter(
        state=options.state,
        item_id=options.item_id,
        source=options.source,
        since=options.since,
        until=options.until,
    )
    return repository(s).list(
        catalog_id, where, tenant=_scope(caller), offset=options.offset, limit=options.limit
    )


def get_sighting(s: SightingState, caller: Caller, catalog_id: str, sighting_id: str) -> Sighting:
    """One sighting of the caller's (404: unknown, or another tenant's)."""
    owned_manifest(s, caller, catalog_id)
    return repository(s).get(catalog_id, sighting_id, tenant=_scope(caller))


def sighting_image(
    s: SightingState, caller: Caller, catalog_id: str, sighting_id: str, which: str
) -> bytes:
    """The sighting's crop or photo (JPEG bytes)."""
    return repository(s).image(get_sighting(s, caller, catalog_id, sighting_id), which)


def review(
    s: SightingState, caller: Caller, catalog_id: str, sighting_id: str, request: ReviewRequest
) -> ReviewOutcome:
    """One verdict (`sightings.review.review_sighting`); schedules the catalog's refit."""
    manifest = owned_manifest(s, caller, catalog_id)
    pipeline = s.pipeline

    def describe(pixels: np.ndarray):
        with s.model_lock:
            return to_blobs(pipeline.describe_reference(pixels, manifest.kind))

    outcome = review_sighting(
        repository(s),
        s.repository,
        catalog_id,
        sighting_id,
        request,
        caller.tenant,
        describe=describe,
        fingerprints=model_fingerprints(pipeline, manifest.kind),
        owner_tenant=manifest.owner if caller.admin else None,
    )
    if outcome.catalog_changed:
        s.catalogs.refresh(catalog_id)
    refit_calibration_soon(s, catalog_id, manifest.owner)
    return outcome
