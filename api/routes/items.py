"""Items of a catalog and their reference images.

Adding an image stores the original bytes, its vectors and its keypoints (computed here, once),
then the manifest; the answer (201) comes only after the manifest is written, so an answered
upload is never lost.
"""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import Response

from api.auth import caller
from api.inputs import read_images
from api.options import options
from api.schemas import (
    AddedImages,
    ImagesForm,
    ImagesJSON,
    ImagesOptionsIn,
    ItemForm,
    ItemJSON,
    ItemList,
    ItemOptionsIn,
    MetadataPatch,
    binary,
    image_body,
    v1_doc,
)
from api.schemas import Item as ItemOut
from api.serialise import added_json, item_json, items_json
from api.state import state
from service import items
from service.options import UploadOptions

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


@bp.post("")
@options(bp, ItemOptionsIn)
@bp.output(AddedImages, status_code=201, description="Stored", links=ITEM_LINKS)
@v1_doc(
    bp,
    "add_item",
    _UPLOAD_ERRORS | {409: "the item exists"},
    body=image_body(ItemForm, ItemJSON, ItemOptionsIn),
)
def add_item(catalog_id: str, opts: UploadOptions):
    """Add an item with one or more images.

    Multipart: files in ``images``, optional ``item_id`` and ``metadata`` (a JSON string);
    or JSON ``{"images": [base64...], "item_id", "metadata"}``. Answers 201 with the
    ``item_id``, the new ``image_ids`` and each image's ``warnings`` (blurry, dark,
    near-duplicate of image X of item Y, no object found...); 409 if the item exists. With
    ``refuse=<codes>`` (comma-separated, or ``all``) an upload with such a warning is 422 with
    the reasons, and nothing is stored.
    """
    uploads = read_images(state().settings, field="images", many=True)
    added = items.add_item(state(), caller(), catalog_id, uploads, opts)
    return added_json(added), 201


@bp.get("")
@bp.output(ItemList)
@v1_doc(bp, "list_items", {})
def list_items(catalog_id: str):
    """Every item with its metadata and image ids."""
    return items_json(items.list_items(state(), caller(), catalog_id))


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
    return item_json(items.get_item(state(), caller(), catalog_id, item_id))


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
    metadata, replace = body["metadata"], body["replace"]
    item = items.update_metadata(state(), caller(), catalog_id, item_id, metadata, replace)
    return item_json(item)


@bp.delete("/<item_id>")
@v1_doc(bp, "delete_item", {}, responses={204: {"description": "Deleted"}})
def delete_item(catalog_id: str, item_id: str):
    """Delete an item, its images and their features. Answers 204."""
    items.delete_item(state(), caller(), catalog_id, item_id)
    return "", 204


@bp.post("/<item_id>/images")
@options(bp, ImagesOptionsIn)
@bp.output(AddedImages, status_code=201, description="Stored", links=ITEM_LINKS)
@v1_doc(
    bp,
    "add_images",
    _UPLOAD_ERRORS | {409: "the catalog changed models meanwhile"},
    body=image_body(ImagesForm, ImagesJSON, ImagesOptionsIn),
)
def add_images(catalog_id: str, item_id: str, opts: UploadOptions):
    """Add images to an existing item (same bodies as adding an item). Answers 201."""
    uploads = read_images(state().settings, field="images", many=True)
    added = items.add_images(state(), caller(), catalog_id, item_id, uploads, opts)
    return added_json(added), 201


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
    record, data = items.get_image(state(), caller(), catalog_id, item_id, image_id)
    return Response(data, mimetype=record.content_type)


@bp.delete("/<item_id>/images/<image_id>")
@v1_doc(bp, "delete_image", {}, responses={204: {"description": "Deleted"}})
def delete_image(catalog_id: str, item_id: str, image_id: str):
    """Delete one image of an item and its features. Answers 204."""
    items.delete_image(state(), caller(), catalog_id, item_id, image_id)
    return "", 204
