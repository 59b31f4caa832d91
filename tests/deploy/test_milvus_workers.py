"""Two gunicorn workers on one Milvus (a ``milvus-lite server`` on 127.0.0.1) and a writer.

The workers re-read the store only once an hour (SIGHTING_SYNC_INTERVAL_S=3600), so what one
worker writes can reach the other only through the engine: an image answered 201 by one must
be found by the next search on the other. Then the engine goes away (503 with Retry-After for
matching, uploads still 201 and kept in the store) and comes back (the upload is found).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from core.images import list_images
from core.settings import REPO_ROOT
from tests.deploy.conftest import (
    GROCERY,
    GUNICORN,
    KEY_A,
    WORKER_HEADER,
    Server,
    free_port,
    pause,
    resume,
    server_env,
    stop_process,
    wait_workers_ready,
)
from tests.deploy.test_gunicorn import QUERIES, add_item, create_catalog, headers
from tests.milvus import start_lite_server

pytestmark = pytest.mark.slow
TIMEOUT = 120


@pytest.fixture(scope="module")
def milvus(tmp_path_factory) -> Iterator[tuple[Path, int, list[subprocess.Popen]]]:
    """A Milvus Lite server (data folder, port, [its process]); stopped afterwards."""
    data, port = tmp_path_factory.mktemp("milvus") / "data", free_port()
    procs = [start_lite_server(data, port)]
    yield data, port, procs
    for proc in procs:
        stop_process(proc)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, milvus) -> Iterator[Server]:
    """gunicorn, 2 workers, index backend milvus on the `milvus` server."""
    _, port, _ = milvus
    root = tmp_path_factory.mktemp("gunicorn-milvus")
    url = f"http://127.0.0.1:{free_port()}"
    log = root / "gunicorn.log"
    env = server_env(
        root,
        SIGHTING_INDEX_BACKEND="milvus",
        SIGHTING_MILVUS_URI=f"http://127.0.0.1:{port}",
        SIGHTING_MILVUS_TIMEOUT_S="15",
        SIGHTING_SYNC_INTERVAL_S="3600",
    )
    cmd = [str(GUNICORN), "-c", "gunicorn.conf.py", "--bind", url[len("http://") :]]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--workers", "2"], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT
        )
    srv = Server(proc, url, root, log)
    try:
        wait_workers_ready(url, proc.pid, 2, log, timeout_s=600)  # a shared, busy CPU
        yield srv
    finally:
        stop_process(proc)


def search(srv: Server, catalog_id: str, item: str) -> requests.Response:
    photo = (GROCERY / "queries" / item / QUERIES[item]).read_bytes()
    return requests.post(
        f"{srv.url}/v1/catalogs/{catalog_id}/search?top_k=10",
        data=photo,
        headers=headers(KEY_A, **{"Content-Type": "image/jpeg"}),
        timeout=TIMEOUT,
    )


@contextlib.contextmanager
def only(srv: Server, pid: int) -> Iterator[None]:
    """Every other worker paused (SIGSTOP): new connections reach ``pid``."""
    paused: list[int] = []
    for other in srv.workers() - {pid}:
        pause(other, paused)
    try:
        yield
    finally:
        resume(paused)


def test_an_image_added_through_one_worker_is_found_through_the_other(cluster, milvus):
    first, second = sorted(cluster.workers())
    milk, juice, oat = "Arla-Standard-Milk", "Tropicana-Apple-Juice", "Oatly-Natural-Oatghurt"
    with only(cluster, first):
        catalog_id = create_catalog(cluster, KEY_A, "milvus")
        r = add_item(cluster, KEY_A, catalog_id, milk, list_images(GROCERY / "catalog" / milk))
        assert r.status_code == 201, r.text
    with only(cluster, second):  # the second worker's view: fresh now for an hour
        r = search(cluster, catalog_id, milk)
        assert r.status_code == 200 and int(r.headers[WORKER_HEADER]) == second, r.text
        assert [m["item_id"] for m in r.json()["matches"]] == [milk]
    with only(cluster, first):  # the writer
        r = add_item(cluster, KEY_A, catalog_id, juice, list_images(GROCERY / "catalog" / juice))
        assert r.status_code == 201 and int(r.headers[WORKER_HEADER]) == first, r.text
    with only(cluster, second):  # the next request on the other worker finds it
        r = search(cluster, catalog_id, juice)
        assert r.status_code == 200 and int(r.headers[WORKER_HEADER]) == second, r.text
        assert r.json()["matches"][0]["item_id"] == juice, r.json()

    # the engine goes away: matching answers 503 + Retry-After; an upload is still kept
    data, port, procs = milvus
    stop_process(procs.pop())
    with only(cluster, second):
        r = search(cluster, catalog_id, milk)
        assert r.status_code == 503 and r.headers.get("Retry-After"), r.text
        assert r.json()["error"]["code"] == "index_unavailable"
        r = add_item(cluster, KEY_A, catalog_id, oat, list_images(GROCERY / "catalog" / oat))
        assert r.status_code == 201, r.text
    procs.append(start_lite_server(data, port))  # back, with its data
    # the worker whose sync failed tries again on its next request (any worker also would
    # within SIGHTING_SYNC_INTERVAL_S: its manifest is newer than the engine's version)
    for worker in (second, first):
        with only(cluster, worker):
            deadline = time.monotonic() + 120  # 503 + Retry-After while it is reconnecting
            while (r := search(cluster, catalog_id, oat)).status_code == 503:
                assert r.headers.get("Retry-After") and time.monotonic() < deadline, r.text
                time.sleep(float(r.headers["Retry-After"]))
            assert r.status_code == 200 and int(r.headers[WORKER_HEADER]) == worker, r.text
            assert r.json()["matches"][0]["item_id"] == oat, r.json()
            assert {m["item_id"] for m in r.json()["matches"]} == {milk, juice, oat}
