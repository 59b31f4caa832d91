"""Collection analytics of a catalog as a job: ``POST /v1/catalogs/<id>/analytics`` -> 202;
and its images' quality flags, ``GET /v1/catalogs/<id>/quality``.

The job (kind ``analytics``, `analytics.job`) runs on the consumer, over the catalog's stored
embeddings; its progress and result files (clusters.csv, map.png, map.html, contact sheets,
metrics.json) are read through ``GET /v1/jobs/<job_id>`` and ``.../files/<name>``.
"""

from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Float, String
from apiflask.validators import OneOf, Range

from api.auth import caller
from api.routes.catalogs import owned_manifest
from api.routes.jobs import job_json, job_queue
from api.schemas import WholeNumber, v1_doc
from api.state import state

bp = APIBlueprint("analytics", __name__, tag="Analytics", url_prefix="/v1/catalogs/<catalog_id>")


class AnalyticsIn(Schema):
    k = WholeNumber(load_default=0, validate=Range(0, 1000), metadata={"description": "0 = choose"})
    method = String(load_default="kmeans", validate=OneOf(["kmeans", "hdbscan"]))
    outlier_z = Float(load_default=3.5, validate=Range(0.0, 100.0))
    duplicate_similarity = Float(load_default=0.97, validate=Range(0.0, 1.0))


@bp.post("/analytics")
@bp.input(AnalyticsIn, arg_name="body", location="json")
@v1_doc(
    bp,
    "start_analytics",
    {400: "the body is not JSON"},
    responses={202: {"description": "The job, queued (Location: /v1/jobs/<id>)"}},
)
def start_analytics(catalog_id: str, body: dict):
    """Start the analytics of a catalog; answers 202 with the job (poll ``/v1/jobs/<id>``)."""
    owned_manifest(catalog_id)  # 404 for an unknown or foreign catalog
    params = {"catalog_id": catalog_id} | body
    record = job_queue().submit("analytics", params, owner=caller().tenant)
    headers = {"Location": f"/v1/jobs/{record.job_id}"}
    return job_json(record), 202, headers


@bp.get("/quality")
@v1_doc(
    bp,
    "catalog_quality",
    {},
    responses={200: {"description": "Every image's quality warnings and measures"}},
)
def catalog_quality(catalog_id: str):
    """Quality flags of every image of the catalog (dark, over_exposed, blurry,
    low_information, odd_size, greyscale, exact/near duplicate of image X of item Y)."""
    from analytics.quality import assess, duplicate_flags
    from core.images import decode_image

    s = state()
    manifest = owned_manifest(catalog_id)
    refs, reports = [], []
    for item in manifest.items.values():
        for image_id in item.images:
            _, data = s.repository.get_image(catalog_id, image_id)
            refs.append((item.item_id, image_id))
            reports.append(assess(decode_image(data, max_pixels=s.settings.max_image_pixels)))
    warnings = [[*r.flags] for r in reports]
    for i, j, kind in duplicate_flags(reports):
        warnings[j].append(f"{kind} of image {refs[i][1]} of item {refs[i][0]}")
    images = [
        {"item_id": it, "image_id": im, "warnings": w, "measures": r.measures}
        for (it, im), w, r in zip(refs, warnings, reports, strict=True)
    ]
    return {"images": images, "flagged": sum(1 for w in warnings if w)}
