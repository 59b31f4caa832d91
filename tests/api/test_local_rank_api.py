"""The ``rank`` and ``shortlist`` options of detect and search, and the answer's ``ranking``
(issue 28, docs/local-ranking.md)."""

from __future__ import annotations

import base64
import io

import pytest

from tests.api.conftest import ITEMS, catalog_photo, query_photo


@pytest.fixture(scope="module")
def wild(pipeline, tmp_path_factory):
    """A client and a catalog of kind ``other`` (local ranking by default) of the three items."""
    from api import create_app
    from tests.conftest import offline_settings

    settings = offline_settings(tmp_path_factory.mktemp("wild"), sync_interval_s=0.0)
    client = create_app(settings, pipeline=pipeline).test_client()
    cid = client.post("/v1/catalogs", json={"name": "wild", "kind": "other"}).json["id"]
    for item in ITEMS:
        r = client.post(
            f"/v1/catalogs/{cid}/items",
            data={"images": (io.BytesIO(catalog_photo(item)), f"{item}.jpg"), "item_id": item},
            content_type="multipart/form-data",
        )
        assert r.status_code == 201, r.json
    return client, cid


def photo_b64(item: str) -> str:
    return base64.b64encode(query_photo(item)).decode()


def test_search_says_which_ranking_produced_it(wild) -> None:
    client, cid = wild
    url = f"/v1/catalogs/{cid}/search"
    local = client.post(url, data=query_photo(ITEMS[1]), content_type="image/jpeg")
    assert local.status_code == 200, local.json
    ranking = local.json["ranking"]
    assert ranking["method"] == "local"  # the kind's default
    assert ranking["checked"] <= ranking["candidates"] and isinstance(ranking["partial"], bool)
    assert sorted(m["item_id"] for m in local.json["matches"]) == sorted(ITEMS)  # never cut
    by_embedding = client.post(
        f"{url}?rank=embedding", data=query_photo(ITEMS[1]), content_type="image/jpeg"
    )
    assert by_embedding.json["ranking"]["method"] == "embedding"
    detect = client.post(
        f"/v1/catalogs/{cid}/detect",
        json={
            "image": photo_b64(ITEMS[1]),
            "rank": "local",
            "shortlist": 2,
        },
    )
    assert detect.status_code == 200 and detect.json["ranking"]["method"] == "local"
    assert detect.json["ranking"]["candidates"] <= 2 * len(detect.json["detections"])


@pytest.mark.parametrize(
    "query", ["shortlist=0", "shortlist=5001", "shortlist=many", "rank=keypoints"]
)
def test_options_out_of_range_are_422(wild, query: str) -> None:
    client, cid = wild
    for op in ("search", "detect"):
        r = client.post(
            f"/v1/catalogs/{cid}/{op}?{query}",
            data=query_photo(ITEMS[0]),
            content_type="image/jpeg",
        )
        assert r.status_code == 422, (op, query, r.json)
        assert r.json["error"]["status"] == 422 and query.split("=")[0] in str(r.json["error"])
    # the same options in a JSON body
    name, value = query.split("=")
    body = {"image": photo_b64(ITEMS[0]), name: value}
    r = client.post(f"/v1/catalogs/{cid}/search", json=body)
    assert r.status_code == 422 and name in str(r.json["error"]), r.json
