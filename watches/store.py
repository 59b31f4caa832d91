"""Watches and alerts in the catalog store, changed by compare-and-swap only.

Keys: ``watches/<watch_id>/watch.json``, ``watches/<watch_id>/alerts/<alert_id>.json``,
``watches/<watch_id>/seen/<catalog_id>.json`` (image ids of that catalog already matched for
the watch) and ``watch-index/<catalog_id>/<watch_id>`` (an empty marker: the watches an upload
to the catalog concerns, found without reading every watch).

An alert is created with ``put_if(expected_etag=None)``: the first writer of a pair wins and
every later match of the same pair finds it there (one alert per pair). The delivery log is
changed by compare-and-swap, so two workers never both take the same POST attempt.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

from catalog.repository import new_id
from catalog.store import Store
from core.errors import Conflict, NotFound
from watches.model import Alert, Watch

ROOT = "watches/"
INDEX = "watch-index/"
_ID = re.compile(r"[a-z0-9]{1,64}")
_CAS_TRIES = 20


def _check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise NotFound(f"no {what} {value!r}")
    return value


def watch_key(watch_id: str) -> str:
    """``watches/<watch_id>/watch.json``."""
    return f"{ROOT}{_check_id(watch_id, 'watch')}/watch.json"


def alert_key(watch_id: str, alert_id: str) -> str:
    """``watches/<watch_id>/alerts/<alert_id>.json``."""
    return f"{ROOT}{_check_id(watch_id, 'watch')}/alerts/{_check_id(alert_id, 'alert')}.json"


def seen_key(watch_id: str, catalog_id: str) -> str:
    """``watches/<watch_id>/seen/<catalog_id>.json``."""
    return f"{ROOT}{_check_id(watch_id, 'watch')}/seen/{_check_id(catalog_id, 'catalog')}.json"


class WatchStore:
    """Read and change watches and alerts in a `Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- watches ------------------------------------------------------------------------
    def create(self, watch: Watch) -> Watch:
        """Store a new watch (a fresh id is drawn when ``watch.watch_id`` is empty) and index
        it under both of its catalogs."""
        for _ in range(8):
            wid = watch.watch_id or new_id()
            new = Watch(**{**watch.__dict__, "watch_id": wid})
            try:
                self.store.put_if(watch_key(wid), new.to_json(), expected_etag=None)
            except Conflict:
                if watch.watch_id:
                    raise
                continue
            for catalog_id in {new.watched_catalog, new.source_catalog}:
                self.store.put(f"{INDEX}{catalog_id}/{wid}", b"")
            return new
        raise Conflict("could not draw an unused watch id")

    def get(self, watch_id: str) -> Watch:
        """The watch.

        Raises:
            NotFound: no such watch.
        """
        try:
            return Watch.from_json(self.store.get(watch_key(watch_id)))
        except NotFound:
            raise NotFound(f"no watch {watch_id!r}") from None

    def put(self, watch: Watch) -> None:
        """Replace a watch's record (its scan job id, once submitted)."""
        self.store.put(watch_key(watch.watch_id), watch.to_json())

    def delete(self, watch_id: str) -> None:
        """Delete a watch, its index markers, alerts and progress (the record first)."""
        watch = self.get(watch_id)
        self.store.delete(watch_key(watch_id))
        for catalog_id in {watch.watched_catalog, watch.source_catalog}:
            self.store.delete(f"{INDEX}{catalog_id}/{watch_id}")
        self.store.delete_prefix(f"{ROOT}{watch_id}/")

    def list(self, owner: str | None = None) -> list[Watch]:
        """Every watch (of ``owner`` when given), oldest first."""
        found = []
        for wid in self.store.list_children(ROOT):
            try:
                watch = self.get(wid)
            except NotFound:
                continue
            if owner is None or watch.owner == owner:
                found.append(watch)
        return sorted(found, key=lambda w: (w.created_at, w.watch_id))

    def watching(self, catalog_id: str) -> list[Watch]:
        """The watches whose watched or source catalog is ``catalog_id``."""
        found = []
        for wid in self.store.list_children(f"{INDEX}{catalog_id}/"):
            try:
                found.append(self.get(wid))
            except NotFound:  # deleted meanwhile
                continue
        return found

    # --- what was matched already ---------------------------------------------------------
    def seen(self, watch_id: str, catalog_id: str) -> set[str]:
        """Image ids of ``catalog_id`` already matched for the watch."""
        try:
            return set(json.loads(self.store.get(seen_key(watch_id, catalog_id))))
        except NotFound:
            return set()

    def mark_seen(self, watch_id: str, catalog_id: str, image_ids: set[str]) -> None:
        """Add ``image_ids`` to the matched ones (compare-and-swap: concurrent jobs merge)."""
        key = seen_key(watch_id, catalog_id)
        for attempt in range(_CAS_TRIES):
            try:
                data, etag = self.store.get_with_etag(key)
                old: set[str] | None = set(json.loads(data))
            except NotFound:
                old, etag = None, None
            new = sorted((old or set()) | image_ids)
            try:
                self.store.put_if(key, json.dumps(new).encode(), expected_etag=etag)
                return
            except Conflict:
                time.sleep(0.01 * (attempt + 1))
        raise Conflict(f"watch {watch_id!r}: matched-images list kept changing; gave up")

    # --- alerts ---------------------------------------------------------------------------
    def add_alert(self, alert: Alert) -> bool:
        """Create the pair's alert unless it exists; True when this call created it."""
        try:
            self.store.put_if(
                alert_key(alert.watch_id, alert.alert_id), alert.to_json(), expected_etag=None
            )
        except Conflict:
            return False
        return True

    def get_alert(self, watch_id: str, alert_id: str) -> Alert:
        """One alert.

        Raises:
            NotFound: no such alert.
        """
        try:
            return Alert.from_json(self.store.get(alert_key(watch_id, alert_id)))
        except NotFound:
            raise NotFound(f"no alert {alert_id!r} in watch {watch_id!r}") from None

    def alerts(self, watch_id: str) -> list[Alert]:
        """The watch's alerts, oldest first."""
        prefix = f"{ROOT}{_check_id(watch_id, 'watch')}/alerts/"
        found = []
        for key in self.store.list(prefix):
            try:
                found.append(Alert.from_json(self.store.get(key)))
            except NotFound:
                continue
        return sorted(found, key=lambda a: (a.created_at, a.alert_id))

    def update_alert(
        self, watch_id: str, alert_id: str, change: Callable[[Alert], Alert | None]
    ) -> Alert | None:
        """Apply ``change`` to the fresh alert and write it if nobody wrote in between.

        Returns:
            The alert written, or None when ``change`` declined.

        Raises:
            NotFound: no such alert.
            Conflict: lost the race ``_CAS_TRIES`` times in a row.
        """
        key = alert_key(watch_id, alert_id)
        for attempt in range(_CAS_TRIES):
            try:
                data, etag = self.store.get_with_etag(key)
            except NotFound:
                raise NotFound(f"no alert {alert_id!r} in watch {watch_id!r}") from None
            new = change(Alert.from_json(data))
            if new is None:
                return None
            try:
                self.store.put_if(key, new.to_json(), expected_etag=etag)
                return new
            except Conflict:
                time.sleep(0.01 * (attempt + 1))
        raise Conflict(f"alert {alert_id!r} kept changing; gave up")
