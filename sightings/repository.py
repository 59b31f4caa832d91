"""Sightings in the catalog store, safe under concurrent writers.

Keys (under the catalog's own prefix, so deleting a catalog deletes its sightings):

* ``catalogs/<cid>/sightings/docs/<sid>.json``: the `Sighting` document;
* ``catalogs/<cid>/sightings/crops/<sid>.jpg`` and ``.../photos/<sid>.jpg``: its crop and the
  photo it came from;
* ``catalogs/<cid>/sightings/reviewed/<sid>``: an empty marker once a person reviewed it, so
  that retention and the state counts need a listing, not a read of every document.

Sighting ids start with the time they were kept (9 base-36 digits of milliseconds), so keys
sort oldest first. The rules of `catalog.repository` hold: data (crop, photo) is written
before the document names it; every change of a document is a compare-and-swap in a loop
(`update`), so two reviews of one sighting at once both land, in some order, and neither is
lost. Retention (`enforce_retention`) drops the oldest unreviewed sightings first and never a
reviewed one.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from catalog.repository import SIGHTINGS_FOLDER, catalog_prefix, new_id
from catalog.store import Store
from core.errors import BadInput, Conflict, NotFound, StoreUnavailable
from sightings.model import Sighting, SightingFilter, SightingPage

log = logging.getLogger(__name__)
T = TypeVar("T")

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
MAX_PAGE = 200


def sightings_prefix(catalog_id: str) -> str:
    """``catalogs/<cid>/sightings/``: every sighting key of the catalog starts with it."""
    return f"{catalog_prefix(catalog_id)}{SIGHTINGS_FOLDER}/"


def doc_key(catalog_id: str, sighting_id: str) -> str:
    return f"{sightings_prefix(catalog_id)}docs/{sighting_id}.json"


def crop_key(catalog_id: str, sighting_id: str) -> str:
    return f"{sightings_prefix(catalog_id)}crops/{sighting_id}.jpg"


def photo_key(catalog_id: str, sighting_id: str) -> str:
    return f"{sightings_prefix(catalog_id)}photos/{sighting_id}.jpg"


def reviewed_key(catalog_id: str, sighting_id: str) -> str:
    return f"{sightings_prefix(catalog_id)}reviewed/{sighting_id}"


def new_sighting_id(now: float | None = None) -> str:
    """``s`` + the time in ms as 9 base-36 digits + 6 random characters (sorts by time)."""
    ms = int((time.time() if now is None else now) * 1000)
    digits = ""
    for _ in range(9):
        ms, r = divmod(ms, 36)
        digits = _BASE36[r] + digits
    return f"s{digits}{new_id(6)}"


def _check_sid(sighting_id: str) -> str:
    if (
        not isinstance(sighting_id, str)
        or not 2 <= len(sighting_id) <= 64
        or not sighting_id.isalnum()
        or not sighting_id.isascii()
    ):
        raise NotFound(f"sighting {sighting_id!r} not found", details={"sighting_id": sighting_id})
    return sighting_id


class SightingRepository:
    """Sighting documents and images over a `Store`; stateless, safe to share.

    Args:
        store: the catalog store.
        max_retries: compare-and-swap attempts per change before `Conflict`.
    """

    def __init__(self, store: Store, *, max_retries: int = 32, backoff_s: float = 0.005) -> None:
        self.store = store
        self.max_retries = max_retries
        self.backoff_s = backoff_s

    # --- writing ----------------------------------------------------------------------
    def add(self, sighting: Sighting, crop: bytes, photo: bytes | None = None) -> Sighting:
        """Store a new sighting: its crop and photo first, then the document (only if absent).

        Raises:
            Conflict: a sighting with this id exists.
        """
        cid, sid = sighting.catalog_id, _check_sid(sighting.sighting_id)
        if sighting.crop_key != crop_key(cid, sid):
            raise BadInput("sighting crop key does not belong to it")
        self.store.put(sighting.crop_key, crop)
        if photo is not None and sighting.photo_key is not None:
            self.store.put(sighting.photo_key, photo)
        self.store.put_if(doc_key(cid, sid), sighting.to_json(), expected_etag=None)
        return sighting

    def replace_view(
        self,
        sighting: Sighting,
        crop: bytes,
        photo: bytes | None,
        better: Callable[[Sighting], bool],
    ) -> Sighting | None:
        """A stream track's better view: rewrite the sighting's evidence and images, keeping
        its reviews, if ``better(stored)`` still holds; None when it did not (or it is gone).

        Images are written under new keys first (a reader never sees a crop of one view with
        the candidates of another); the old ones are deleted after.
        """
        cid, sid = sighting.catalog_id, sighting.sighting_id
        run = new_id(4)
        new_crop = f"{sightings_prefix(cid)}crops/{sid}-{run}.jpg"
        new_photo = f"{sightings_prefix(cid)}photos/{sid}-{run}.jpg" if photo else None
        self.store.put(new_crop, crop)
        if photo is not None and new_photo is not None:
            self.store.put(new_photo, photo)
        old: list[str] = []

        def apply(stored: Sighting) -> Sighting | None:
            if not better(stored):
                return None
            old[:] = [k for k in (stored.crop_key, stored.photo_key) if k]
            from dataclasses import replace

            return replace(
                sighting,
                crop_key=new_crop,
                photo_key=new_photo,
                kept_at=stored.kept_at,
                reviews=stored.reviews,
            )

        try:
            result = self.update(cid, sid, apply)
        except NotFound:
            result = None
        if result is None:
            self._delete_quietly([k for k in (new_crop, new_photo) if k])
            return None
        self._delete_quietly(old)
        return result

    def update(
        self, catalog_id: str, sighting_id: str, apply: Callable[[Sighting], Sighting | None]
    ) -> Sighting | None:
        """Read-apply-compare-and-swap one document until it sticks (bounded, with back-off).

        ``apply`` gets the fresh document and returns the new one (None: no change). It may
        raise to refuse the change.

        Raises:
            NotFound: no such sighting.
            Conflict: it kept changing for ``max_retries`` attempts.
        """
        key = doc_key(catalog_id, _check_sid(sighting_id))
        for attempt in range(self.max_retries):
            try:
                data, etag = self.store.get_with_etag(key)
            except NotFound:
                raise self._missing(catalog_id, sighting_id) from None
            new = apply(Sighting.from_json(data))
            if new is None:
                return None
            try:
                self.store.put_if(key, new.to_json(), expected_etag=etag)
            except Conflict:
                time.sleep(random.uniform(0.0, min(self.backoff_s * 2**attempt, 0.5)))
                continue
            if new.reviews:
                self.store.put(reviewed_key(catalog_id, sighting_id), b"")
            return new
        raise Conflict(
            f"sighting {sighting_id!r} kept changing: gave up after {self.max_retries} attempts",
            details={"sighting_id": sighting_id},
        )

    def delete(self, catalog_id: str, sighting_id: str) -> None:
        """Delete a sighting: the document first, then its images and marker."""
        try:
            found = self.get(catalog_id, sighting_id)
        except NotFound:
            return
        self.store.delete(doc_key(catalog_id, sighting_id))
        self._delete_quietly(
            [k for k in (found.crop_key, found.photo_key) if k]
            + [reviewed_key(catalog_id, sighting_id)]
        )

    def enforce_retention(self, catalog_id: str, limit: int) -> list[str]:
        """Drop the oldest unreviewed sightings until at most ``limit`` remain (reviewed ones
        are never dropped, so more may remain); returns the dropped ids, oldest first."""
        ids = self.ids(catalog_id)
        if len(ids) <= limit:
            return []
        reviewed = self.reviewed_ids(catalog_id)
        excess = len(ids) - limit
        dropped = [sid for sid in ids if sid not in reviewed][:excess]
        for sid in dropped:
            # re-checked on the document: a review that landed after the listing keeps it
            try:
                if self.get(catalog_id, sid).reviews:
                    continue
            except NotFound:
                continue
            self.delete(catalog_id, sid)
        if dropped:
            log.info(
                "catalog %s: retention dropped %d unreviewed sightings", catalog_id, len(dropped)
            )
        return dropped

    # --- reading ----------------------------------------------------------------------
    def get(self, catalog_id: str, sighting_id: str, tenant: str | None = None) -> Sighting:
        """One sighting (of ``tenant``, when given: another tenant's is not found).

        Raises:
            NotFound: no such sighting, or another tenant kept it.
        """
        try:
            data = self.store.get(doc_key(catalog_id, _check_sid(sighting_id)))
        except NotFound:
            raise self._missing(catalog_id, sighting_id) from None
        sighting = Sighting.from_json(data)
        if tenant is not None and sighting.tenant != tenant:
            raise self._missing(catalog_id, sighting_id)
        return sighting

    def image(self, sighting: Sighting, which: str = "crop") -> bytes:
        """The crop's or the photo's JPEG bytes.

        Raises:
            NotFound: the sighting has no such image (or it is gone).
        """
        key = sighting.crop_key if which == "crop" else sighting.photo_key
        if key is None:
            raise NotFound(f"sighting {sighting.sighting_id!r} has no {which}")
        try:
            return self.store.get(key)
        except NotFound:
            raise NotFound(f"sighting {sighting.sighting_id!r} has no {which}") from None

    def ids(self, catalog_id: str) -> list[str]:
        """Every sighting id of the catalog, oldest first (one listing)."""
        prefix = f"{sightings_prefix(catalog_id)}docs/"
        return [k[len(prefix) : -len(".json")] for k in self.store.list(prefix)]

    def reviewed_ids(self, catalog_id: str) -> set[str]:
        """Ids with a review marker (one listing)."""
        prefix = f"{sightings_prefix(catalog_id)}reviewed/"
        return {k[len(prefix) :] for k in self.store.list(prefix)}

    def iter(self, catalog_id: str, *, newest_first: bool = True) -> Iterator[Sighting]:
        """Every sighting of the catalog (documents that vanish meanwhile are skipped)."""
        ids = self.ids(catalog_id)
        for sid in reversed(ids) if newest_first else ids:
            try:
                yield self.get(catalog_id, sid)
            except NotFound:
                continue
            except StoreUnavailable as exc:
                log.warning("sighting %s unreadable: %s", sid, exc.message)

    def list(
        self,
        catalog_id: str,
        where: SightingFilter = SightingFilter(),
        *,
        tenant: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> SightingPage:
        """One page of the catalog's sightings passing ``where``, newest first.

        Raises:
            BadInput: offset < 0 or limit outside 1..`MAX_PAGE`.
        """
        if offset < 0 or not 1 <= limit <= MAX_PAGE:
            raise BadInput(f"offset must be >= 0 and limit 1-{MAX_PAGE}")
        ids = self.ids(catalog_id)
        reviewed = self.reviewed_ids(catalog_id)
        counts = {"unreviewed": sum(1 for s in ids if s not in reviewed)}
        if tenant is None and where in (SightingFilter(), SightingFilter(state="unreviewed")):
            # answered from the listings: only the page's documents are read
            chosen = list(
                reversed(ids if where.state is None else [s for s in ids if s not in reviewed])
            )
            page = []
            for sid in chosen[offset:]:
                try:
                    page.append(self.get(catalog_id, sid))
                except NotFound:
                    continue
                if len(page) == limit:
                    break
            return SightingPage(page, len(chosen), offset, limit, counts)
        matching = [
            s
            for s in self.iter(catalog_id)
            if (tenant is None or s.tenant == tenant) and where.keeps(s)
        ]
        return SightingPage(matching[offset : offset + limit], len(matching), offset, limit, counts)

    # --- internals --------------------------------------------------------------------
    def _delete_quietly(self, keys: list[str]) -> None:
        for key in keys:
            try:
                self.store.delete(key)
            except StoreUnavailable as exc:
                log.warning("could not delete %s: %s", key, exc.message)

    @staticmethod
    def _missing(catalog_id: str, sighting_id: str) -> NotFound:
        return NotFound(
            f"sighting {sighting_id!r} not found in catalog {catalog_id!r}",
            details={"catalog_id": catalog_id, "sighting_id": sighting_id},
        )
