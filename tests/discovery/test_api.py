"""Discovery over HTTP on the real app and models, with real dog photos: sightings of dogs the
catalog does not hold are grouped by the job (run here, as a consumer would), one proposal per
dog; accept makes an item of a group, split and reject; tenancy, 404/409/422; a second run
replaces the open proposals and never proposes an accepted or rejected group again."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from api import create_app
from jobs.records import JobStore
from jobs.runner import run_job
from tests.conftest import offline_settings

pytestmark = pytest.mark.slow  # the real models
DOGS = Path(__file__).resolve().parents[3] / "shared" / "data" / "dogs"
ALICE, BOB = "alice-key", "bob-key"
UNKNOWN = ("0", "1", "1003")  # dogs the catalog does not hold, 3 photos each


def photos(part: str, dog: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((DOGS / part / dog).iterdir())][:3]


@pytest.fixture()
def app(tmp_path: Path, pipeline, monkeypatch: pytest.MonkeyPatch):
    settings = offline_settings(
        tmp_path / "store", sync_interval_s=0.0, api_keys=[ALICE, BOB], calibration_refit=False,
        job_modules=["discovery.job"],
    )  # fmt: skip
    import discovery.job  # noqa: F401 - registers the kind in this process

    monkeypatch.setattr("matching.engine.shared_pipeline", lambda s: pipeline)
    return create_app(settings, pipeline=pipeline)


def key(k: str) -> dict:
    return {"X-API-Key": k}


def run_queued(app) -> list[dict]:
    """Run every queued discovery job; their results."""
    jobs = JobStore(app.extensions["sighting"].repository.store)
    settings = app.extensions["sighting"].settings
    out = []
    for record in [r for r in map(jobs.get, jobs.list_ids()) if r.state == "queued"]:
        run_job(jobs, record.job_id, settings=settings, heartbeat_s=1.0)
        done = jobs.get(record.job_id)
        assert done.state == "done", done.message
        out.append(done.result)
    return out


def discover(client: FlaskClient, app, cid: str, body: dict) -> dict:
    r = client.post(f"/v1/catalogs/{cid}/discovery", json=body, headers=key(ALICE))
    assert r.status_code == 202, r.json
    assert r.json["kind"] == "discovery" and r.headers["Location"] == f"/v1/jobs/{r.json['id']}"
    (result,) = run_queued(app)
    return result


def proposals(client: FlaskClient, cid: str, state: str | None = None) -> list[dict]:
    query = f"?state={state}" if state else ""
    r = client.get(f"/v1/catalogs/{cid}/discovery/proposals{query}", headers=key(ALICE))
    assert r.status_code == 200, r.json
    return r.json["proposals"]


def test_unknown_dogs_are_proposed_accepted_split_and_rejected(app) -> None:
    client = app.test_client()
    cid = client.post("/v1/catalogs", json={"name": "shelter", "kind": "animals"},
                      headers=key(ALICE)).json["id"]  # fmt: skip
    r = client.post(f"/v1/catalogs/{cid}/items",
                    data={"images": (io.BytesIO(photos("catalog", "1006")[0]), "k.jpg"),
                          "item_id": "known"},
                    content_type="multipart/form-data", headers=key(ALICE))  # fmt: skip
    assert r.status_code == 201, r.json
    dog_of: dict[str, str] = {}
    for dog in UNKNOWN:
        for data in photos("queries", dog):
            r = client.post(f"/v1/catalogs/{cid}/search?keep=true", data=data,
                            content_type="image/jpeg", headers=key(ALICE))  # fmt: skip
            assert r.status_code == 200, r.json
            (sid,) = r.json["sighting_ids"]
            dog_of[sid] = dog
            if dog != "1003":  # 1003's stay unreviewed: gathered by their low best score
                v = client.post(f"/v1/catalogs/{cid}/sightings/{sid}/review",
                                json={"verdict": "none"}, headers=key(ALICE))  # fmt: skip
                assert v.status_code == 200, v.json

    # bad bodies, unknown batch, other tenants: nothing is queued
    for bad in ({"min_score": 3}, {"colour": "red"}, {"trap_job": "../x"}):
        r = client.post(f"/v1/catalogs/{cid}/discovery", json=bad, headers=key(ALICE))
        assert r.status_code == 422 and r.json["error"]["status"] == 422, (bad, r.json)
    r = client.post(f"/v1/catalogs/{cid}/discovery", json={"trap_job": "nosuchjob123"},
                    headers=key(ALICE))  # fmt: skip
    assert r.status_code == 422 and r.json["error"]["details"] == {"trap_job": "nosuchjob123"}
    assert (
        client.post(f"/v1/catalogs/{cid}/discovery", json={}, headers=key(BOB)).status_code == 404
    )
    assert client.post(f"/v1/catalogs/{cid}/discovery", json={}).status_code == 401

    result = discover(client, app, cid, {"max_score": 0.99})
    assert result["photos"] == 9 and result["groups"] == 3 and result["replaced"] == 0
    found = proposals(client, cid)
    assert len(found) == 3 and {p["id"] for p in found} == set(result["proposals"])
    groups = {frozenset(m["ref"] for m in p["members"]) for p in found}
    assert groups == {frozenset(s for s, d in dog_of.items() if d == dog) for dog in UNKNOWN}
    by_dog = {dog_of[p["members"][0]["ref"]]: p for p in found}
    for p in found:
        assert p["state"] == "open" and len(p["links"]) == 2 and p["score"] > 0
        assert all(m["source"] == "sighting" and m["sighting_url"] for m in p["members"])
        crop = client.get(p["members"][0]["crop_url"], headers=key(ALICE))
        assert crop.status_code == 200 and crop.data[:2] == b"\xff\xd8"

    # another tenant sees none of it
    base = f"/v1/catalogs/{cid}/discovery/proposals"
    zero = by_dog["0"]["id"]
    for method, url in (("get", base), ("get", f"{base}/{zero}"),
                        ("post", f"{base}/{zero}/accept"), ("post", f"{base}/{zero}/reject"),
                        ("get", f"{base}/{zero}/members/0/crop")):  # fmt: skip
        r = getattr(client, method)(url, json={} if method == "post" else None, headers=key(BOB))
        assert r.status_code == 404, (url, r.json)
    assert client.get(f"{base}/{zero}/members/9/crop", headers=key(ALICE)).status_code == 404
    assert client.get(f"{base}/pnosuchthing", headers=key(ALICE)).status_code == 404

    # accept dog 0: an item with its three photos, its sightings reviewed
    r = client.post(f"{base}/{zero}/accept", json={"item_id": "dog-zero", "metadata": {"n": 1}},
                    headers=key(ALICE))  # fmt: skip
    assert r.status_code == 200, r.json
    assert r.json["item_id"] == "dog-zero" and r.json["images"] == 3
    assert r.json["proposal"]["state"] == "accepted"
    item = client.get(f"/v1/catalogs/{cid}/items/dog-zero", headers=key(ALICE)).json
    assert len(item["images"]) == 3 and item["metadata"]["n"] == 1
    states = sorted(
        client.get(f"/v1/catalogs/{cid}/sightings/{m['ref']}", headers=key(ALICE)).json["state"]
        for m in by_dog["0"]["members"]
    )
    assert states == ["confirmed", "confirmed", "new_item"]
    r = client.post(f"{base}/{zero}/accept", json={}, headers=key(ALICE))
    assert r.status_code == 409 and r.json["error"]["status"] == 409
    r = client.post(f"{base}/{by_dog['1']['id']}/accept", json={"item_id": "known"},
                    headers=key(ALICE))  # fmt: skip
    assert r.status_code == 409  # the id exists
    r = client.post(f"{base}/{by_dog['1']['id']}/accept", json={"item_id": "no/slash"},
                    headers=key(ALICE))  # fmt: skip
    assert r.status_code == 422

    # split one photo of dog 1 off, reject it
    one = by_dog["1"]
    ref = one["members"][0]["ref"]
    for bad in ({"members": ["nope"]}, {"members": []},
                {"members": [m["ref"] for m in one["members"]]}, {"who": 1}):  # fmt: skip
        r = client.post(f"{base}/{one['id']}/split", json=bad, headers=key(ALICE))
        assert r.status_code == 422, (bad, r.json)
    r = client.post(f"{base}/{one['id']}/split", json={"members": [ref]}, headers=key(ALICE))
    assert r.status_code == 201, r.json
    off = r.json["split_off"]
    assert [m["ref"] for m in off["members"]] == [ref] and off["split_from"] == one["id"]
    assert len(r.json["proposal"]["members"]) == 2
    r = client.post(f"{base}/{off['id']}/reject", headers=key(ALICE))
    assert r.status_code == 200 and r.json["state"] == "rejected"
    assert client.post(f"{base}/{off['id']}/reject", headers=key(ALICE)).status_code == 409
    assert len(proposals(client, cid, "open")) == 2

    # a second run: open proposals replaced, dog 0's photos (accepted) not proposed again
    result = discover(client, app, cid, {"max_score": 0.99})
    assert result["photos"] == 6 and result["replaced"] == 2
    again = {frozenset(m["ref"] for m in p["members"]) for p in proposals(client, cid, "open")}
    assert again == {frozenset(s for s, d in dog_of.items() if d == dog) for dog in ("1", "1003")}
    assert [p["id"] for p in proposals(client, cid, "accepted")] == [zero]
    assert [p["id"] for p in proposals(client, cid, "rejected")] == [off["id"]]
    # by default only the low-scored unreviewed sightings count (and the 'none' ones)
    result = discover(client, app, cid, {})
    assert result["photos"] >= 3
