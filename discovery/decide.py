"""A person's decision on a proposal: accept (a new item with its photos), split, reject.

* **accept**: the proposal is claimed first (``open`` -> ``accepted`` by compare-and-swap, so
  two accepts at once make one item; the second is 409); then its first sighting is reviewed
  ``new_item`` (`sightings.review.review_sighting`, the code the review's verdict runs: the
  item is created from its crop) and every other sighting ``same`` with ``add_reference``
  (its crop becomes a reference image of the new item); camera-trap members' crops are added
  as images the same way (`catalog.repository.CatalogRepository.add_images`). If the item
  cannot be created (its id exists: 409) the claim is undone.
* **split**: the members named move to a new open proposal (``split_from``); the rest stay.
* **reject**: the proposal is closed; the same group is not proposed again.
Only an ``open`` proposal can be decided (409 otherwise).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from catalog.manifest import utc_now
from catalog.repository import CatalogRepository, Fingerprints, NewImage, new_id, validate_item_id
from core.errors import BadInput, Conflict, NotFound
from core.images import decode_image
from discovery.model import Proposal
from discovery.store import ProposalStore, new_proposal_id
from sightings.repository import SightingRepository
from sightings.review import Describe, ReviewRequest, review_sighting

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    """What accepting did: the proposal (accepted), the item, the images it got."""

    proposal: Proposal
    item_id: str
    images: int
    skipped: list[str]  # members left out (deleted meanwhile)
    catalog_version: int


def _open(proposal: Proposal) -> Proposal:
    if proposal.state != "open":
        raise Conflict(
            f"proposal {proposal.proposal_id!r} is {proposal.state}: only an open one can "
            "be accepted, split or rejected",
            details={"proposal_id": proposal.proposal_id, "state": proposal.state},
        )
    return proposal


def accept(
    proposals: ProposalStore,
    catalogs: CatalogRepository,
    sightings: SightingRepository,
    catalog_id: str,
    proposal_id: str,
    tenant: str,
    *,
    scope: str | None,
    describe: Describe,
    fingerprints: Fingerprints | None = None,
    item_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Accepted:
    """Accept a proposal as a new item (module docstring).

    Args:
        tenant: the decider's tenant (kept on the proposal and the reviews).
        scope: the tenant whose proposals the caller may see (None: an admin).

    Raises:
        NotFound: no such proposal (or another tenant's).
        Conflict: not open, or ``item_id`` exists in the catalog.
        BadInput: a malformed ``item_id``.
    """
    proposal = _open(proposals.get(catalog_id, proposal_id, scope))
    manifest = catalogs.get_manifest(catalog_id)
    if item_id is not None:
        validate_item_id(item_id)
        if item_id in manifest.items:
            raise Conflict(
                f"item {item_id!r} exists in catalog {catalog_id!r}",
                details={"item_id": item_id},
            )
    chosen = item_id or new_id()
    proposal = proposals.update(
        catalog_id,
        proposal_id,
        lambda p: replace(
            _open(p), state="accepted", item_id=chosen, decided_by=tenant, decided_at=utc_now()
        ),
    )
    meta = {"from_proposal": proposal_id} | dict(metadata or {})
    created = False
    images, skipped = 0, []
    version = manifest.version
    try:
        for m in proposal.members:
            try:
                if m.source == "sighting":
                    request = (
                        ReviewRequest("same", chosen, add_reference=True)
                        if created
                        else ReviewRequest("new_item", chosen, metadata=meta)
                    )
                    outcome = review_sighting(
                        sightings,
                        catalogs,
                        catalog_id,
                        m.ref,
                        request,
                        tenant,
                        describe=describe,
                        fingerprints=fingerprints,
                        owner_tenant=proposal.tenant,
                    )
                    version = outcome.catalog_version
                else:
                    data = catalogs.store.get(m.crop_key)
                    pixels = decode_image(data)
                    h, w = pixels.shape[:2]
                    image = NewImage(data, "image/jpeg", w, h, describe(pixels))
                    meta_now = None if created else meta | {"from_trap": m.ref}
                    added = catalogs.add_images(catalog_id, chosen, meta_now, [image], fingerprints)
                    version = added.manifest.version
            except (NotFound, Conflict) as exc:
                if isinstance(exc, Conflict) and not created:
                    raise  # the item could not be created (its id exists)
                log.info("proposal %s: member %s left out: %s", proposal_id, m.ref, exc.message)
                skipped.append(m.ref)
                continue
            created = True
            images += 1
        if not created:
            raise Conflict(
                f"proposal {proposal_id!r}: none of its photos is left (deleted since)",
                details={"proposal_id": proposal_id},
            )
    except (Conflict, BadInput):
        if not created:  # nothing was written: the proposal is open again
            proposals.update(
                catalog_id,
                proposal_id,
                lambda p: replace(p, state="open", item_id=None, decided_by=None, decided_at=None),
            )
        raise
    return Accepted(proposal, chosen, images, skipped, version)


def split(
    proposals: ProposalStore,
    catalog_id: str,
    proposal_id: str,
    refs: list[str],
    tenant: str,
    *,
    scope: str | None,
) -> tuple[Proposal, Proposal]:
    """Move the members ``refs`` to a new open proposal; (the rest, the new one).

    Raises:
        NotFound: no such proposal (or another tenant's).
        Conflict: not open.
        BadInput: no member named, a ref not among the members, or every member named.
    """
    proposal = _open(proposals.get(catalog_id, proposal_id, scope))
    chosen = set(refs)
    if not chosen:
        raise BadInput("name at least one member to split off", details={"members": refs})
    unknown = sorted(chosen - {m.ref for m in proposal.members})
    if unknown:
        raise BadInput(
            f"not members of proposal {proposal_id!r}: {', '.join(unknown)}",
            details={"unknown": unknown},
        )
    if len(chosen) == len(proposal.members):
        raise BadInput("a split must leave at least one member behind")
    rest = {m.ref for m in proposal.members} - chosen
    remaining = proposals.update(catalog_id, proposal_id, lambda p: _open(p).keeping(rest))
    new = replace(
        proposal.keeping(chosen),
        proposal_id=new_proposal_id(),
        created_at=utc_now(),
        split_from=proposal_id,
        score=0.0,
    )
    new = replace(new, score=min((link.score for link in new.links), default=0.0))
    return remaining, proposals.add(new)


def reject(
    proposals: ProposalStore, catalog_id: str, proposal_id: str, tenant: str, *, scope: str | None
) -> Proposal:
    """Close a proposal as not one new individual.

    Raises:
        NotFound: no such proposal (or another tenant's).
        Conflict: not open.
    """
    proposals.get(catalog_id, proposal_id, scope)
    return proposals.update(
        catalog_id,
        proposal_id,
        lambda p: replace(_open(p), state="rejected", decided_by=tenant, decided_at=utc_now()),
    )
