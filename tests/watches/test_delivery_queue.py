"""Deliveries through the real task queue: real consumer processes (``python -m jobs worker``)
POST to a real receiver on 127.0.0.1 that is down for a while, or hangs while the consumer is
killed; every alert arrives, once per alert id, and the log says what happened."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from catalog.stores import open_store
from core.settings import REPO_ROOT, Settings
from jobs import JobQueue
from tests.jobs.conftest import job_settings, settings_env
from watches.model import Alert, Watch, alert_id_of
from watches.receiver import Receiver
from watches.service import queue_delivery
from watches.store import WatchStore

#: real consumer processes (``python -m jobs worker``), as the ``consumers`` fixture
pytestmark = pytest.mark.slow


def consumer(settings: Settings, log: Path) -> subprocess.Popen:
    env = settings_env(settings) | {
        "SIGHTING_WEBHOOK_ALLOW": ",".join(settings.webhook_allow),
        "SIGHTING_WEBHOOK_BACKOFF_S": str(settings.webhook_backoff_s),
        "SIGHTING_WEBHOOK_TIMEOUT_S": str(settings.webhook_timeout_s),
        "SIGHTING_WEBHOOK_MAX_ATTEMPTS": str(settings.webhook_max_attempts),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "jobs", "worker", "--workers", "2"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(2)  # SIGINT: immediate shutdown
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def alerts_for(settings: Settings, url: str, n: int) -> tuple[WatchStore, Watch, list[Alert]]:
    store = WatchStore(open_store(settings))
    watch = store.create(
        Watch("", "t_a", "lost1", "found1", 0.5, webhook_url=url, secret="s3cret", created_at=1.0)
    )
    alerts = []
    for i in range(n):
        aid = alert_id_of(watch.watch_id, f"dog{i}", f"found{i}")
        alert = Alert(aid, watch.watch_id, f"dog{i}", "a", f"found{i}", "b", 0.9, True)
        assert store.add_alert(alert)
        alerts.append(alert)
    return store, watch, alerts


def wait_until(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_receiver_down_then_back_gets_every_alert_once(tmp_path: Path) -> None:
    settings = job_settings(
        tmp_path / "store", job_modules=["watches.job"], webhook_allow=["127.0.0.1"],
        webhook_backoff_s=0.3, webhook_timeout_s=2.0, webhook_max_attempts=6,
    )  # fmt: skip
    with Receiver(down_for=4, fail_for=2) as r:
        store, watch, alerts = alerts_for(settings, r.url, 3)
        r.secret = watch.secret
        queue = JobQueue(settings)
        for alert in alerts:
            queue_delivery(queue, alert, watch.owner)
            queue_delivery(queue, alert, watch.owner)  # a repeated match queues it again
        proc = consumer(settings, tmp_path / "consumer.log")
        try:
            wait_until(lambda: len(r.accepted) == 3, 60, "3 alerts delivered")
            time.sleep(1.0)  # nothing more may arrive
        finally:
            stop(proc)
        assert sorted(r.accepted) == sorted(a.alert_id for a in alerts)
        assert r.bad_signatures == 0
        assert len(r.posts) == 4 + 2 + 3  # failed ones, then exactly one each
    logs = [store.get_alert(watch.watch_id, a.alert_id).delivery for a in alerts]
    assert all(d.status == "delivered" for d in logs)
    assert sum(d.attempts for d in logs) == 9
    assert any(d.attempts > 1 and d.last_error == "" for d in logs)


def test_worker_killed_mid_post_the_alert_is_not_lost(tmp_path: Path) -> None:
    settings = job_settings(
        tmp_path / "store", job_modules=["watches.job"], webhook_allow=["127.0.0.1"],
        webhook_backoff_s=0.3, webhook_timeout_s=30.0, job_timeout_s=2.0, job_max_attempts=3,
    )  # fmt: skip
    with Receiver(hang=True) as r:
        store, watch, alerts = alerts_for(settings, r.url, 1)
        r.secret = watch.secret
        queue_delivery(JobQueue(settings), alerts[0], watch.owner)
        first = consumer(settings, tmp_path / "first.log")
        try:
            wait_until(lambda: len(r.posts) == 1, 60, "the first POST")
            first.kill()  # SIGKILL mid-POST: no answer recorded
            first.wait(timeout=10)
            r.release.set()  # the receiver got it, but the service cannot know
            second = consumer(settings, tmp_path / "second.log")
            try:
                wait_until(
                    lambda: (
                        store.get_alert(watch.watch_id, alerts[0].alert_id).delivery.status
                        == "delivered"
                    ),
                    60,
                    "the re-run attempt",
                )
            finally:
                stop(second)
        finally:
            stop(first)
        assert list(r.accepted) == [alerts[0].alert_id]  # the receiver dedupes by alert id
        assert len(r.posts) == 2  # the killed attempt's POST, sent again once
    assert store.get_alert(watch.watch_id, alerts[0].alert_id).delivery.attempts == 1
