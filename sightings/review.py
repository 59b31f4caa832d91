"""Reviewing a sighting: one person's verdict, checked, applied and kept in its history.

`review_sighting` is the one use case every front end calls (the API route, the simulated
reviewer of `bench.review`):

* ``same`` names an item (among the candidates or not); it must exist in the catalog now
  (an unknown or deleted item is 404). With ``add_reference`` the crop becomes a reference
  image of that item.
* ``none``: the object is not in the catalog.
* ``new_item`` creates an item from the crop (``item_id`` given, or drawn; ``metadata``);
  an id that exists is 409.

The review (verdict, item, the reviewer's tenant, the time, the reference image made) is
appended to the sighting's history by compare-and-swap, so two reviews at once both land;
the last one sets the state. A verdict changed away from one that added a reference image
removes that image again (it was not of that item). Catalog writes come first: a crash
between leaves an item or image without the review that made it, never a review naming an
item that was not written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from catalog.manifest import utc_now
from catalog.repository import CatalogRepository, Fingerprints, NewImage, validate_item_id
from core.errors import BadInput, Conflict, NotFound
from core.images import decode_image
from sightings.model import VERDICTS, Review, Sighting
from sightings.repository import SightingRepository

#: Describes a crop as a catalog image: pixels -> feature blobs (`matching.references`).
Describe = Callable[[np.ndarray], Mapping[str, bytes]]


@dataclass(frozen=True)
class ReviewRequest:
    """One verdict as a person gave it."""

    verdict: str
    item_id: str | None = None
    add_reference: bool = False
    metadata: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ReviewOutcome:
    """What a review did.

    Attributes:
        sighting: the sighting with the review appended.
        created_item: the item a ``new_item`` verdict created, else None.
        reference_image_id: the reference image the crop became, else None.
        removed_image_id: the reference image an earlier verdict had added and this one
            removed, else None.
        catalog_changed: items or images changed (the catalog's views and calibration
            must follow).
        catalog_version: the catalog's version now.
    """

    sighting: Sighting
    created_item: str | None
    reference_image_id: str | None
    removed_image_id: str | None
    catalog_changed: bool
    catalog_version: int


def check_request(request: ReviewRequest) -> ReviewRequest:
    """Refuse a malformed verdict before anything is read.

    Raises:
        BadInput: unknown verdict, an item id where none is allowed or missing where one is
            needed, a reference asked for a ``none``.
    """
    if request.verdict not in VERDICTS:
        raise BadInput(
            f"verdict {request.verdict!r} must be one of {', '.join(VERDICTS)}",
            details={"verdict": str(request.verdict)},
        )
    if request.verdict == "same" and not request.item_id:
        raise BadInput("verdict 'same' needs an item_id")
    if request.verdict == "none" and (request.item_id or request.add_reference):
        raise BadInput("verdict 'none' takes no item_id and no add_reference")
    if request.item_id is not None:
        validate_item_id(request.item_id)
    if request.metadata is not None and request.verdict != "new_item":
        raise BadInput("metadata is for verdict 'new_item' only")
    return request


def review_sighting(
    sightings: SightingRepository,
    catalogs: CatalogRepository,
    catalog_id: str,
    sighting_id: str,
    request: ReviewRequest,
    tenant: str,
    *,
    describe: Describe | None = None,
    fingerprints: Fingerprints | None = None,
    owner_tenant: str | None = None,
) -> ReviewOutcome:
    """Apply one verdict (module docstring).

    Args:
        tenant: the reviewer's tenant; the sighting must have been kept by it (or by
            ``owner_tenant``, the catalog's owner, when an admin reviews).
        describe: makes a crop's feature blobs; needed for ``new_item`` and
            ``add_reference``.
        fingerprints: the models ``describe`` runs (checked against the catalog's).

    Raises:
        NotFound: no such catalog, sighting (or another tenant's), or item.
        BadInput: a malformed verdict (`check_request`).
        Conflict: ``new_item`` with an id that exists.
    """
    check_request(request)
    manifest = catalogs.get_manifest(catalog_id)
    sighting = sightings.get(catalog_id, sighting_id)
    if sighting.tenant not in (tenant, owner_tenant):
        raise sightings._missing(catalog_id, sighting_id)
    needs_crop = request.verdict == "new_item" or request.add_reference
    if needs_crop and describe is None:
        raise BadInput("this service cannot describe images: no new item or reference")
    item_id = request.item_id
    if request.verdict == "same" and item_id not in manifest.items:
        raise NotFound(
            f"item {item_id!r} is not in catalog {catalog_id!r} (unknown, or deleted since "
            f"the sighting was kept at version {sighting.catalog_version})",
            details={"catalog_id": catalog_id, "item_id": item_id},
        )
    if request.verdict == "new_item" and item_id is not None and item_id in manifest.items:
        raise Conflict(
            f"item {item_id!r} exists in catalog {catalog_id!r}: review it as 'same'",
            details={"item_id": item_id},
        )

    created, image_id, version = None, None, manifest.version
    if needs_crop:
        assert describe is not None
        data = sightings.image(sighting, "crop")
        pixels = decode_image(data)
        image = NewImage(data, "image/jpeg", pixels.shape[1], pixels.shape[0], describe(pixels))
        metadata = dict(request.metadata or {}) if request.verdict == "new_item" else None
        if request.verdict == "new_item":
            metadata = {"from_sighting": sighting_id} | (metadata or {})
        added = catalogs.add_images(catalog_id, item_id, metadata, [image], fingerprints)
        item_id = added.item.item_id
        image_id = added.images[0].image_id
        version = added.manifest.version
        created = item_id if request.verdict == "new_item" else None
    review = Review(
        verdict=request.verdict,
        item_id=item_id,
        tenant=tenant,
        at=utc_now(),
        reference_image_id=image_id,
        metadata=dict(request.metadata) if request.metadata is not None else None,
    )
    previous: list[Review | None] = [None]

    def apply(stored: Sighting) -> Sighting:
        previous[0] = stored.last_review
        return stored.reviewed(review)

    try:
        updated = sightings.update(catalog_id, sighting_id, apply)
    except NotFound:  # dropped or deleted meanwhile: undo the image it would have named
        if image_id is not None and created is None:
            catalogs.remove_image(catalog_id, image_id)
        raise
    assert updated is not None
    removed = None
    old = previous[0]
    if (
        old is not None
        and old.verdict == "same"
        and old.reference_image_id is not None
        and (old.item_id != item_id or request.verdict != "same")
    ):
        try:
            version = catalogs.remove_image(catalog_id, old.reference_image_id).version
            removed = old.reference_image_id
        except NotFound:
            pass  # removed by hand already
    return ReviewOutcome(
        sighting=updated,
        created_item=created,
        reference_image_id=image_id,
        removed_image_id=removed,
        catalog_changed=image_id is not None or removed is not None,
        catalog_version=version,
    )
