"""A changed catalog gets its own calibration refitted in the background: one pending job per
catalog, debounced, run by the queue's consumer; the answer's state says what is in use."""

from __future__ import annotations

import io

from api import create_app
from jobs import JobQueue
from jobs.calibration import pending_refit
from jobs.runner import run_job
from tests.api.conftest import ITEMS, catalog_photo, query_photo
from tests.conftest import offline_settings


def _add(client, cid: str, item: str, photo: bytes) -> None:
    r = client.post(
        f"/v1/catalogs/{cid}/items",
        data={"images": (io.BytesIO(photo), f"{item}.jpg"), "item_id": item},
        content_type="multipart/form-data",
    )
    assert r.status_code == 201, r.json


def test_uploads_queue_one_debounced_refit_and_it_is_stored(tmp_path, pipeline) -> None:
    settings = offline_settings(tmp_path / "store", sync_interval_s=0.0, calibration_debounce_s=0.2)
    client = create_app(settings, pipeline=pipeline).test_client()
    cid = client.post("/v1/catalogs", json={"name": "shop", "kind": "products"}).json["id"]
    queue = JobQueue(settings)
    assert pending_refit(queue, cid) is None  # an empty catalog: nothing to fit
    for item in ITEMS:  # three uploads in a row: one pending refit, not three
        _add(client, cid, item, catalog_photo(item))
    job_id = pending_refit(queue, cid)
    assert job_id is not None
    assert [j for j in queue.jobs.list_ids() if queue.get(j).kind == "calibration"] == [job_id]
    before = client.get(f"/v1/catalogs/{cid}").json["calibration"]
    assert before["source"] == "kind_default" and before["state"] == "not_fitted"

    done = run_job(queue.jobs, job_id, settings=settings)  # what the consumer does
    assert done is not None and done.state == "done", done
    assert done.result["stored"] and done.result["fits"] == 1
    after = client.get(f"/v1/catalogs/{cid}").json["calibration"]
    assert after["state"] == done.result["status"] == "too_small"  # 3 items: a clear state
    assert after["source"] == "kind_default" and "impostor" in after["reason"]
    assert pending_refit(queue, cid) is None

    # a change after the fit: a new refit is queued, and the stored fit is stale meanwhile
    _add(client, cid, "Arla-second-photo", query_photo("Arla-Standard-Milk"))
    again = pending_refit(queue, cid)
    assert again not in (None, job_id)
    assert client.get(f"/v1/catalogs/{cid}").json["calibration"]["state"] == "stale"
    assert client.delete(f"/v1/catalogs/{cid}/items/Arla-second-photo").status_code == 204
    assert pending_refit(queue, cid) == again  # still the one pending job
    done = run_job(queue.jobs, again, settings=settings)
    assert done.state == "done" and done.result["stored"]
    assert client.get(f"/v1/catalogs/{cid}").json["calibration"]["state"] == "too_small"


def test_refit_of_a_deleted_catalog_and_refit_off(tmp_path, pipeline) -> None:
    settings = offline_settings(tmp_path / "store", sync_interval_s=0.0, calibration_debounce_s=0)
    client = create_app(settings, pipeline=pipeline).test_client()
    cid = client.post("/v1/catalogs", json={"name": "gone"}).json["id"]
    _add(client, cid, ITEMS[0], catalog_photo(ITEMS[0]))
    queue = JobQueue(settings)
    job_id = pending_refit(queue, cid)
    assert client.delete(f"/v1/catalogs/{cid}").status_code == 204
    done = run_job(queue.jobs, job_id, settings=settings)
    assert done.state == "done" and done.result == {
        "catalog_id": cid,
        "status": "catalog deleted",
        "stored": False,
    }
    off = settings.model_copy(update={"calibration_refit": False, "data_dir": tmp_path / "off"})
    client = create_app(off, pipeline=pipeline).test_client()
    cid = client.post("/v1/catalogs", json={"name": "manual"}).json["id"]
    _add(client, cid, ITEMS[0], catalog_photo(ITEMS[0]))
    assert pending_refit(JobQueue(off), cid) is None
