"""GET /v1/jobs/<id> and its files: owners, states, errors (the app over a real store)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

import tests.jobs.kinds  # noqa: F401 - registers the test kinds in this process
from api import create_app
from api.auth import tenant_of
from jobs import JobQueue
from jobs.runner import run_job
from tests.conftest import offline_settings

ALICE, BOB, ADMIN = "alice-key", "bob-key", "admin-key"


@pytest.fixture()
def app_and_queue(tmp_path: Path, pipeline):
    settings = offline_settings(
        tmp_path / "store", api_keys=[ALICE, BOB], admin_keys=[ADMIN], job_heartbeat_s=0.2
    )
    app = create_app(settings, pipeline=pipeline)
    return app.test_client(), JobQueue(settings)


def get(client: FlaskClient, url: str, key: str = ALICE):
    return client.get(url, headers={"X-API-Key": key})


def test_job_state_progress_and_files(app_and_queue) -> None:
    client, queue = app_and_queue
    record = queue.submit("test.count", {"n": 3, "pause": 0}, owner=tenant_of(ALICE))
    r = get(client, f"/v1/jobs/{record.job_id}")
    assert r.status_code == 200
    assert (r.json["state"], r.json["progress"], r.json["files"]) == (
        "queued",
        {"done": 0, "total": 0},
        [],
    )
    early = get(client, f"/v1/jobs/{record.job_id}/files/count.txt")
    assert early.status_code == 409 and early.json["error"]["details"]["state"] == "queued"

    run_job(queue.jobs, record.job_id, settings=queue.settings)  # a consumer's work, in-process
    r = get(client, f"/v1/jobs/{record.job_id}")
    assert r.json["state"] == "done" and r.json["progress"] == {"done": 3, "total": 3}
    assert r.json["file_urls"]["count.txt"] == f"/v1/jobs/{record.job_id}/files/count.txt"
    f = get(client, r.json["file_urls"]["count.txt"])
    assert (f.status_code, f.data, f.mimetype) == (200, b"0\n1\n2", "text/plain")
    nested = get(client, f"/v1/jobs/{record.job_id}/files/parts/pid.txt")
    assert nested.status_code == 200
    assert get(client, f"/v1/jobs/{record.job_id}/files/nope.csv").status_code == 404
    assert get(client, f"/v1/jobs/{record.job_id}", key=ADMIN).status_code == 200


@pytest.mark.parametrize(
    ("path", "key", "status"),
    [
        ("/v1/jobs/{id}", BOB, 404),  # another tenant's job is hidden
        ("/v1/jobs/{id}/files/count.txt", BOB, 404),
        ("/v1/jobs/{id}", "wrong", 401),  # unknown key
        ("/v1/jobs/doesnotexist", ALICE, 404),  # unknown job
        ("/v1/jobs/..%2Fetc", ALICE, 404),  # not a job id at all
        ("/v1/jobs/{id}/files/..%2F..%2Fmanifest.json", ALICE, 404),  # no way out of files/
    ],
)
def test_job_errors(app_and_queue, path: str, key: str, status: int) -> None:
    client, queue = app_and_queue
    record = queue.submit("test.count", {"n": 1}, owner=tenant_of(ALICE))
    r = get(client, path.format(id=record.job_id), key=key)
    assert r.status_code == status, r.json
    assert r.json["error"]["status"] == status
