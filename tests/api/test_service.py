"""Tenancy, health, metrics, OpenAPI, and consistency between workers sharing one store."""

from __future__ import annotations

import io
import re

from flask.testing import FlaskClient

from api import create_app
from tests.api.conftest import ADMIN, ALICE, BOB, ITEMS, catalog_photo, query_photo


def _h(key: str) -> dict:
    return {"X-API-Key": key}


def test_each_key_sees_only_its_catalogs(keyed_client: FlaskClient) -> None:
    c = keyed_client
    assert c.get("/v1/catalogs").status_code == 401
    assert c.get("/v1/catalogs", headers=_h("wrong")).status_code == 401
    a = c.post("/v1/catalogs", json={"name": "alice's"}, headers=_h(ALICE)).json["id"]
    b = c.post("/v1/catalogs", json={"name": "bob's"}, headers=_h(BOB)).json["id"]
    assert [x["id"] for x in c.get("/v1/catalogs", headers=_h(ALICE)).json["catalogs"]] == [a]
    for method, path in [
        ("get", ""),
        ("get", "/items"),
        ("delete", ""),
        ("post", "/detect"),
        ("post", "/items"),
    ]:
        kwargs = {"data": catalog_photo(ITEMS[0]), "content_type": "image/jpeg"}
        r = getattr(c, method)(
            f"/v1/catalogs/{a}{path}", headers=_h(BOB), **(kwargs if method == "post" else {})
        )
        assert r.status_code == 404, (method, path)
    assert c.get(f"/v1/catalogs/{a}", headers=_h(ALICE)).status_code == 200
    admin = {x["id"] for x in c.get("/v1/catalogs", headers=_h(ADMIN)).json["catalogs"]}
    assert admin == {a, b}
    assert c.delete(f"/v1/catalogs/{b}", headers=_h(ADMIN)).status_code == 204


def test_health_readiness_metrics(client: FlaskClient) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["checks"] == {"models": True, "store": True}
    client.get("/v1/catalogs")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'sighting_requests_total{method="GET",route="/v1/catalogs",status="200"}' in text


def test_readyz_reports_a_broken_store(api_settings, pipeline, moto_s3) -> None:
    broken = api_settings.model_copy(
        update={"storage": "s3", "s3_endpoint_url": "http://127.0.0.1:9", "s3_bucket": "none"}
    )
    c = create_app(broken, pipeline=pipeline).test_client()
    r = c.get("/readyz")
    assert r.status_code == 503 and r.json["checks"]["store"] is False
    assert c.get("/v1/catalogs").status_code == 503  # a failing store is a 503, not a crash


def test_every_route_is_in_the_openapi_document(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").json
    documented = {(p, m) for p, ops in spec["paths"].items() for m in ops}
    app = client.application
    for rule in app.url_map.iter_rules():
        if rule.endpoint in (
            "static",
            "openapi",
            "docs",
            "swagger_ui",
            "redoc",
            "openapi.spec",
            "openapi.docs",
            "openapi.swagger_ui_static",
        ) or rule.endpoint.startswith(("openapi", "console.", "docs_assets.")):
            # the console's and the /docs page's own files are not API operations
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)  # <int:index> -> {index}
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented, (path, method)


def test_a_change_through_one_worker_is_seen_by_another(api_settings, pipeline) -> None:
    """Two apps on one store stand for two gunicorn workers (the deploy tests use real ones)."""
    one = create_app(api_settings, pipeline=pipeline).test_client()
    two = create_app(api_settings, pipeline=pipeline).test_client()
    cid = one.post("/v1/catalogs", json={"name": "shared"}).json["id"]
    before = two.post(
        f"/v1/catalogs/{cid}/search", data=query_photo(ITEMS[0]), content_type="image/jpeg"
    ).json["matches"]
    assert before == []
    r = one.post(
        f"/v1/catalogs/{cid}/items",
        data={"images": (io.BytesIO(catalog_photo(ITEMS[0])), "a.jpg"), "item_id": ITEMS[0]},
        content_type="multipart/form-data",
    )
    assert r.status_code == 201
    after = two.post(
        f"/v1/catalogs/{cid}/search", data=query_photo(ITEMS[0]), content_type="image/jpeg"
    ).json["matches"]
    assert [m["item_id"] for m in after] == [ITEMS[0]]
    one.delete(f"/v1/catalogs/{cid}/items/{ITEMS[0]}")
    gone = two.post(
        f"/v1/catalogs/{cid}/search", data=query_photo(ITEMS[0]), content_type="image/jpeg"
    ).json["matches"]
    assert gone == []


def test_s3_store_end_to_end(api_settings, pipeline, moto_s3) -> None:
    settings = moto_s3.store_settings(api_settings, bucket=moto_s3.new_bucket(), prefix="svc")
    c = create_app(settings, pipeline=pipeline).test_client()
    cid = c.post("/v1/catalogs", json={"name": "s3"}).json["id"]
    for item in ITEMS[:2]:
        assert (
            c.post(
                f"/v1/catalogs/{cid}/items",
                data={"images": (io.BytesIO(catalog_photo(item)), "a.jpg"), "item_id": item},
                content_type="multipart/form-data",
            ).status_code
            == 201
        )
    keys = [
        o["Key"]
        for o in moto_s3.client().list_objects_v2(Bucket=settings.s3_bucket, Prefix="svc/")[
            "Contents"
        ]
    ]
    assert any(k.endswith("manifest.json") for k in keys)
    assert sum(k.endswith(".kp.npz") for k in keys) == 2
    r = c.post(f"/v1/catalogs/{cid}/search", data=query_photo(ITEMS[1]), content_type="image/jpeg")
    assert r.json["matches"][0]["item_id"] == ITEMS[1]
    assert c.delete(f"/v1/catalogs/{cid}").status_code == 204
    left = moto_s3.client().list_objects_v2(Bucket=settings.s3_bucket, Prefix="svc/")
    left = [o["Key"] for o in left.get("Contents", [])]
    # no orphans: only the job records of the catalog's calibration refit (a job's history,
    # kept like any job's; it reports "catalog deleted" when it runs)
    assert all(k.startswith("svc/jobs/") and k.endswith("/record.json") for k in left), left


def test_a_catalog_indexed_by_another_embedder_is_refused(client: FlaskClient) -> None:
    """Vectors of two models never mix: searching or adding with another embedder is a 409."""
    from api.state import state
    from catalog.repository import Fingerprints, NewImage

    cid = client.post("/v1/catalogs", json={"name": "old model"}).json["id"]
    with client.application.app_context():
        state().repository.add_images(
            cid,
            "x",
            None,
            [NewImage(catalog_photo(ITEMS[0]), "image/jpeg", 1, 1, {})],
            Fingerprints(embedder="resnet34:0123456789ab"),
        )
    r = client.post(
        f"/v1/catalogs/{cid}/detect", data=query_photo(ITEMS[0]), content_type="image/jpeg"
    )
    assert r.status_code == 409 and "resnet34:0123456789ab" in r.json["error"]["message"]
    r = client.post(
        f"/v1/catalogs/{cid}/items/x/images",
        data=catalog_photo(ITEMS[0]),
        content_type="image/jpeg",
    )
    assert r.status_code == 409
