"""Proposals in the catalog store, changed by compare-and-swap.

Keys, under the catalog's sightings folder (so deleting the catalog deletes them, and the
catalog's garbage collection leaves them alone):

* ``catalogs/<cid>/sightings/discovery/proposals/<pid>.json``: a `Proposal`;
* ``catalogs/<cid>/sightings/discovery/crops/<name>.jpg``: crops of camera-trap members
  (a sighting member's crop is the sighting's own).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable

from catalog.repository import new_id
from catalog.store import Store
from core.errors import Conflict, NotFound, StoreUnavailable
from discovery.model import Proposal
from sightings.repository import sightings_prefix


def discovery_prefix(catalog_id: str) -> str:
    return f"{sightings_prefix(catalog_id)}discovery/"


def proposal_key(catalog_id: str, proposal_id: str) -> str:
    return f"{discovery_prefix(catalog_id)}proposals/{proposal_id}.json"


def crop_key(catalog_id: str, name: str) -> str:
    return f"{discovery_prefix(catalog_id)}crops/{name}.jpg"


def new_proposal_id() -> str:
    """``p`` + 11 random characters."""
    return f"p{new_id(11)}"


def _check_pid(proposal_id: str) -> str:
    if (
        not isinstance(proposal_id, str)
        or not 2 <= len(proposal_id) <= 64
        or not proposal_id.isalnum()
        or not proposal_id.isascii()
    ):
        raise NotFound(f"proposal {proposal_id!r} not found", details={"proposal_id": proposal_id})
    return proposal_id


class ProposalStore:
    """Proposals of catalogs over a `Store`; stateless, safe to share."""

    def __init__(self, store: Store, *, max_retries: int = 32) -> None:
        self.store = store
        self.max_retries = max_retries

    def add(self, proposal: Proposal) -> Proposal:
        """Store a new proposal (only if absent)."""
        key = proposal_key(proposal.catalog_id, _check_pid(proposal.proposal_id))
        self.store.put_if(key, proposal.to_json(), expected_etag=None)
        return proposal

    def get(self, catalog_id: str, proposal_id: str, tenant: str | None = None) -> Proposal:
        """One proposal (of ``tenant`` when given: another tenant's is not found).

        Raises:
            NotFound: no such proposal, or another tenant's.
        """
        try:
            data = self.store.get(proposal_key(catalog_id, _check_pid(proposal_id)))
        except NotFound:
            raise self._missing(catalog_id, proposal_id) from None
        proposal = Proposal.from_json(data)
        if tenant is not None and proposal.tenant != tenant:
            raise self._missing(catalog_id, proposal_id)
        return proposal

    def list(self, catalog_id: str, tenant: str | None = None) -> list[Proposal]:
        """Every readable proposal of the catalog (of ``tenant`` when given), oldest first."""
        prefix = f"{discovery_prefix(catalog_id)}proposals/"
        out = []
        for key in self.store.list(prefix):
            try:
                proposal = Proposal.from_json(self.store.get(key))
            except (NotFound, StoreUnavailable):
                continue
            if tenant is None or proposal.tenant == tenant:
                out.append(proposal)
        return sorted(out, key=lambda p: (p.created_at, p.proposal_id))

    def update(
        self, catalog_id: str, proposal_id: str, apply: Callable[[Proposal], Proposal]
    ) -> Proposal:
        """Read-apply-compare-and-swap until it sticks; ``apply`` may raise to refuse.

        Raises:
            NotFound: no such proposal.
            Conflict: it kept changing.
        """
        key = proposal_key(catalog_id, _check_pid(proposal_id))
        for attempt in range(self.max_retries):
            try:
                data, etag = self.store.get_with_etag(key)
            except NotFound:
                raise self._missing(catalog_id, proposal_id) from None
            new = apply(Proposal.from_json(data))
            try:
                self.store.put_if(key, new.to_json(), expected_etag=etag)
            except Conflict:
                time.sleep(random.uniform(0.0, min(0.005 * 2**attempt, 0.5)))
                continue
            return new
        raise Conflict(
            f"proposal {proposal_id!r} kept changing", details={"proposal_id": proposal_id}
        )

    def delete(self, catalog_id: str, proposal_id: str) -> None:
        """Delete a proposal and the crops only it names (trap members)."""
        try:
            found = self.get(catalog_id, proposal_id)
        except NotFound:
            return
        self.store.delete(proposal_key(catalog_id, proposal_id))
        for m in found.members:
            if m.source == "trap":
                with contextlib.suppress(NotFound, StoreUnavailable):
                    self.store.delete(m.crop_key)

    @staticmethod
    def _missing(catalog_id: str, proposal_id: str) -> NotFound:
        return NotFound(
            f"proposal {proposal_id!r} not found in catalog {catalog_id!r}",
            details={"catalog_id": catalog_id, "proposal_id": proposal_id},
        )
