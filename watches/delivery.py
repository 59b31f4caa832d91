"""One webhook delivery attempt of one alert, and the retry schedule.

The delivery log lives in the alert (`watches.model.Delivery`). Attempt ``n`` of an alert is
one ``watch.deliver`` job (params ``watch_id``, ``alert_id``, ``attempt``):

1. it takes the attempt by compare-and-swap: ``attempts`` n-1 -> n, status ``sending``
   and the job's id (a duplicate job of the same attempt loses the swap and does nothing; the
   same job re-run after its worker was killed finds its own ``sending`` attempt n and sends
   again);
2. it POSTs the alert, signed;
3. it records ``delivered``, or ``retrying`` with ``next_at`` and queues attempt n+1 after
   ``backoff * 2**(n-1)`` seconds (capped at an hour), or ``failed`` after ``max_attempts``.

So the service never POSTs an alert again once a 2xx answer was recorded, and never POSTs
the same attempt from two workers; the one repeat possible is a POST whose 2xx answer came
back to a worker killed before it recorded it: the receiver drops it by its alert id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from core.errors import BadInput, NotFound
from watches.model import Alert, Delivery, Watch, now, with_changes
from watches.store import WatchStore
from watches.webhook import (
    ALERT_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    body_bytes,
    check_url,
    sign,
)
from watches.webhook import post as http_post

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 3600.0


@dataclass(frozen=True)
class DeliveryPolicy:
    """Timeout, attempts and back-off of webhook POSTs (from the settings)."""

    allow: tuple[str, ...]
    timeout_s: float
    max_attempts: int
    backoff_s: float

    @classmethod
    def from_settings(cls, settings: Any) -> DeliveryPolicy:
        """``SIGHTING_WEBHOOK_*``."""
        return cls(
            allow=tuple(settings.webhook_allow),
            timeout_s=settings.webhook_timeout_s,
            max_attempts=settings.webhook_max_attempts,
            backoff_s=settings.webhook_backoff_s,
        )

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based)."""
        return min(MAX_BACKOFF_S, self.backoff_s * 2 ** (attempt - 1))


def payload(watch: Watch, alert: Alert) -> dict[str, Any]:
    """The webhook's JSON: the event, the alert (both items, best image pair, score...)."""
    return {"event": "watch.alert", "alert": alert.to_public(watch) | {"delivery": None}}


def _take(store: WatchStore, watch_id: str, alert_id: str, attempt: int, job: str) -> Alert | None:
    def change(alert: Alert) -> Alert | None:
        d = alert.delivery
        fresh = d.attempts == attempt - 1 and d.status in ("pending", "retrying")
        rerun = d.attempts == attempt and d.status == "sending" and d.job == job and job != ""
        if not (fresh or rerun):
            return None
        changes = dict(status="sending", attempts=attempt, next_at=0.0, job=job)
        return with_changes(alert, delivery=with_changes(d, **changes))

    return store.update_alert(watch_id, alert_id, change)


def _finish(store: WatchStore, alert: Alert, attempt: int, **changes: Any) -> Alert | None:
    def change(current: Alert) -> Alert | None:
        d = current.delivery
        if d.status != "sending" or d.attempts != attempt:
            return None  # someone else moved it on
        return with_changes(current, delivery=with_changes(d, **changes))

    return store.update_alert(alert.watch_id, alert.alert_id, change)


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt did: ``status`` of the log after it, and the delay of the next
    attempt to queue (None: no retry)."""

    status: str
    retry_in_s: float | None
    http_status: int = 0


def deliver_once(
    store: WatchStore,
    watch_id: str,
    alert_id: str,
    attempt: int,
    policy: DeliveryPolicy,
    job: str = "",
) -> AttemptResult:
    """Run attempt ``attempt`` of an alert's delivery (see the module's steps); ``job`` is
    the id of the job running it ("" outside a job: never re-taken).

    The caller queues attempt ``attempt + 1`` after ``retry_in_s`` when it is not None.
    """
    try:
        watch = store.get(watch_id)
        alert = _take(store, watch_id, alert_id, attempt, job)
        if alert is None:
            current = store.get_alert(watch_id, alert_id).delivery
    except NotFound:
        return AttemptResult("gone", None)  # the watch was deleted
    if alert is None:
        mine = job != "" and current.job == job
        if mine and current.status == "retrying" and current.attempts == attempt:
            # this job recorded its failed attempt, then its worker died before queueing the
            # next one: the queue runs it again, and it queues the next attempt now
            wait = max(0.0, current.next_at - now())
            return AttemptResult("retrying", wait, current.last_status)
        return AttemptResult("skipped", None)  # taken, delivered or given up elsewhere
    body = body_bytes(payload(watch, alert))
    headers = {
        SIGNATURE_HEADER: sign(watch.secret, body),
        ALERT_HEADER: alert.alert_id,
        EVENT_HEADER: "watch.alert",
        "User-Agent": "Sighting-Webhook/1",
    }
    try:
        check_url(watch.webhook_url, policy.allow)
    except BadInput as exc:  # refused now (resolves elsewhere, or the allow list changed)
        _finish(store, alert, attempt, status="failed", last_error=exc.message, last_status=0)
        return AttemptResult("failed", None)
    result = http_post(watch.webhook_url, body, headers, policy.timeout_s)
    if result.ok:
        _finish(
            store, alert, attempt, status="delivered", last_status=result.status,
            last_error="", delivered_at=now(),
        )  # fmt: skip
        return AttemptResult("delivered", None, result.status)
    if attempt >= policy.max_attempts:
        _finish(
            store, alert, attempt, status="failed", last_status=result.status,
            last_error=f"{result.error} (gave up after {attempt} attempts)",
        )  # fmt: skip
        return AttemptResult("failed", None, result.status)
    delay = policy.delay_after(attempt)
    _finish(
        store, alert, attempt, status="retrying", last_status=result.status,
        last_error=result.error, next_at=now() + delay,
    )  # fmt: skip
    log.info(
        "alert %s: attempt %d failed (%s); retry in %.1f s", alert_id, attempt, result.error, delay
    )
    return AttemptResult("retrying", delay, result.status)


def needs_first_attempt(alert: Alert) -> bool:
    """Whether an alert's delivery was never started (its first job may be missing)."""
    return alert.delivery == Delivery() or (
        alert.delivery.status == "pending" and alert.delivery.attempts == 0
    )
