"""Sightings and reviews over HTTP, end to end: real models, real grocery photos, a real store.

keep=true on detect, search and stream frames; the listing, one sighting, its crop; every
verdict; the refit on reviews and what GET /v1/catalogs/<id> says of it; the duplicate check
of an upload; tenancy and bad input.
"""

from __future__ import annotations

import io
import threading

import pytest
from flask.testing import FlaskClient

from api.state import SightingState
from catalog.calibration import refit_catalog_calibration
from matching.calibration.record import FitOptions
from sightings.pairs import reviewed_pairs
from sightings.repository import SightingRepository
from tests.api.conftest import ALICE, BOB, ITEMS, catalog_photo, fill_catalog, query_photo

pytestmark = pytest.mark.slow


def _state(client: FlaskClient) -> SightingState:
    return client.application.extensions["sighting"]


def _detect(client: FlaskClient, cid: str, item: str, headers=None, index=0, **query) -> dict:
    options = {"keep": "true", "top_k": 3, "verify": "false"} | query
    params = "&".join(f"{k}={v}" for k, v in options.items())
    r = client.post(
        f"/v1/catalogs/{cid}/detect?{params}",
        data=query_photo(item, index),
        content_type="image/jpeg",
        headers=headers or {},
    )
    assert r.status_code == 200, r.json
    return r.json


def _review(client: FlaskClient, cid: str, sid: str, body: dict, headers=None):
    return client.post(
        f"/v1/catalogs/{cid}/sightings/{sid}/review", json=body, headers=headers or {}
    )


def test_kept_answers_are_listed_shown_and_reviewed(client: FlaskClient) -> None:
    cid = fill_catalog(client)
    plain = _detect(client, cid, ITEMS[0], keep="false")
    assert "sighting_ids" not in plain or plain["sighting_ids"] == []
    assert client.get(f"/v1/catalogs/{cid}/sightings").json["total"] == 0
    body = _detect(client, cid, ITEMS[0])
    sids = body["sighting_ids"]
    matched = [d for d in body["detections"] if d["matches"]]
    assert len(sids) == len(matched) >= 1
    page = client.get(f"/v1/catalogs/{cid}/sightings?state=unreviewed").json
    assert page["total"] == len(sids) and page["counts"]["unreviewed"] == len(sids)
    sid = sids[0]
    one = client.get(f"/v1/catalogs/{cid}/sightings/{sid}").json
    assert one["state"] == "unreviewed" and one["source"]["kind"] == "detect"
    assert one["catalog_version"] == body["catalog_version"]
    assert [c["item_id"] for c in one["candidates"]] == [
        m["item_id"] for m in matched[0]["matches"]
    ]
    crop = client.get(one["crop_url"])
    assert (
        crop.status_code == 200 and crop.mimetype == "image/jpeg" and crop.data[:2] == b"\xff\xd8"
    )
    assert client.get(one["photo_url"]).status_code == 200
    cand = one["candidates"][0]
    assert client.get(cand["image_url"]).status_code == 200

    r = _review(client, cid, sid, {"verdict": "same", "item_id": ITEMS[0], "add_reference": True})
    assert r.status_code == 200, r.json
    assert r.json["sighting"]["state"] == "confirmed" and r.json["reference_image_id"]
    item = client.get(f"/v1/catalogs/{cid}/items/{ITEMS[0]}").json
    assert r.json["reference_image_id"] in [im["image_id"] for im in item["images"]]
    r = _review(client, cid, sid, {"verdict": "none"})
    assert r.status_code == 200 and r.json["sighting"]["state"] == "none"
    assert r.json["removed_image_id"]  # the wrong reference went again
    history = client.get(f"/v1/catalogs/{cid}/sightings/{sid}").json["reviews"]
    assert [h["verdict"] for h in history] == ["same", "none"]
    assert all(h["tenant"] == "local" for h in history)

    # search keeps one sighting of the photo; a new item from it
    r = client.post(
        f"/v1/catalogs/{cid}/search?keep=true&top_k=3&verify=false",
        data=query_photo(ITEMS[1]),
        content_type="image/jpeg",
    )
    assert r.status_code == 200 and len(r.json["sighting_ids"]) == 1
    new = _review(
        client,
        cid,
        r.json["sighting_ids"][0],
        {"verdict": "new_item", "item_id": "oatly-shelf", "metadata": {"aisle": 4}},
    )
    assert new.status_code == 200, new.json
    assert new.json["created_item"] == "oatly-shelf"
    created = client.get(f"/v1/catalogs/{cid}/items/oatly-shelf").json
    assert created["metadata"]["aisle"] == 4 and len(created["images"]) == 1
    assert client.get(f"/v1/catalogs/{cid}/sightings?state=new_item").json["total"] == 1


def test_bad_reviews_are_clear_answers(client: FlaskClient) -> None:
    cid = fill_catalog(client)
    sid = _detect(client, cid, ITEMS[2])["sighting_ids"][0]
    assert _review(client, cid, sid, {"verdict": "maybe"}).status_code == 422
    assert _review(client, cid, sid, {"verdict": "same"}).status_code == 422
    assert _review(client, cid, sid, {"verdict": "same", "item_id": "nope"}).status_code == 404
    exists = _review(client, cid, sid, {"verdict": "new_item", "item_id": ITEMS[0]})
    assert exists.status_code == 409
    assert _review(client, cid, "s0nope", {"verdict": "none"}).status_code == 404
    assert client.get(f"/v1/catalogs/{cid}/sightings?state=maybe").status_code == 422
    assert client.get(f"/v1/catalogs/{cid}/sightings?limit=0").status_code == 422
    assert client.get(f"/v1/catalogs/{cid}/sightings/{sid}").json["reviews"] == []
    client.delete(f"/v1/catalogs/{cid}/items/{ITEMS[1]}")  # deleted since it was kept
    gone = _review(client, cid, sid, {"verdict": "same", "item_id": ITEMS[1]})
    assert gone.status_code == 404 and "deleted since" in gone.json["error"]["message"]
    client.delete(f"/v1/catalogs/{cid}")
    assert client.get(f"/v1/catalogs/{cid}/sightings/{sid}").status_code == 404
    assert _review(client, cid, sid, {"verdict": "none"}).status_code == 404


def test_another_tenants_sightings_are_not_found(keyed_client: FlaskClient) -> None:
    alice, bob = {"X-API-Key": ALICE}, {"X-API-Key": BOB}
    cid = keyed_client.post(
        "/v1/catalogs", json={"name": "a", "kind": "products"}, headers=alice
    ).json["id"]
    r = keyed_client.post(
        f"/v1/catalogs/{cid}/items",
        data={"images": (io.BytesIO(catalog_photo(ITEMS[0])), "a.jpg"), "item_id": ITEMS[0]},
        content_type="multipart/form-data",
        headers=alice,
    )
    assert r.status_code == 201
    sid = _detect(keyed_client, cid, ITEMS[0], headers=alice)["sighting_ids"][0]
    assert keyed_client.get(f"/v1/catalogs/{cid}/sightings", headers=bob).status_code == 404
    assert keyed_client.get(f"/v1/catalogs/{cid}/sightings/{sid}", headers=bob).status_code == 404
    denied = _review(keyed_client, cid, sid, {"verdict": "none"}, headers=bob)
    assert denied.status_code == 404
    assert (
        keyed_client.get(f"/v1/catalogs/{cid}/sightings/{sid}", headers=alice).json["reviews"] == []
    )


def test_two_reviewers_at_once_lose_nothing(client: FlaskClient) -> None:
    cid = fill_catalog(client)
    sid = _detect(client, cid, ITEMS[0])["sighting_ids"][0]
    app = client.application
    answers: list[int] = []
    barrier = threading.Barrier(2)

    def review(body: dict) -> None:
        with app.test_client() as own:
            barrier.wait()
            answers.append(_review(own, cid, sid, body).status_code)

    threads = [
        threading.Thread(target=review, args=(b,))
        for b in ({"verdict": "same", "item_id": ITEMS[0]}, {"verdict": "none"})
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [200, 200]
    reviews = client.get(f"/v1/catalogs/{cid}/sightings/{sid}").json["reviews"]
    assert sorted(r["verdict"] for r in reviews) == ["none", "same"]


def test_the_calibration_refits_on_reviews_and_says_how_many_pairs(client: FlaskClient) -> None:
    cid = fill_catalog(client)
    s = _state(client)
    for i in range(2):  # a few real photos, each reviewed with its truth
        for item in ITEMS:
            for sid in _detect(client, cid, item, index=i)["sighting_ids"]:
                r = _review(client, cid, sid, {"verdict": "same", "item_id": item})
                assert r.status_code == 200, r.json
    manifest = s.repository.get_manifest(cid)
    pairs = reviewed_pairs(SightingRepository(s.repository.store), manifest)
    assert pairs.sightings >= 6 and pairs.genuine >= 1
    options = FitOptions(max_queries=3, min_impostors=2, min_reviewed=3)
    result = refit_catalog_calibration(
        s.repository,
        s.pipeline,
        cid,
        options,
        reviewed=pairs.records,
        reviews_digest=pairs.digest,
    )
    assert result.stored and result.calibration.reviewed_pairs == pairs.genuine + pairs.impostors
    cal = client.get(f"/v1/catalogs/{cid}").json["calibration"]
    assert cal["reviewed_pairs"] == pairs.genuine + pairs.impostors
    assert cal["reviewed_sightings"] == pairs.sightings
    # the same reviews again: nothing to refit
    again = refit_catalog_calibration(
        s.repository, s.pipeline, cid, options, reviewed=pairs.records, reviews_digest=pairs.digest
    )
    assert again.skipped
    # python -m catalog calibrate (no sightings read) keeps the reviews of the last fit
    cli = refit_catalog_calibration(s.repository, s.pipeline, cid, options)
    assert cli.skipped and cli.calibration.reviewed_pairs == result.calibration.reviewed_pairs


def test_an_item_entered_twice_is_named_on_upload_and_in_the_look_alikes(
    client: FlaskClient,
) -> None:
    cid = fill_catalog(client)
    r = client.post(
        f"/v1/catalogs/{cid}/items",
        data={"images": (io.BytesIO(catalog_photo(ITEMS[1])), "again.jpg"), "item_id": "dup"},
        content_type="multipart/form-data",
    )
    assert r.status_code == 201, r.json
    named = r.json["possible_duplicates"]
    assert named and named[0]["item_id"] == ITEMS[1] and named[0]["score"] >= 0.5
    looks = client.get(f"/v1/catalogs/{cid}").json["calibration"]["look_alikes"]
    assert {"item": "dup", "looks_like": ITEMS[1]}.items() <= next(
        p for p in looks if p.get("source") == "upload"
    ).items()
    fresh = client.post(
        f"/v1/catalogs/{cid}/items",
        data={"images": (io.BytesIO(catalog_photo("Alpro-Fresh-Soy-Milk")), "x.jpg")},
        content_type="multipart/form-data",
    )
    assert fresh.status_code == 201
    assert ITEMS[1] not in [d["item_id"] for d in fresh.json["possible_duplicates"]]
