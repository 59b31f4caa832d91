"""Catalogs: create, list, read, delete. Each belongs to the API key (tenant) that made it."""

from __future__ import annotations

from apiflask import APIBlueprint

from api.auth import caller, check_owner
from api.schemas import Catalog, CatalogDetail, CatalogIn, CatalogList, v1_doc
from api.state import state
from catalog.calibration import calibration_state
from catalog.manifest import Manifest
from jobs.calibration import forget_refit

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


def summary(manifest: Manifest) -> dict:
    """A catalog as JSON (no item list)."""
    return {
        "id": manifest.catalog_id,
        "name": manifest.name,
        "kind": manifest.kind,
        "version": manifest.version,
        "items": len(manifest.items),
        "images": manifest.image_count,
        "created_at": manifest.created_at,
        "updated_at": manifest.updated_at,
        "embedder": manifest.embedder_fingerprint,
        "needs_reindex": needs_reindex(manifest),
    }


def needs_reindex(manifest: Manifest) -> bool:
    """Whether the catalog was built with another embedder than this service runs for its
    kind: searches answer 409 until ``python -m catalog reindex`` (see the README, Deploy)."""
    return manifest.indexed_with_other(state().pipeline.embedder_for(manifest.kind).fingerprint)


def owned_manifest(catalog_id: str) -> Manifest:
    """The catalog's manifest if the caller may use it, else 404."""
    manifest = state().repository.get_manifest(catalog_id)
    check_owner(manifest.owner, catalog_id)
    return manifest


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
    manifest = state().repository.create_catalog(body["name"], body["kind"], caller().tenant)
    return summary(manifest), 201


@bp.get("")
@bp.output(CatalogList)
@v1_doc(bp, "list_catalogs", {})
def list_catalogs():
    """The caller's catalogs (an admin key sees every catalog)."""
    who = caller()
    manifests = state().repository.list_catalogs(owner=None if who.admin else who.tenant)
    return {"catalogs": [summary(m) for m in manifests]}


@bp.get("/<catalog_id>")
@bp.output(CatalogDetail)
@v1_doc(bp, "get_catalog", {})
def get_catalog(catalog_id: str):
    """One catalog: counts, version, models, and its calibration: ``source`` (``catalog``:
    its own, or ``kind_default``), ``state`` (``fitted``, ``not_fitted``, ``stale``,
    ``too_small``), ``threshold``, the pairs it rests on and its worst look-alike pairs."""
    manifest = owned_manifest(catalog_id)
    return summary(manifest) | {
        "calibration": calibration_state(state().repository, manifest, state().pipeline)
    }


@bp.delete("/<catalog_id>")
@v1_doc(bp, "delete_catalog", {}, responses={204: {"description": "Deleted"}})
def delete_catalog(catalog_id: str):
    """Delete a catalog with every image and cached feature. Answers 204."""
    owned_manifest(catalog_id)
    state().repository.delete_catalog(catalog_id)
    state().catalogs.invalidate(catalog_id)
    forget_refit(state().repository.store, catalog_id)
    return "", 204
