"""Items of a catalog and their reference images.

Adding an image stores the original bytes, its vectors and its keypoints (computed here, once),
then the manifest; the call returns only after the manifest is written, so an answered upload
is never lost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from analytics.upload_warnings import upload_warnings
from catalog.cache import model_fingerprints
from catalog.manifest import ImageRecord, Item, Manifest
from catalog.repository import NewImage
from core.errors import BadInput, Conflict, IndexUnavailable, NotFound, TooLarge
from matching.references import to_blobs
from service.access import Caller, needs_reindex, owned_manifest
from service.jobs import refit_calibration_soon
from service.options import UploadedImage, UploadOptions
from service.state import SightingState
from sightings.duplicates import DuplicateLog, PossibleDuplicate, possible_duplicates

MAX_METADATA_BYTES = 16_384


@dataclass(frozen=True)
class Added:
    """What an upload stored: the item, the new images' ids, the catalog's new version and
    each image's warnings (in upload order)."""

    item_id: str
    image_ids: list[str]
    version: int
    warnings: list[list[str]]
    possible_duplicates: list[PossibleDuplicate] = field(default_factory=list)


def _item(manifest: Manifest, item_id: str) -> Item:
    item = manifest.items.get(item_id)
    if item is None:
        raise NotFound(f"no item {item_id!r} in catalog {manifest.catalog_id!r}")
    return item


def list_items(s: SightingState, caller: Caller, catalog_id: str) -> Manifest:
    """The catalog's manifest (its items, their metadata and image ids, its version)."""
    return owned_manifest(s, caller, catalog_id)


def get_item(s: SightingState, caller: Caller, catalog_id: str, item_id: str) -> Item:
    """One item of the caller's catalog (404 unknown catalog or item)."""
    return _item(owned_manifest(s, caller, catalog_id), item_id)


def add_item(
    s: SightingState,
    caller: Caller,
    catalog_id: str,
    uploads: list[UploadedImage],
    options: UploadOptions,
) -> Added:
    """A new item (``options.item_id``, or a random id) with its first images; 409 if it
    exists."""
    manifest = owned_manifest(s, caller, catalog_id)
    item_id = options.item_id or None
    if item_id is not None and item_id in manifest.items:
        raise Conflict(f"item {item_id!r} exists; add images with POST .../items/{item_id}/images")
    if len(json.dumps(options.metadata)) > MAX_METADATA_BYTES:
        raise TooLarge("metadata is larger than 16 KiB")
    return _add(s, manifest, item_id, options.metadata, uploads, options.refuse)


def add_images(
    s: SightingState,
    caller: Caller,
    catalog_id: str,
    item_id: str,
    uploads: list[UploadedImage],
    options: UploadOptions,
) -> Added:
    """More images of an existing item (404 unknown item)."""
    manifest = owned_manifest(s, caller, catalog_id)
    _item(manifest, item_id)
    return _add(s, manifest, item_id, None, uploads, options.refuse)


def _add(
    s: SightingState,
    manifest: Manifest,
    item_id: str | None,
    metadata: dict | None,
    uploads: list[UploadedImage],
    refuse: frozenset[str],
) -> Added:
    catalog_id = manifest.catalog_id
    pipeline = s.pipeline
    images, refs = [], []
    with s.model_lock:
        for up in uploads:
            ref = pipeline.describe_reference(up.pixels, manifest.kind)
            h, w = up.pixels.shape[:2]
            refs.append(ref)
            images.append(NewImage(up.data, up.content_type, w, h, to_blobs(ref)))
    try:
        before = None if needs_reindex(s, manifest) else s.catalogs.get(catalog_id)[1]
    except IndexUnavailable:  # the vector engine is away: store it now, index it on return
        before = None
    names = [f"upload image {i}" for i in range(len(uploads))]
    warnings = upload_warnings([up.pixels for up in uploads], refs, names, before)
    refused = [
        {"image": i, "warnings": [w for w in warn if w.split()[0] in refuse]}
        for i, warn in enumerate(warnings)
        if any(w.split()[0] in refuse for w in warn)
    ]
    if refused:
        raise BadInput(
            f"{len(refused)} of {len(uploads)} images refused (refuse={','.join(sorted(refuse))}); "
            "nothing was stored",
            details={"refused": refused, "warnings": warnings},
        )
    fingerprints = model_fingerprints(pipeline, manifest.kind)
    # which existing items the new images may show, matched against the catalog before them
    with s.model_lock:
        duplicates = possible_duplicates(
            pipeline,
            before,
            item_id,
            [up.pixels for up in uploads],
            refs,
            min_score=s.settings.duplicate_min_score,
        )
    added = s.repository.add_images(catalog_id, item_id, metadata, images, fingerprints)
    s.catalogs.refresh(catalog_id)
    refit_calibration_soon(s, catalog_id, manifest.owner)
    DuplicateLog(s.repository.store).record(catalog_id, added.item.item_id, duplicates)
    return Added(
        item_id=added.item.item_id,
        image_ids=[r.image_id for r in added.images],
        version=added.manifest.version,
        warnings=warnings,
        possible_duplicates=duplicates,
    )


def update_metadata(
    s: SightingState, caller: Caller, catalog_id: str, item_id: str, metadata: dict, replace: bool
) -> Item:
    """Merge ``metadata`` into the item's (null removes a key), or replace it all."""
    _item(owned_manifest(s, caller, catalog_id), item_id)
    item = s.repository.update_metadata(catalog_id, item_id, metadata, replace=replace)
    s.catalogs.refresh(catalog_id)
    return item


def delete_item(s: SightingState, caller: Caller, catalog_id: str, item_id: str) -> None:
    """Delete an item, its images and their features."""
    manifest = owned_manifest(s, caller, catalog_id)
    _item(manifest, item_id)
    s.repository.remove_item(catalog_id, item_id)
    s.catalogs.refresh(catalog_id)
    refit_calibration_soon(s, catalog_id, manifest.owner)


def _image_of(manifest: Manifest, item_id: str, image_id: str) -> None:
    if image_id not in _item(manifest, item_id).images:
        raise NotFound(f"no image {image_id!r} in item {item_id!r}")


def get_image(
    s: SightingState, caller: Caller, catalog_id: str, item_id: str, image_id: str
) -> tuple[ImageRecord, bytes]:
    """The stored original of one reference image, with its record."""
    _image_of(owned_manifest(s, caller, catalog_id), item_id, image_id)
    return s.repository.get_image(catalog_id, image_id)


def delete_image(
    s: SightingState, caller: Caller, catalog_id: str, item_id: str, image_id: str
) -> None:
    """Delete one image of an item and its features (the item stays)."""
    manifest = owned_manifest(s, caller, catalog_id)
    _image_of(manifest, item_id, image_id)
    s.repository.remove_image(catalog_id, image_id)
    s.catalogs.refresh(catalog_id)
    refit_calibration_soon(s, catalog_id, manifest.owner)
