"""The OpenAPI document describes what the service really takes and answers."""

from __future__ import annotations

import json

import pytest

from api.schemas import VideoLine
from tests.api.conftest import ALICE
from tests.api.test_openapi_fuzz import write_media

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture()
def spec(keyed_client) -> dict:
    r = keyed_client.get("/openapi.json")
    assert r.status_code == 200
    return r.json


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def resolve(spec: dict, schema: dict) -> dict:
    ref = schema.get("$ref")
    return spec["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def test_every_v1_operation_needs_the_api_key_and_documents_401(spec) -> None:
    assert spec["components"]["securitySchemes"]["ApiKeyAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
    }
    v1 = [(p, m, op) for p, m, op in operations(spec) if p.startswith("/v1/")]
    # incl. PATCH item, jobs, analytics, quality, info, trap batches, sightings, watches
    assert len(v1) == 44
    for path, method, op in v1:
        assert op["security"] == [{"ApiKeyAuth": []}], (method, path)
        assert "401" in op["responses"], (method, path)
        assert op.get("operationId"), (method, path)


def test_every_error_answer_has_the_services_error_shape(spec) -> None:
    error = spec["components"]["schemas"]["Error"]
    detail = resolve(spec, error["properties"]["error"])
    assert set(detail["required"]) == {"status", "code", "message", "details"}
    count = 0
    for path, method, op in operations(spec):
        for status, answer in op["responses"].items():
            if status.startswith(("4", "5")) and path.startswith("/v1/"):
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)
                count += 1
    assert count > 80
    assert "HTTPError" not in spec["components"]["schemas"]
    assert "ValidationError" not in spec["components"]["schemas"]


def test_answers_have_their_schemas(spec) -> None:
    paths = spec["paths"]
    detect = paths["/v1/catalogs/{catalog_id}/detect"]["post"]["responses"]
    result = resolve(spec, detect["200"]["content"]["application/json"]["schema"])
    assert set(result["required"]) == {
        "detections",
        "timings",
        "catalog_version",
        "calibration",
        "ranking",
    }
    detection = resolve(spec, result["properties"]["detections"]["items"])
    assert set(detection["required"]) == {"box", "class", "confidence", "matches"}
    match = resolve(spec, detection["properties"]["matches"]["items"])
    assert set(match["required"]) == {
        "item_id",
        "image_id",
        "similarity",
        "inliers",
        "verified",
        "score",
    }
    assert set(detect) >= {"200", "401", "404", "409", "413", "415", "422", "503"}
    created = paths["/v1/catalogs"]["post"]["responses"]["201"]["content"]["application/json"]
    assert "id" in resolve(spec, created["schema"])["required"]
    video = paths["/v1/catalogs/{catalog_id}/videos"]["post"]
    assert "application/x-ndjson" in video["responses"]["200"]["content"]
    assert set(video["requestBody"]["content"]) == {"video/mp4", "application/json"}
    explain = paths["/v1/catalogs/{catalog_id}/matches/explain"]["post"]["responses"]["200"]
    assert set(explain["content"]) == {"image/png", "application/json"}
    stream = paths["/v1/catalogs/{catalog_id}/streams/{stream_id}/frames"]["post"]
    tracked = resolve(spec, stream["responses"]["200"]["content"]["application/json"]["schema"])
    item = resolve(spec, tracked["properties"]["detections"]["items"])
    assert {"track_id", "verified_now"} <= set(item["required"])
    assert paths["/metrics"]["get"]["responses"]["200"]["content"].keys() == {"text/plain"}


def test_bodies_queries_and_headers_are_documented(spec, keyed_client) -> None:
    detect = spec["paths"]["/v1/catalogs/{catalog_id}/detect"]["post"]
    body = detect["requestBody"]
    assert body["required"] is True
    assert set(body["content"]) == {
        "image/jpeg",
        "image/png",
        "multipart/form-data",
        "application/json",
    }
    form = resolve(spec, body["content"]["multipart/form-data"]["schema"])
    assert form["properties"]["image"] == {
        "type": "string",
        "format": "binary",
        "description": "a JPEG or PNG file",
    }
    as_json = resolve(spec, body["content"]["application/json"]["schema"])
    assert as_json["properties"]["image"]["format"] == "byte"
    query = {p["name"]: p for p in detect["parameters"] if p["in"] == "query"}
    assert set(query) == {
        "top_k",
        "verify",
        "min_score",
        "classes",
        "whole_frame",
        "labels",
        "prompts",
        "keep",
        "rank",
        "shortlist",
    }
    assert query["prompts"]["schema"]["maxLength"] > 0  # one prompt a line (labels by text)
    settings = keyed_client.application.extensions["sighting"].settings
    assert query["top_k"]["schema"]["maximum"] == settings.max_top_k
    names = keyed_client.application.extensions["sighting"].pipeline.detector.names
    assert "person" in names and "person" in query["classes"]["schema"]["pattern"]
    frames = spec["paths"]["/v1/catalogs/{catalog_id}/streams/{stream_id}/frames"]["post"]
    headers = [p["name"] for p in frames["parameters"] if p["in"] == "header"]
    assert headers == ["X-Stream-Client"]
    stream_id = next(p for p in frames["parameters"] if p["name"] == "stream_id")
    assert stream_id["schema"]["pattern"]
    items = spec["paths"]["/v1/catalogs/{catalog_id}/items"]["post"]["requestBody"]["content"]
    images = resolve(spec, items["multipart/form-data"]["schema"])["properties"]["images"]
    assert "SIGHTING_MAX_IMAGES_PER_REQUEST" in images["description"]  # 413 beyond


def test_links_lead_from_created_ids_to_the_operations_that_use_them(spec) -> None:
    ids = {op["operationId"] for _, _, op in operations(spec)}
    created = spec["paths"]["/v1/catalogs"]["post"]["responses"]["201"]["links"]
    assert {"get_catalog", "add_item", "detect", "search", "explain", "stream_frame"} <= set(
        created
    )
    for link in created.values():
        assert link["operationId"] in ids
        assert link["parameters"] == {"catalog_id": "$response.body#/id"}
    for path in (
        "/v1/catalogs/{catalog_id}/items",
        "/v1/catalogs/{catalog_id}/items/{item_id}/images",
    ):
        links = spec["paths"][path]["post"]["responses"]["201"]["links"]
        assert {"get_item", "delete_item", "add_images", "get_image", "explain"} <= set(links)
        assert links["get_image"]["parameters"]["image_id"] == "$response.body#/image_ids/0"
        assert links["explain"]["parameters"]["query.item_id"] == "$response.body#/item_id"
        assert all(link["operationId"] in ids for link in links.values())


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("put", "/v1/catalogs"),
        ("get", "/v1/catalogs/abc/detect"),
        ("put", "/v1/catalogs/abc/items/x"),
        ("post", "/healthz"),
    ],
)
def test_405_says_which_methods_are_allowed(keyed_client, method, path) -> None:
    r = getattr(keyed_client, method)(path, headers={"X-API-Key": ALICE})
    assert r.status_code == 405
    allowed = {m.strip() for m in r.headers["Allow"].split(",")}
    assert allowed and allowed <= {"GET", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS"}
    assert r.json["error"]["code"] == "method_not_allowed"


def test_a_request_without_key_is_401_before_any_lookup(keyed_client) -> None:
    for method, path in (
        ("delete", "/v1/catalogs/nosuchcatalog"),
        ("get", "/v1/catalogs/nosuchcatalog/items/x"),
        ("post", "/v1/catalogs/nosuchcatalog/detect"),
    ):
        r = getattr(keyed_client, method)(path)
        assert r.status_code == 401, (method, path, r.json)
        assert r.json["error"]["code"] == "unauthorized"
    assert keyed_client.get("/healthz").status_code == 200  # not under /v1: open


def test_video_lines_have_the_documented_shape(shop, tmp_path) -> None:
    client, catalog = shop
    clip = (write_media(tmp_path) / "clip.mp4").read_bytes()
    r = client.post(f"/v1/catalogs/{catalog}/videos", data=clip, content_type="video/mp4")
    assert r.status_code == 200, r.data[:500]
    lines = [json.loads(line) for line in r.data.decode().splitlines()]
    assert "summary" in lines[-1] and len(lines) > 1  # the clip shows bottles
    for line in lines:
        assert VideoLine().validate(line) == {}, line  # no key off the document either
