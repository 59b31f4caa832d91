"""Webhook delivery to a real HTTP receiver on 127.0.0.1: signature, retries with back-off,
a receiver that is down, failing or hanging, and the addresses that are refused."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from catalog.local_store import LocalStore
from core.errors import BadInput
from watches.delivery import DeliveryPolicy, deliver_once
from watches.model import Alert, Watch, alert_id_of
from watches.receiver import Receiver
from watches.store import WatchStore
from watches.webhook import body_bytes, check_url, sign, verify_signature

LOOPBACK = ("127.0.0.1",)


def policy(**changes) -> DeliveryPolicy:
    values = dict(allow=LOOPBACK, timeout_s=1.0, max_attempts=4, backoff_s=0.5)
    return DeliveryPolicy(**(values | changes))


def setup(tmp_path: Path, url: str) -> tuple[WatchStore, Watch, Alert]:
    store = WatchStore(LocalStore(tmp_path / "store"))
    watch = store.create(
        Watch("", "t_a", "lost1", "found1", 0.5, webhook_url=url, secret="k" * 43, created_at=1.0)
    )
    aid = alert_id_of(watch.watch_id, "rex", "f7")
    alert = Alert(aid, watch.watch_id, "rex", "r1", "f7", "i9", 0.93, True, 0.8, 41, 2.0)
    assert store.add_alert(alert)
    return store, watch, alert


def run_chain(store: WatchStore, watch: Watch, alert: Alert, p: DeliveryPolicy) -> list:
    """What the job chain does: attempt 1, 2, ... while the result asks for a retry."""
    results, attempt = [], 1
    while True:
        result = deliver_once(store, watch.watch_id, alert.alert_id, attempt, p)
        results.append(result)
        if result.retry_in_s is None:
            return results
        attempt += 1


def test_signed_post_verified_by_the_receiver(tmp_path: Path) -> None:
    with Receiver() as r:
        store, watch, alert = setup(tmp_path, r.url)
        r.secret = watch.secret
        results = run_chain(store, watch, alert, policy())
        assert [x.status for x in results] == ["delivered"]
        got = r.accepted[alert.alert_id]
        assert got["watched"]["item_id"] == "rex" and got["source"]["item_id"] == "f7"
        assert got["source"]["image_id"] == "i9" and got["score"] == 0.93 and got["verified"]
        assert r.bad_signatures == 0
    log = store.get_alert(watch.watch_id, alert.alert_id).delivery
    assert (log.status, log.attempts, log.last_status, log.last_error) == ("delivered", 1, 200, "")


def test_a_wrong_secret_is_rejected_by_the_receiver(tmp_path: Path) -> None:
    with Receiver(secret="not-the-watch-secret") as r:
        store, watch, alert = setup(tmp_path, r.url)
        results = run_chain(store, watch, alert, policy(max_attempts=2, backoff_s=0.01))
        assert r.bad_signatures == 2 and not r.accepted
    assert results[-1].status == "failed"
    log = store.get_alert(watch.watch_id, alert.alert_id).delivery
    assert log.status == "failed" and "HTTP 401" in log.last_error and log.attempts == 2


def test_signature_helpers() -> None:
    body = body_bytes({"b": 1, "a": [1, 2]})
    assert body == b'{"a":[1,2],"b":1}'
    assert verify_signature("s", body, sign("s", body))
    assert not verify_signature("s", body + b" ", sign("s", body))
    assert not verify_signature("s", body, None)


@pytest.mark.parametrize(("down", "fail"), [(2, 0), (0, 3), (1, 1)])
def test_down_or_failing_receiver_gets_it_once_when_it_comes_back(
    tmp_path: Path, down: int, fail: int
) -> None:
    with Receiver(down_for=down, fail_for=fail) as r:
        store, watch, alert = setup(tmp_path, r.url)
        r.secret = watch.secret
        results = run_chain(store, watch, alert, policy(max_attempts=5))
        assert len(r.posts) == down + fail + 1  # exactly one POST after it came back
        assert list(r.accepted) == [alert.alert_id]
    # exponential back-off between attempts: 0.5, 1, 2 ... seconds
    assert [x.retry_in_s for x in results[:-1]] == [0.5 * 2**i for i in range(down + fail)]
    log = store.get_alert(watch.watch_id, alert.alert_id).delivery
    assert (log.status, log.attempts) == ("delivered", down + fail + 1)
    # the service never POSTs a delivered alert again
    again = deliver_once(store, watch.watch_id, alert.alert_id, log.attempts + 1, policy())
    assert again.status == "skipped"


def test_gives_up_after_max_attempts_with_the_last_error(tmp_path: Path) -> None:
    with Receiver(fail_for=10) as r:
        store, watch, alert = setup(tmp_path, r.url)
        results = run_chain(store, watch, alert, policy(max_attempts=3, backoff_s=0.01))
        assert len(r.posts) == 3
    assert [x.status for x in results] == ["retrying", "retrying", "failed"]
    log = store.get_alert(watch.watch_id, alert.alert_id).delivery
    assert (
        log.status == "failed" and "HTTP 500" in log.last_error and "3 attempts" in log.last_error
    )


def test_hanging_receiver_times_out(tmp_path: Path) -> None:
    with Receiver(hang=True) as r:
        store, watch, alert = setup(tmp_path, r.url)
        start = time.monotonic()
        result = deliver_once(store, watch.watch_id, alert.alert_id, 1, policy(timeout_s=0.5))
        assert time.monotonic() - start < 5
    assert result.status == "retrying"
    log = store.get_alert(watch.watch_id, alert.alert_id).delivery
    assert "Timeout" in log.last_error and log.next_at > 0


def test_duplicate_attempt_jobs_post_once(tmp_path: Path) -> None:
    with Receiver() as r:
        store, watch, alert = setup(tmp_path, r.url)
        r.secret = watch.secret
        first = deliver_once(store, watch.watch_id, alert.alert_id, 1, policy())
        second = deliver_once(store, watch.watch_id, alert.alert_id, 1, policy())
        assert (first.status, second.status) == ("delivered", "skipped")
        assert len(r.posts) == 1


def test_redirects_are_not_followed(tmp_path: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    hits = []

    class Redirect(BaseHTTPRequestHandler):
        def log_message(self, *a) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            hits.append(self.path)
            self.send_response(307)
            self.send_header("Location", "/elsewhere")
            self.end_headers()

    server = HTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        store, watch, alert = setup(tmp_path, url)
        result = deliver_once(store, watch.watch_id, alert.alert_id, 1, policy())
    finally:
        server.shutdown()
        server.server_close()
    assert hits == ["/hook"] and result.status == "retrying"
    assert "redirect" in store.get_alert(watch.watch_id, alert.alert_id).delivery.last_error


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/x",
        "file:///etc/passwd",
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://0.0.0.0/hook",
        "http://[::ffff:127.0.0.1]/x",
        "http://user:pw@127.0.0.1/hook",
        "http:///nohost",
        "not a url",
    ],
)
def test_refused_addresses(url: str) -> None:
    with pytest.raises(BadInput):
        check_url(url, allow=())


def test_allow_list_opens_hosts_and_networks() -> None:
    assert check_url("http://127.0.0.1:9/hook", allow=["127.0.0.1"])
    assert check_url("http://10.1.2.3/hook", allow=["10.0.0.0/8"])
    assert check_url("http://localhost/hook", allow=["localhost"])
    with pytest.raises(BadInput):
        check_url("http://10.1.2.3/hook", allow=["127.0.0.1", "192.168.0.0/16"])


def test_a_url_refused_at_delivery_time_fails_without_posting(tmp_path: Path) -> None:
    with Receiver() as r:
        store, watch, alert = setup(tmp_path, r.url)
        result = deliver_once(store, watch.watch_id, alert.alert_id, 1, policy(allow=()))
        assert r.posts == []
    assert result.status == "failed"
    assert (
        "SIGHTING_WEBHOOK_ALLOW"
        in store.get_alert(watch.watch_id, alert.alert_id).delivery.last_error
    )


def test_a_rerun_attempt_job_queues_the_next_attempt_without_posting(tmp_path: Path) -> None:
    """A worker killed after recording a failed attempt, before queueing the next one: the
    job queue runs that job again; it POSTs nothing and asks for the next attempt, so the
    alert is not left ``retrying`` with no job."""
    with Receiver(fail_for=1) as r:
        store, watch, alert = setup(tmp_path, r.url)
        r.secret = watch.secret
        first = deliver_once(store, watch.watch_id, alert.alert_id, 1, policy(), job="j1")
        assert first.status == "retrying" and len(r.posts) == 1
        rerun = deliver_once(store, watch.watch_id, alert.alert_id, 1, policy(), job="j1")
        assert rerun.status == "retrying" and rerun.retry_in_s is not None
        assert rerun.retry_in_s <= first.retry_in_s and len(r.posts) == 1
        # another job of the same attempt (a duplicate) still asks for nothing
        other = deliver_once(store, watch.watch_id, alert.alert_id, 1, policy(), job="j9")
        assert other.status == "skipped" and other.retry_in_s is None
        second = deliver_once(store, watch.watch_id, alert.alert_id, 2, policy(), job="j2")
        assert second.status == "delivered" and list(r.accepted) == [alert.alert_id]
