"""The watch routes on the real app and models: CRUD and tenancy, the scan and match jobs
(run here, as a consumer would), one alert per item pair, signed deliveries to a real receiver,
and uploads that never wait for a hanging receiver."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from api import create_app
from jobs.records import JobStore
from jobs.runner import run_job
from tests.conftest import offline_settings
from watches.receiver import Receiver

pytestmark = pytest.mark.slow  # the real models
DOGS = Path(__file__).resolve().parents[3] / "shared" / "data" / "dogs"
ALICE, BOB = "alice-key", "bob-key"


def photo(part: str, dog: str, index: int = 0) -> bytes:
    return sorted((DOGS / part / dog).iterdir())[index].read_bytes()


@pytest.fixture()
def app(tmp_path: Path, pipeline, monkeypatch: pytest.MonkeyPatch):
    settings = offline_settings(
        tmp_path / "store", sync_interval_s=0.0, api_keys=[ALICE, BOB], calibration_refit=False,
        webhook_allow=["127.0.0.1"], watch_debounce_s=0.0, webhook_backoff_s=0.1,
        webhook_timeout_s=120.0, job_modules=["watches.job"],
    )  # fmt: skip
    import watches.job  # noqa: F401 - registers the kinds in this process

    monkeypatch.setattr("matching.engine.shared_pipeline", lambda s: pipeline)
    return create_app(settings, pipeline=pipeline)


def key(k: str) -> dict:
    return {"X-API-Key": k}


def run_jobs(app, kinds: tuple[str, ...] = ("watch.scan", "watch.match", "watch.deliver")) -> int:
    """Run every queued job of ``kinds`` (scheduled retries included) until none is left."""
    jobs = JobStore(app.extensions["sighting"].repository.store)
    settings = app.extensions["sighting"].settings
    ran = 0
    for _ in range(50):
        queued = [
            r for r in map(jobs.get, jobs.list_ids()) if r.state == "queued" and r.kind in kinds
        ]
        if not queued:
            return ran
        for record in sorted(queued, key=lambda r: r.created_at):
            run_job(jobs, record.job_id, settings=settings, heartbeat_s=1.0)
            ran += 1
    raise AssertionError("jobs keep coming")


def catalog(client: FlaskClient, k: str, name: str, dogs: dict[str, bytes]) -> str:
    cid = client.post("/v1/catalogs", json={"name": name, "kind": "animals"}, headers=key(k))
    cid = cid.json["id"]
    for item, data in dogs.items():
        r = client.post(
            f"/v1/catalogs/{cid}/items",
            data={"images": (io.BytesIO(data), "d.jpg"), "item_id": item},
            content_type="multipart/form-data",
            headers=key(k),
        )
        assert r.status_code == 201, r.json
    return cid


def test_crud_and_tenancy(app) -> None:
    client = app.test_client()
    lost = catalog(client, ALICE, "lost", {"rex": photo("catalog", "0")})
    found = catalog(client, ALICE, "found", {})
    r = client.post(
        "/v1/watches",
        json={"watched_catalog": lost, "source_catalog": found, "min_score": 0.4,
              "filters": {"metadata": {"species": "dog"}}},
        headers=key(ALICE),
    )  # fmt: skip
    assert r.status_code == 201, r.json
    watch = r.json
    assert watch["secret"] and watch["scan_job"] and watch["min_score"] == 0.4
    wid = watch["id"]
    got = client.get(f"/v1/watches/{wid}", headers=key(ALICE)).json
    assert "secret" not in got and got["filters"]["metadata"] == {"species": "dog"}
    assert [w["id"] for w in client.get("/v1/watches", headers=key(ALICE)).json["watches"]] == [wid]
    # another tenant sees nothing of it, and may not watch alice's catalogs
    for method, url in (("get", f"/v1/watches/{wid}"), ("delete", f"/v1/watches/{wid}"),
                        ("get", f"/v1/watches/{wid}/alerts")):  # fmt: skip
        assert getattr(client, method)(url, headers=key(BOB)).status_code == 404
    assert client.get("/v1/watches", headers=key(BOB)).json["watches"] == []
    r = client.post("/v1/watches", json={"watched_catalog": lost}, headers=key(BOB))
    assert r.status_code == 404
    assert client.get(f"/v1/watches/{wid}").status_code == 401
    # refused webhooks and bad fields: 422 in the one error shape
    for bad in (
        {"watched_catalog": lost, "webhook_url": "http://10.0.0.7/hook"},
        {"watched_catalog": lost, "webhook_url": "http://169.254.169.254/"},
        {"watched_catalog": lost, "webhook_url": "ftp://example.org/"},
        {"watched_catalog": lost, "min_score": 2},
        {"watched_catalog": lost, "filters": {"near": {"lat": 0, "lon": 0}}},
        {"watched_catalog": lost, "colour": "red"},
    ):
        r = client.post("/v1/watches", json=bad, headers=key(ALICE))
        assert r.status_code == 422, (bad, r.json)
        assert r.json["error"]["status"] == 422
    r = client.post("/v1/watches", json={"watched_catalog": "nosuchcat"}, headers=key(ALICE))
    assert r.status_code == 404
    assert client.delete(f"/v1/watches/{wid}", headers=key(ALICE)).status_code == 204
    assert client.get(f"/v1/watches/{wid}", headers=key(ALICE)).status_code == 404


def test_alerts_one_per_pair_delivered_signed_and_uploads_never_wait(app) -> None:
    client = app.test_client()
    lost = catalog(
        client, ALICE, "lost", {"rex": photo("catalog", "0"), "bella": photo("catalog", "1")}
    )
    found = catalog(client, ALICE, "found", {"f0": photo("queries", "0", 0)})
    with Receiver(hang=True) as receiver:
        r = client.post(
            "/v1/watches",
            json={"watched_catalog": lost, "source_catalog": found, "min_score": 0.0,
                  "webhook_url": receiver.url},
            headers=key(ALICE),
        )  # fmt: skip
        assert r.status_code == 201, r.json
        wid, receiver.secret = r.json["id"], r.json["secret"]
        assert run_jobs(app, ("watch.scan",)) == 1
        alerts = client.get(f"/v1/watches/{wid}/alerts", headers=key(ALICE)).json["alerts"]
        # min_score 0: both lost dogs are candidates of the found photo, one alert each
        assert sorted(a["watched"]["item_id"] for a in alerts) == ["bella", "rex"]
        assert {a["source"]["item_id"] for a in alerts} == {"f0"}
        assert all(
            0.0 <= a["score"] <= 1.0 and a["delivery"]["status"] == "pending" for a in alerts
        )

        # deliveries hang on the receiver (a consumer thread here); uploads go on meanwhile
        stuck = threading.Thread(target=run_jobs, args=(app, ("watch.deliver",)), daemon=True)
        stuck.start()
        deadline = time.monotonic() + 30
        while not receiver.posts and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.posts, "the delivery never reached the receiver"
        start = time.monotonic()
        for i in (1, 2):  # two more photos of the same found dog, and a new found dog
            r = client.post(
                f"/v1/catalogs/{found}/items/f0/images",
                data={"images": (io.BytesIO(photo("queries", "0", i)), "d.jpg")},
                content_type="multipart/form-data",
                headers=key(ALICE),
            )
            assert r.status_code == 201
        r = client.post(
            f"/v1/catalogs/{found}/items",
            data={"images": (io.BytesIO(photo("queries", "1", 0)), "d.jpg"), "item_id": "f1"},
            content_type="multipart/form-data",
            headers=key(ALICE),
        )
        assert r.status_code == 201
        # answered while the delivery still hangs (its POST waits up to 120 s for an answer)
        assert not receiver.accepted and stuck.is_alive()
        assert time.monotonic() - start < 120
        receiver.release.set()
        stuck.join(60)
        assert run_jobs(app) >= 1  # the match job of the uploads, then their deliveries
        alerts = client.get(f"/v1/watches/{wid}/alerts", headers=key(ALICE)).json["alerts"]
        pairs = [(a["watched"]["item_id"], a["source"]["item_id"]) for a in alerts]
        assert sorted(pairs) == [("bella", "f0"), ("bella", "f1"), ("rex", "f0"), ("rex", "f1")]
        assert len(set(a["id"] for a in alerts)) == 4
        assert all(a["delivery"]["status"] == "delivered" for a in alerts), alerts
        assert sorted(receiver.accepted) == sorted(a["id"] for a in alerts)
        assert receiver.bad_signatures == 0
        sent = receiver.accepted[alerts[0]["id"]]
        assert sent["watched"]["catalog_id"] == lost and sent["source"]["catalog_id"] == found
        # matching the same images again makes no new alert
        assert run_jobs(app) == 0

    aid = alerts[0]["id"]
    r = client.post(f"/v1/watches/{wid}/alerts/{aid}/resolve", json={"resolution": "not_same"},
                    headers=key(ALICE))  # fmt: skip
    assert r.status_code == 200 and r.json["resolution"] == "not_same"
    r = client.post(f"/v1/watches/{wid}/alerts/{aid}/resolve", json={"resolution": "maybe"},
                    headers=key(ALICE))  # fmt: skip
    assert r.status_code == 422
    r = client.post(f"/v1/watches/{wid}/alerts/{aid}/resolve", json={"resolution": "reunited"},
                    headers=key(BOB))  # fmt: skip
    assert r.status_code == 404
