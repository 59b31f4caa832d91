"""Detect and search on real photos; the answer's shape; options."""

from __future__ import annotations

import base64
import io

from tests.api.conftest import ITEMS, query_photo


def _top_items(body: dict) -> list[str]:
    return [d["matches"][0]["item_id"] for d in body["detections"] if d["matches"]]


def test_detect_finds_the_product_on_a_shelf_photo(shop) -> None:
    client, catalog = shop
    r = client.post(
        f"/v1/catalogs/{catalog}/detect", data=query_photo(ITEMS[0]), content_type="image/jpeg"
    )
    assert r.status_code == 200
    body = r.json
    assert set(body["timings"]) >= {"decode", "detect", "embed", "search", "verify"}
    whole = [d for d in body["detections"] if d["class"] == "image"]
    assert len(whole) == 1  # the whole frame is always matched too
    for det in body["detections"]:
        assert len(det["box"]) == 4 and 0.0 <= det["confidence"] <= 1.0
        scores = [m["score"] for m in det["matches"]]
        assert scores == sorted(scores, reverse=True)
        assert all(0.0 <= s <= 1.0 for s in scores)
    best = max((d["matches"][0] for d in body["detections"]), key=lambda m: m["score"])
    assert best["item_id"] == ITEMS[0]
    assert best["verified"] and best["inliers"] >= 20


def test_detect_accepts_multipart_and_base64(shop) -> None:
    client, catalog = shop
    photo = query_photo(ITEMS[0])
    url = f"/v1/catalogs/{catalog}/detect"
    multi = client.post(
        url, data={"image": (io.BytesIO(photo), "f.jpg")}, content_type="multipart/form-data"
    )
    b64 = client.post(url, json={"image": base64.b64encode(photo).decode(), "top_k": 2})
    assert multi.status_code == b64.status_code == 200
    assert _top_items(multi.json)[-1] == _top_items(b64.json)[-1]
    assert all(len(d["matches"]) <= 2 for d in b64.json["detections"])


def test_detect_options(shop) -> None:
    client, catalog = shop
    url = f"/v1/catalogs/{catalog}/detect"
    photo = query_photo(ITEMS[0])
    unverified = client.post(f"{url}?verify=false&top_k=3", data=photo, content_type="image/jpeg")
    assert unverified.status_code == 200
    matches = [m for d in unverified.json["detections"] for m in d["matches"]]
    assert matches and all(m["inliers"] == 0 for m in matches)
    assert "verify" not in unverified.json["timings"]
    strict = client.post(f"{url}?min_score=0.99", data=photo, content_type="image/jpeg").json
    assert all(m["score"] >= 0.99 for d in strict["detections"] for m in d["matches"])
    frameless = client.post(
        f"{url}?whole_frame=false&classes=bus", data=photo, content_type="image/jpeg"
    ).json
    assert all(d["class"] == "bus" for d in frameless["detections"])


def test_search_returns_a_ranked_list_of_every_item(shop) -> None:
    client, catalog = shop
    r = client.post(
        f"/v1/catalogs/{catalog}/search?top_k=100",
        data=query_photo(ITEMS[2]),
        content_type="image/jpeg",
    )
    assert r.status_code == 200
    matches = r.json["matches"]
    # nothing hidden: every catalog item is ranked, best first
    assert sorted(m["item_id"] for m in matches) == sorted(ITEMS)
    assert matches[0]["item_id"] == ITEMS[2]
    assert [m["score"] for m in matches] == sorted((m["score"] for m in matches), reverse=True)


def test_empty_catalog_answers_empty_matches(shop) -> None:
    client, catalog = shop
    cid = client.post("/v1/catalogs", json={"name": "empty"}).json["id"]
    r = client.post(
        f"/v1/catalogs/{cid}/detect", data=query_photo(ITEMS[0]), content_type="image/jpeg"
    )
    assert r.status_code == 200
    assert r.json["detections"] and all(d["matches"] == [] for d in r.json["detections"])
    assert (
        client.post(
            f"/v1/catalogs/{cid}/search", data=query_photo(ITEMS[0]), content_type="image/jpeg"
        ).json["matches"]
        == []
    )
