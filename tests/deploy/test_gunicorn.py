"""The service under a real gunicorn: 2 workers, tenants, a killed worker, metrics, daemon mode.

Every test talks HTTP to 127.0.0.1 only; see conftest.py for the server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from core.images import encode_jpeg, list_images, read_image
from core.settings import REPO_ROOT
from tests.deploy.conftest import (
    GROCERY,
    GUNICORN,
    KEY_A,
    KEY_ADMIN,
    KEY_B,
    WORKER_HEADER,
    Server,
    alive,
    answer_from_each_worker,
    children,
    free_port,
    log_tail,
    server_env,
    wait_workers_ready,
)

TIMEOUT = 60  # seconds per request
# item -> a real shelf photo of it (grocery/queries/<item>/...)
QUERIES = {
    "Arla-Standard-Milk": "train__Arla-Standard-Milk_002.jpg",
    "Oatly-Natural-Oatghurt": "train__Oatly-Natural-Oatghurt_002.jpg",
    "Tropicana-Apple-Juice": "train__Tropicana-Apple-Juice_002.jpg",
}
# small reference images (198 px "iconic" web-shop photos) for the write tests
SMALL_ITEMS = sorted(p.name for p in (GROCERY / "catalog").iterdir() if p.is_dir())


def headers(key: str | None, **extra: str) -> dict[str, str]:
    """Request headers with an API key and a new connection (spreads over workers)."""
    h = {"Connection": "close", **extra}
    if key is not None:
        h["X-API-Key"] = key
    return h


def create_catalog(srv: Server, key: str, name: str = "deploy") -> str:
    r = requests.post(
        f"{srv.url}/v1/catalogs",
        json={"name": name, "kind": "products"},
        headers=headers(key),
        timeout=TIMEOUT,
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def add_item(srv: Server, key: str, catalog_id: str, item_id: str, images: list[Path]):
    """POST an item (multipart) and return the response."""
    return requests.post(
        f"{srv.url}/v1/catalogs/{catalog_id}/items",
        files=[("images", (p.name, p.read_bytes(), "image/jpeg")) for p in images],
        data={"item_id": item_id, "metadata": json.dumps({"source": images[0].parent.name})},
        headers=headers(key),
        timeout=TIMEOUT,
    )


def item_ids(srv: Server, key: str, catalog_id: str) -> set[str]:
    r = requests.get(
        f"{srv.url}/v1/catalogs/{catalog_id}/items", headers=headers(key), timeout=TIMEOUT
    )
    assert r.status_code == 200, r.text
    return {it["item_id"] for it in r.json()["items"]}


def detect(srv: Server, key: str | None, catalog_id: str, jpeg: bytes) -> requests.Response:
    return requests.post(
        f"{srv.url}/v1/catalogs/{catalog_id}/detect",
        data=jpeg,
        headers=headers(key, **{"Content-Type": "image/jpeg"}),
        timeout=TIMEOUT,
    )


def best_item(body: dict) -> str | None:
    """The item of the highest-scoring match over every detection."""
    matches = [m for d in body["detections"] for m in d["matches"]]
    return max(matches, key=lambda m: m["score"])["item_id"] if matches else None


def small_jpeg() -> bytes:
    """A small real photo as JPEG (128 px long side)."""
    image = read_image(GROCERY / "queries" / "Arla-Standard-Milk" / QUERIES["Arla-Standard-Milk"])
    return encode_jpeg(image[::3, ::3].copy())


def test_detect_from_both_workers_finds_the_right_item(server: Server) -> None:
    catalog_id = create_catalog(server, KEY_A)
    for item in QUERIES:
        r = add_item(server, KEY_A, catalog_id, item, list_images(GROCERY / "catalog" / item))
        assert r.status_code == 201, r.text
    frames = [
        (item, (GROCERY / "queries" / item / name).read_bytes()) for item, name in QUERIES.items()
    ]
    answers: list[tuple[str, requests.Response]] = []

    def send() -> requests.Response:
        item, jpeg = frames[len(answers) % len(frames)]
        answers.append((item, detect(server, KEY_A, catalog_id, jpeg)))
        return answers[-1][1]

    by_worker = answer_from_each_worker(server, send)
    while len(answers) < len(frames):
        send()
    for item, r in answers:
        assert r.status_code == 200, r.text
        assert best_item(r.json()) == item, (item, r.json())
    assert set(by_worker) == server.workers()


def test_concurrent_adds_lose_no_item(server: Server) -> None:
    catalog_id = create_catalog(server, KEY_A)
    clients, per_client = 8, 2
    barrier = threading.Barrier(clients)
    answers: list[tuple[str, int, dict]] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        barrier.wait()
        for k in range(per_client):
            source = SMALL_ITEMS[(n * per_client + k) % len(SMALL_ITEMS)]
            item = f"c{n}-{k}-{source}"
            r = add_item(server, KEY_A, catalog_id, item, list_images(GROCERY / "catalog" / source))
            with lock:
                answers.append((item, r.status_code, r.json()))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(answers) == clients * per_client
    assert all(status == 201 for _, status, _ in answers), answers
    versions = [body["version"] for _, _, body in answers]
    assert len(set(versions)) == len(versions), f"two writes claimed one version: {versions}"
    expected = {item for item, _, _ in answers}
    for _ in range(4):  # each read may land on either worker
        assert item_ids(server, KEY_A, catalog_id) == expected


def test_sigkilled_worker_loses_no_answered_upload(server: Server) -> None:
    catalog_id = create_catalog(server, KEY_A)
    total = 14
    answered: list[tuple[str, str, float]] = []  # item, worker pid, time
    failures: list[str] = []
    started = threading.Event()

    def uploads() -> None:
        for n in range(total):
            source = SMALL_ITEMS[n % len(SMALL_ITEMS)]
            item = f"k{n}-{source}"
            try:
                r = add_item(
                    server, KEY_A, catalog_id, item, list_images(GROCERY / "catalog" / source)
                )
            except requests.RequestException as exc:  # the killed worker's connection
                failures.append(f"{item}: {exc!r}")
                continue
            if r.status_code == 201:
                answered.append((item, r.headers[WORKER_HEADER], time.monotonic()))
                if len(answered) >= 3:
                    started.set()
            else:
                failures.append(f"{item}: {r.status_code} {r.text[:200]}")

    before = server.workers()
    thread = threading.Thread(target=uploads)
    thread.start()
    try:
        assert started.wait(60), f"uploads did not start: {failures}"
        victim = int(answered[-1][1])
        assert victim in before
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
    finally:
        thread.join(180)
    assert not thread.is_alive()
    # gunicorn replaces the worker; the new one answers
    fresh = wait_workers_ready(server.url, server.master, 2, server.log, exclude={victim})
    assert victim not in server.workers() and len(server.workers()) == 2
    assert fresh - before, "no new worker answered"
    # every upload answered 201 is in the catalog, read through either worker
    stored = item_ids(server, KEY_A, catalog_id)
    assert {item for item, _, _ in answered} <= stored, failures
    assert any(t > killed_at for _, _, t in answered), (
        f"nothing answered after the kill: {failures}"
    )
    assert len(failures) <= 2, failures  # at most the requests in flight on the killed worker


def test_tenants_see_only_their_catalogs(server: Server) -> None:
    cat_a = create_catalog(server, KEY_A, "tenant a")
    cat_b = create_catalog(server, KEY_B, "tenant b")
    url = f"{server.url}/v1/catalogs"
    # (method, path, body): every way B could reach A's catalog answers 404
    for method, path, body in [
        ("GET", f"/{cat_a}", None),
        ("GET", f"/{cat_a}/items", None),
        ("POST", f"/{cat_a}/detect", small_jpeg()),
        ("DELETE", f"/{cat_a}", None),
    ]:
        h = headers(KEY_B, **({"Content-Type": "image/jpeg"} if body else {}))
        r = requests.request(method, url + path, data=body, headers=h, timeout=TIMEOUT)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
    assert requests.get(f"{url}/{cat_a}", headers=headers(KEY_A), timeout=TIMEOUT).ok
    # no key, an unknown key
    for key in (None, "not-a-key"):
        r = requests.get(url, headers=headers(key), timeout=TIMEOUT)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["status"] == 401
    listed = {
        key: {
            c["id"]
            for c in requests.get(url, headers=headers(key), timeout=TIMEOUT).json()["catalogs"]
        }
        for key in (KEY_A, KEY_B, KEY_ADMIN)
    }
    assert cat_a in listed[KEY_A] and cat_b not in listed[KEY_A]
    assert cat_b in listed[KEY_B] and cat_a not in listed[KEY_B]
    assert {cat_a, cat_b} <= listed[KEY_ADMIN]


def requests_total(srv: Server, route: str) -> float:
    """``sighting_requests_total`` of ``GET route`` answered 200, over every worker."""
    r = requests.get(f"{srv.url}/metrics", headers=headers(None), timeout=TIMEOUT)
    assert r.status_code == 200
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "sighting_requests_total"
                and labels.get("route") == route
                and labels.get("method") == "GET"
                and labels.get("status") == "200"
            ):
                return sample.value
    return 0.0


def test_metrics_aggregate_both_workers(server: Server) -> None:
    start = requests_total(server, "/healthz")

    def healthz() -> requests.Response:
        r = requests.get(f"{server.url}/healthz", headers=headers(None), timeout=TIMEOUT)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        return r

    by_worker = answer_from_each_worker(server, healthz)
    assert set(by_worker) == server.workers()
    more = 8
    for _ in range(more):
        healthz()
    # whichever worker renders /metrics, it counts the other worker's requests too
    assert requests_total(server, "/healthz") - start == len(by_worker) + more


def wait_for(condition, timeout_s: float, what: str, log: Path) -> None:
    """Poll ``condition()`` until true; fail with the log after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}:\n{log_tail(log)}")


def healthz_pid(url: str) -> int | None:
    try:
        r = requests.get(url + "/healthz", headers=headers(None), timeout=10)
    except requests.RequestException:
        return None
    return int(r.headers[WORKER_HEADER]) if r.status_code == 200 else None


@pytest.mark.slow  # a real gunicorn daemon with the real models
def test_daemon_start_reload_stop(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = server_env(
        tmp_path,
        SIGHTING_DAEMON="true",
        SIGHTING_WORKERS="1",
        SIGHTING_BIND=f"127.0.0.1:{port}",
    )
    pidfile = tmp_path / "run" / "sighting.pid"
    error_log = tmp_path / "logs" / "error.log"
    started = subprocess.run(
        [str(GUNICORN), "-c", "gunicorn.conf.py"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert started.returncode == 0, started.stderr.decode(errors="replace")
    master = None
    try:
        # detached: the command returned, the master lives on and writes its pidfile
        wait_for(
            lambda: pidfile.is_file() and pidfile.read_text().strip(), 30, "pidfile", error_log
        )
        master = int(pidfile.read_text())
        assert alive(master)
        wait_for(lambda: healthz_pid(url) is not None, 120, "/healthz", error_log)
        assert "Booting worker" in error_log.read_text()
        access_log = tmp_path / "logs" / "access.log"
        # the worker writes its access line after the response: on a busy machine the client
        # can read the answer first
        wait_for(lambda: "/healthz" in access_log.read_text(), 30, "the access log", access_log)

        # kill -HUP: new workers replace the old ones, the service keeps answering
        old = children(master)
        os.kill(master, signal.SIGHUP)
        wait_for(
            lambda: (pid := healthz_pid(url)) is not None and pid not in old,
            120,
            "a reloaded worker",
            error_log,
        )
        assert alive(master) and int(pidfile.read_text()) == master
        assert "Hang up" in error_log.read_text()

        # kill -TERM $(cat pidfile): stops, removes its pidfile
        os.kill(int(pidfile.read_text()), signal.SIGTERM)
        wait_for(lambda: not alive(master) and not pidfile.exists(), 60, "stop", error_log)
        assert healthz_pid(url) is None
    finally:
        if master is not None and alive(master):
            for pid in children(master):
                os.kill(pid, signal.SIGKILL)
            os.kill(master, signal.SIGKILL)
