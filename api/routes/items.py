"""Items of a catalog and their reference images.

Adding an image stores the original bytes, its vectors and its keypoints (computed here, once),
then the manifest; the answer (201) comes only after the manifest is written, so an answered
upload is never lost.
"""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import Response, request

from analytics.upload_warnings import refuse_codes, upload_warnings
from api.inputs import json_body, metadata_option, option, read_images
from api.routes.catalogs import needs_reindex, owned_manifest
from api.routes.jobs import match_watches_soon, refit_calibration_soon
from api.schemas import (
    AddedImages,
    ImagesForm,
    ImagesJSON,
    ItemForm,
    ItemJSON,
    ItemList,
    MetadataPatch,
    UploadQuery,
    binary,
    image_body,
    v1_doc,
)
from api.schemas import Item as ItemOut
from api.state import state
from catalog.cache import model_fingerprints
from catalog.manifest import Item, Manifest
from catalog.repository import NewImage
from core.errors import BadInput, Conflict, NotFound
from matching.references import to_blobs

bp = APIBlueprint("items", __name__, tag="Items", url_prefix="/v1/catalogs/<catalog_id>/items")

_CATALOG = "$request.path.catalog_id"
_ITEM = "$response.body#/item_id"
_IMAGE = "$response.body#/image_ids/0"
# what a new item's ids open (OpenAPI links)
ITEM_LINKS = {
    name: {"operationId": name, "parameters": {"catalog_id": _CATALOG, "item_id": _ITEM}}
    for name in ("get_item", "delete_item", "add_images")
} | {
    name: {
        "operationId": name,
        "parameters": {"catalog_id": _CATALOG, "item_id": _ITEM, "image_id": _IMAGE},
    }
    for name in ("get_image", "delete_image")
}
ITEM_LINKS["explain"] = {
    "operationId": "explain",
    "parameters": {"catalog_id": _CATALOG, "query.item_id": _ITEM},
}
_UPLOAD_ERRORS = {
    413: "too many images, or an image over the pixel limit",
    415: "not an image",
    422: "corrupt image, bad item id or metadata",
}
_STORED_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp", "image/tiff", "image/gif")


def item_json(item: Item) -> dict:
    """An item as JSON."""
    return {
        "item_id": item.item_id,
        "metadata": item.metadata,
        "images": [
            {
                "image_id": r.image_id,
                "width": r.width,
                "height": r.height,
                "content_type": r.content_type,
                "added_at": r.added_at,
            }
            for r in item.images.values()
        ],
    }


def _item(manifest: Manifest, item_id: str) -> Item:
    item = manifest.items.get(item_id)
    if item is None:
        raise NotFound(f"no item {item_id!r} in catalog {manifest.catalog_id!r}")
    return item


def _add(catalog_id: str, item_id: str | None, metadata: dict | None, *, new_item: bool):
    s = state()
    manifest = owned_manifest(catalog_id)
    if not new_item:
        _item(manifest, item_id or "")
    elif item_id is not None and item_id in manifest.items:
        raise Conflict(f"item {item_id!r} exists; add images with POST .../items/{item_id}/images")
    uploads = read_images(s.settings, field="images", many=True)
    refuse = refuse_codes(option("refuse", str, None))
    pipeline = s.pipeline
    images, refs = [], []
    with s.model_lock:
        for up in uploads:
            ref = pipeline.describe_reference(up.pixels, manifest.kind)
            h, w = up.pixels.shape[:2]
            refs.append(ref)
            images.append(NewImage(up.data, up.content_type, w, h, to_blobs(ref)))
    before = None if needs_reindex(manifest) else s.catalogs.get(catalog_id)[1]
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
    added = s.repository.add_images(catalog_id, item_id, metadata, images, fingerprints)
    s.catalogs.refresh(catalog_id)
    refit_calibration_soon(catalog_id, manifest.owner)
    match_watches_soon(catalog_id, manifest.owner)
    return {
        "item_id": added.item.item_id,
        "image_ids": [r.image_id for r in added.images],
        "version": added.manifest.version,
        "warnings": warnings,
    }, 201


@bp.post("")
@bp.input(UploadQuery, location="query", arg_name="query")
@bp.output(AddedImages, status_code=201, description="Stored", links=ITEM_LINKS)
@v1_doc(
    bp,
    "add_item",
    _UPLOAD_ERRORS | {409: "the item exists"},
    body=image_body(ItemForm, ItemJSON),
)
def add_item(catalog_id: str, query: dict):
    """Add an item with one or more images.

    Multipart: files in ``images``, optional ``item_id`` and ``metadata`` (a JSON string);
    or JSON ``{"images": [base64...], "item_id", "metadata"}``. Answers 201 with the
    ``item_id``, the new ``image_ids`` and each image's ``warnings`` (blurry, dark,
    near-duplicate of image X of item Y, no object found...); 409 if the item exists. With
    ``refuse=<codes>`` (comma-separated, or ``all``) an upload with such a warning is 422 with
    the reasons, and nothing is stored.
    """
    item_id = request.form.get("item_id") if request.form else None
    if item_id is None and request.is_json:
        body = json_body()
        if "item_id" in body and not isinstance(body["item_id"], str):
            raise BadInput("item_id must be a string")
        item_id = body.get("item_id")
    if item_id is not None and not isinstance(item_id, str):
        raise BadInput("item_id must be a string")
    return _add(catalog_id, item_id or None, metadata_option(), new_item=True)


@bp.get("")
@bp.output(ItemList)
@v1_doc(bp, "list_items", {})
def list_items(catalog_id: str):
    """Every item with its metadata and image ids."""
    manifest = owned_manifest(catalog_id)
    return {"items": [item_json(i) for i in manifest.items.values()], "version": manifest.version}


@bp.get("/<item_id>")
# documented through the plugin (not @bp.output), which names it "Item" as ItemList nests it
@v1_doc(
    bp,
    "get_item",
    {},
    responses={
        200: {"description": "The item", "content": {"application/json": {"schema": ItemOut}}}
    },
)
def get_item(catalog_id: str, item_id: str):
    """One item."""
    return item_json(_item(owned_manifest(catalog_id), item_id))


@bp.patch("/<item_id>")
@bp.input(MetadataPatch, location="json", arg_name="body")
@bp.output(ItemOut, description="The item with its new metadata")
@v1_doc(
    bp,
    "update_item",
    {400: "the body is not JSON"},
    body={"required": True, "content": {"application/json": {"schema": MetadataPatch}}},
)
def update_item(catalog_id: str, item_id: str, body: dict):
    """Edit an item's metadata: JSON ``{"metadata": {...}, "replace": false}``.

    The keys of ``metadata`` are merged into the item's (a key set to null is removed);
    with ``"replace": true`` the metadata becomes exactly ``metadata``. Answers 200 with the
    item; 404 unknown catalog or item, 422 when ``metadata`` is not a JSON object.
    """
    _item(owned_manifest(catalog_id), item_id)
    metadata, replace = body["metadata"], body["replace"]
    item = state().repository.update_metadata(catalog_id, item_id, metadata, replace=replace)
    state().catalogs.refresh(catalog_id)
    return item_json(item)


@bp.delete("/<item_id>")
@v1_doc(bp, "delete_item", {}, responses={204: {"description": "Deleted"}})
def delete_item(catalog_id: str, item_id: str):
    """Delete an item, its images and their features. Answers 204."""
    manifest = owned_manifest(catalog_id)
    _item(manifest, item_id)
    state().repository.remove_item(catalog_id, item_id)
    state().catalogs.refresh(catalog_id)
    refit_calibration_soon(catalog_id, manifest.owner)
    return "", 204


@bp.post("/<item_id>/images")
@bp.input(UploadQuery, location="query", arg_name="query")
@bp.output(AddedImages, status_code=201, description="Stored", links=ITEM_LINKS)
@v1_doc(
    bp,
    "add_images",
    _UPLOAD_ERRORS | {409: "the catalog changed models meanwhile"},
    body=image_body(ImagesForm, ImagesJSON),
)
def add_images(catalog_id: str, item_id: str, query: dict):
    """Add images to an existing item (same bodies as adding an item). Answers 201."""
    return _add(catalog_id, item_id, None, new_item=False)


@bp.get("/<item_id>/images/<image_id>")
@v1_doc(
    bp,
    "get_image",
    {},
    responses={
        200: {
            "description": "The image as uploaded",
            "content": {t: binary() for t in _STORED_TYPES},
        }
    },
)
def get_image(catalog_id: str, item_id: str, image_id: str):
    """The stored original of one reference image."""
    if image_id not in _item(owned_manifest(catalog_id), item_id).images:
        raise NotFound(f"no image {image_id!r} in item {item_id!r}")
    record, data = state().repository.get_image(catalog_id, image_id)
    return Response(data, mimetype=record.content_type)


@bp.delete("/<item_id>/images/<image_id>")
@v1_doc(bp, "delete_image", {}, responses={204: {"description": "Deleted"}})
def delete_image(catalog_id: str, item_id: str, image_id: str):
    """Delete one image of an item and its features. Answers 204."""
    manifest = owned_manifest(catalog_id)
    if image_id not in _item(manifest, item_id).images:
        raise NotFound(f"no image {image_id!r} in item {item_id!r}")
    state().repository.remove_image(catalog_id, image_id)
    state().catalogs.refresh(catalog_id)
    refit_calibration_soon(catalog_id, manifest.owner)
    return "", 204
