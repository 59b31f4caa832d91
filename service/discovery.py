"""Discovery of new individuals as the API uses it: start a run, list, accept, split, reject.

What a run does lives in the ``discovery`` package (a job on the task queue, never in the
request); this module adds who may do what: the catalog must be the caller's (404 otherwise),
a proposal is its run's tenant's (another tenant's is 404), an admin sees all; accepting
describes the new item's photos with the worker's models, then refreshes the catalog and
schedules its calibration refit, as a review does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from catalog.cache import model_fingerprints
from core.errors import BadInput, NotFound
from discovery import decide
from discovery.job import KIND
from discovery.model import Proposal
from discovery.store import ProposalStore
from jobs import JobRecord
from matching.references import to_blobs
from service.access import Caller, owned_manifest
from service.jobs import refit_calibration_soon
from service.state import SightingState
from sightings.repository import SightingRepository


def _proposals(s: SightingState) -> ProposalStore:
    return ProposalStore(s.repository.store)


def start_discovery(
    s: SightingState, caller: Caller, catalog_id: str, body: dict[str, Any]
) -> JobRecord:
    """Queue a discovery run of the caller's catalog (``trap_job``, ``min_score``,
    ``max_score`` optional); its job record.

    Raises:
        NotFound: the catalog is unknown or another tenant's.
        BadInput: ``trap_job`` names no camera-trap batch of the catalog's owner (a body
            field naming nothing usable is 422, like any bad field; 404 is kept for the URL).
    """
    manifest = owned_manifest(s, caller, catalog_id)
    params: dict[str, Any] = {"catalog_id": catalog_id}
    trap_job = body.get("trap_job")
    if trap_job:
        try:
            record = s.jobs.get(trap_job)
        except NotFound:
            record = None
        if record is None or record.owner != manifest.owner or record.kind != "traps":
            raise BadInput(f"no camera-trap batch {trap_job!r}", details={"trap_job": trap_job})
        params["trap_job"] = trap_job
    for name in ("min_score", "max_score"):
        if body.get(name) is not None:
            params[name] = float(body[name])
    # the run belongs to the catalog's owner (an admin's run still proposes to the owner)
    return s.jobs.submit(KIND, params, owner=manifest.owner)


def list_proposals(
    s: SightingState, caller: Caller, catalog_id: str, state: str | None = None
) -> list[Proposal]:
    """The catalog's proposals (``state``: open, accepted or rejected), oldest first."""
    owned_manifest(s, caller, catalog_id)
    found = _proposals(s).list(catalog_id, caller.scope)
    return [p for p in found if state is None or p.state == state]


def get_proposal(s: SightingState, caller: Caller, catalog_id: str, proposal_id: str) -> Proposal:
    """One proposal (404 unknown or another tenant's)."""
    owned_manifest(s, caller, catalog_id)
    return _proposals(s).get(catalog_id, proposal_id, caller.scope)


def member_crop(
    s: SightingState, caller: Caller, catalog_id: str, proposal_id: str, index: int
) -> bytes:
    """The crop (JPEG) of a proposal's member ``index`` (0-based; 404 out of range)."""
    proposal = get_proposal(s, caller, catalog_id, proposal_id)
    if not 0 <= index < len(proposal.members):
        raise NotFound(f"proposal {proposal_id!r} has no member {index}")
    try:
        return s.repository.store.get(proposal.members[index].crop_key)
    except NotFound:
        raise NotFound(f"the crop of member {index} is gone (its sighting was deleted)") from None


def accept(
    s: SightingState,
    caller: Caller,
    catalog_id: str,
    proposal_id: str,
    item_id: str | None,
    metadata: dict | None,
) -> decide.Accepted:
    """Accept a proposal as a new item (`discovery.decide.accept`)."""
    manifest = owned_manifest(s, caller, catalog_id)
    pipeline = s.pipeline

    def describe(pixels: np.ndarray):
        with s.model_lock:
            return to_blobs(pipeline.describe_reference(pixels, manifest.kind))

    outcome = decide.accept(
        _proposals(s),
        s.repository,
        SightingRepository(s.repository.store),
        catalog_id,
        proposal_id,
        caller.tenant,
        scope=caller.scope,
        describe=describe,
        fingerprints=model_fingerprints(pipeline, manifest.kind),
        item_id=item_id,
        metadata=metadata,
    )
    s.catalogs.refresh(catalog_id)
    refit_calibration_soon(s, catalog_id, manifest.owner)
    return outcome


def split(
    s: SightingState, caller: Caller, catalog_id: str, proposal_id: str, members: list[str]
) -> tuple[Proposal, Proposal]:
    """Split members off into a new proposal; (the rest, the new one)."""
    owned_manifest(s, caller, catalog_id)
    return decide.split(
        _proposals(s), catalog_id, proposal_id, members, caller.tenant, scope=caller.scope
    )


def reject(s: SightingState, caller: Caller, catalog_id: str, proposal_id: str) -> Proposal:
    """Reject a proposal."""
    owned_manifest(s, caller, catalog_id)
    return decide.reject(_proposals(s), catalog_id, proposal_id, caller.tenant, scope=caller.scope)
