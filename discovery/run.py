"""One discovery run: gather the unknown photos, group them, replace the open proposals.

`run_discovery` is the body of the ``discovery`` job kind (`discovery.job`). A new run
replaces the catalog's *open* proposals (their photos are grouped again with whatever arrived
since); accepted and rejected ones stay. Photos of an accepted proposal are never proposed
again (a sighting is reviewed by then; a trap detection is left out by its crop), and a group
with exactly the photos of a rejected proposal is not proposed again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from catalog.manifest import utc_now
from catalog.repository import CatalogRepository
from discovery.group import GroupConfig, Grouping
from discovery.model import Link, Proposal
from discovery.photos import discover_photos
from discovery.sources import Photo, sighting_photos, trap_photos
from discovery.store import ProposalStore, new_proposal_id
from jobs.records import JobStore
from matching.pipeline import Pipeline
from sightings.repository import SightingRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DiscoveryRequest:
    """What a run groups and how."""

    catalog_id: str
    owner: str  # the catalog owner's tenant (the job's)
    job_id: str
    trap_job: str | None = None  # group this camera-trap batch's photos instead of sightings
    max_score: float = 0.5  # below this best score a photo counts as unknown
    min_score: float | None = None  # pair score that confirms (None: the calibration's)
    max_photos: int = 2000


@dataclass(frozen=True)
class DiscoveryOutcome:
    """What a run did."""

    photos: int
    grouping: Grouping
    proposals: list[Proposal]
    replaced: int  # open proposals of earlier runs removed


def run_discovery(
    store,
    pipeline: Pipeline,
    request: DiscoveryRequest,
    config: GroupConfig = GroupConfig(),
    progress: Callable[[str, int, int], None] = lambda stage, d, t: None,
) -> DiscoveryOutcome:
    """Group the catalog's unknown photos and store one open proposal per group.

    Raises:
        NotFound: no such catalog, or trap batch (another tenant's).
        BadInput: ``trap_job`` is no finished camera-trap batch.
    """
    manifest = CatalogRepository(store).get_manifest(request.catalog_id)
    proposals = ProposalStore(store)
    earlier = proposals.list(request.catalog_id)
    accepted_keys = {m.crop_key for p in earlier if p.state == "accepted" for m in p.members}
    rejected = {frozenset(m.crop_key for m in p.members) for p in earlier if p.state == "rejected"}
    progress("gathering", 0, 0)
    if request.trap_job:
        found = trap_photos(
            JobStore(store),
            request.trap_job,
            request.owner,
            request.catalog_id,
            request.max_score,
            request.max_photos,
        )
    else:
        found = sighting_photos(
            SightingRepository(store),
            request.catalog_id,
            request.owner,
            request.max_score,
            request.max_photos,
        )
    photos: list[Photo] = [p for p in found if p.member.crop_key not in accepted_keys]
    if request.min_score is not None:
        config = replace(config, min_score=request.min_score)
    grouping = discover_photos(
        pipeline, manifest.kind, [p.pixels for p in photos], config, progress=progress
    )
    replaced = 0
    for old in earlier:
        if old.state == "open":
            proposals.delete(request.catalog_id, old.proposal_id)
            replaced += 1
    now = utc_now()
    made = []
    for group in grouping.groups:
        members = [photos[i] for i in group.members]
        if frozenset(p.member.crop_key for p in members) in rejected:
            continue
        for p in members:
            if p.jpeg is not None:
                store.put(p.member.crop_key, p.jpeg)
        links = tuple(
            Link(
                photos[e.a].member.ref,
                photos[e.b].member.ref,
                e.similarity,
                e.inliers,
                e.score,
            )
            for e in group.pairs
        )
        proposal = Proposal(
            proposal_id=new_proposal_id(),
            catalog_id=request.catalog_id,
            tenant=request.owner,
            job_id=request.job_id,
            created_at=now,
            members=tuple(p.member for p in members),
            links=links,
            score=round(group.score, 4),
        )
        made.append(proposals.add(proposal))
    log.info(
        "catalog %s: %d photos, %d groups proposed, %d open proposals replaced",
        request.catalog_id,
        len(photos),
        len(made),
        replaced,
    )
    return DiscoveryOutcome(len(photos), grouping, made, replaced)
