"""Collection analytics of a catalog as a job: ``POST /v1/catalogs/<id>/analytics`` -> 202;
and its images' quality flags, ``GET /v1/catalogs/<id>/quality``.

The job (kind ``analytics``, `analytics.job`) runs on the consumer, over the catalog's stored
embeddings; its progress and result files (clusters.csv, map.png, map.html, contact sheets,
metrics.json) are read through ``GET /v1/jobs/<job_id>`` and ``.../files/<name>``.
"""

from __future__ import annotations

from apiflask import APIBlueprint

from api.auth import caller
from api.schemas import AnalyticsIn, v1_doc
from api.serialise import job_json, quality_json
from api.state import state
from service import analytics

bp = APIBlueprint("analytics", __name__, tag="Analytics", url_prefix="/v1/catalogs/<catalog_id>")


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
    record = analytics.start_analytics(state(), caller(), catalog_id, body)
    return job_json(record), 202, {"Location": f"/v1/jobs/{record.job_id}"}


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
    return quality_json(analytics.catalog_quality(state(), caller(), catalog_id))
