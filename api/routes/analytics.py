"""Collection analytics of a catalog as a job: ``POST /v1/catalogs/<id>/analytics`` -> 202.

The job (kind ``analytics``, `analytics.job`) runs on the consumer, over the catalog's stored
embeddings; its progress and result files (clusters.csv, map.png, map.html, contact sheets,
metrics.json) are read through ``GET /v1/jobs/<job_id>`` and ``.../files/<name>``.
"""

from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Float, Integer, String
from apiflask.validators import OneOf, Range

from api.auth import caller
from api.routes.catalogs import owned_manifest
from api.routes.jobs import job_json, job_queue

bp = APIBlueprint(
    "analytics", __name__, tag="Analytics", url_prefix="/v1/catalogs/<catalog_id>/analytics"
)


class AnalyticsIn(Schema):
    k = Integer(load_default=0, validate=Range(0, 1000), metadata={"description": "0 = choose"})
    method = String(load_default="kmeans", validate=OneOf(["kmeans", "hdbscan"]))
    outlier_z = Float(load_default=3.5, validate=Range(0.0, 100.0))
    duplicate_similarity = Float(load_default=0.97, validate=Range(0.0, 1.0))


@bp.post("")
@bp.input(AnalyticsIn, arg_name="body", location="json")
def start_analytics(catalog_id: str, body: dict):
    """Start the analytics of a catalog; answers 202 with the job (poll ``/v1/jobs/<id>``)."""
    owned_manifest(catalog_id)  # 404 for an unknown or foreign catalog
    params = {"catalog_id": catalog_id} | body
    record = job_queue().submit("analytics", params, owner=caller().tenant)
    headers = {"Location": f"/v1/jobs/{record.job_id}"}
    return job_json(record), 202, headers
