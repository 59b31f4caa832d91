"""Catalogs: create, list, read, delete. Each belongs to the API key (tenant) that made it."""

from __future__ import annotations

from apiflask import APIBlueprint

from api.auth import caller
from api.schemas import Catalog, CatalogDetail, CatalogIn, CatalogList, v1_doc
from api.serialise import catalog_json
from api.state import state
from service import catalogs

bp = APIBlueprint("catalogs", __name__, tag="Catalogs", url_prefix="/v1/catalogs")

_ID = "$response.body#/id"
# what a new catalog's id opens (OpenAPI links: clients and schemathesis follow them)
CATALOG_LINKS = {
    name: {"operationId": name, "parameters": {"catalog_id": _ID}}
    for name in (
        "get_catalog",
        "delete_catalog",
        "add_item",
        "list_items",
        "detect",
        "search",
        "explain",
        "stream_frame",
        "process_video",
    )
}


@bp.post("")
@bp.input(CatalogIn, arg_name="body")
@bp.output(Catalog, status_code=201, description="The new catalog", links=CATALOG_LINKS)
@v1_doc(
    bp,
    "create_catalog",
    {400: "the body is not JSON"},
    body={"required": True, "content": {"application/json": {"schema": CatalogIn}}},
)
def create_catalog(body: dict):
    """Create a catalog (``kind``: products, animals, or vehicles, wildlife, other: no model
    was trained for those, they use the ImageNet features and the catalog's own calibration).
    Answers 201 with its ``id``."""
    created = catalogs.create_catalog(state(), caller(), body["name"], body["kind"])
    return catalog_json(created), 201


@bp.get("")
@bp.output(CatalogList)
@v1_doc(bp, "list_catalogs", {})
def list_catalogs():
    """The caller's catalogs (an admin key sees every catalog)."""
    return {"catalogs": [catalog_json(c) for c in catalogs.list_catalogs(state(), caller())]}


@bp.get("/<catalog_id>")
@bp.output(CatalogDetail)
@v1_doc(bp, "get_catalog", {})
def get_catalog(catalog_id: str):
    """One catalog: counts, version, models, and its calibration: ``source`` (``catalog``:
    its own, or ``kind_default``), ``state`` (``fitted``, ``not_fitted``, ``stale``,
    ``too_small``), ``threshold``, the pairs it rests on and its worst look-alike pairs."""
    return catalog_json(catalogs.get_catalog(state(), caller(), catalog_id))


@bp.delete("/<catalog_id>")
@v1_doc(bp, "delete_catalog", {}, responses={204: {"description": "Deleted"}})
def delete_catalog(catalog_id: str):
    """Delete a catalog with every image and cached feature. Answers 204."""
    catalogs.delete_catalog(state(), caller(), catalog_id)
    return "", 204
