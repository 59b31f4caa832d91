"""Watches and alerts as stored: filters, JSON round trips, one alert per pair, CAS merges."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from catalog.local_store import LocalStore
from core.errors import BadInput, NotFound
from watches.model import Alert, Filters, Watch, alert_id_of
from watches.store import WatchStore


def _watch(**changes) -> Watch:
    values = dict(
        watch_id="", owner="t_a", watched_catalog="lost1", source_catalog="found1",
        min_score=0.5, webhook_url="", secret="s", created_at=1.0,
    )  # fmt: skip
    return Watch(**(values | changes))


@pytest.fixture()
def store(tmp_path: Path) -> WatchStore:
    return WatchStore(LocalStore(tmp_path / "store"))


def test_filters_radius_metadata_and_dates() -> None:
    f = Filters.from_dict(
        {
            "metadata": {"species": "dog"},
            "near": {"lat": 48.8566, "lon": 2.3522, "radius_km": 10},  # Paris
            "date_from": "2026-12-01",
            "date_to": "2026-12-31",
        }
    )
    inside = {"species": "dog", "lat": 48.80, "lon": 2.30, "date": "2026-12-05"}
    assert f.passes(inside, "2026-12-07T00:00:00Z")
    assert not f.passes(inside | {"species": "cat"}, "")
    assert not f.passes(inside | {"lat": 45.76, "lon": 4.84}, "")  # Lyon, ~390 km away
    assert not f.passes({k: v for k, v in inside.items() if k != "lat"}, "")  # no coordinates
    assert not f.passes(inside | {"date": "2026-11-30"}, "")
    # no date metadata: the day the item's first image was added
    no_date = {k: v for k, v in inside.items() if k != "date"}
    assert f.passes(no_date, "2026-12-07T10:00:00Z")
    assert not f.passes(no_date, "2027-01-02T10:00:00Z")
    assert Filters.from_dict(f.to_dict()) == f


@pytest.mark.parametrize(
    "raw",
    [
        "x",
        {"colour": "red"},
        {"near": {"lat": 91, "lon": 0, "radius_km": 1}},
        {"near": {"lat": 1, "lon": 0}},
        {"near": {"lat": "a", "lon": 0, "radius_km": 1}},
        {"date_from": "yesterday"},
        {"date_from": "2026-12-02", "date_to": "2026-12-01"},
        {"metadata": [1]},
    ],
)
def test_bad_filters_are_clear_errors(raw) -> None:
    with pytest.raises(BadInput):
        Filters.from_dict(raw)


def test_watch_crud_and_index(store: WatchStore) -> None:
    w = store.create(_watch())
    assert len(w.watch_id) == 12
    assert store.get(w.watch_id) == w
    assert [x.watch_id for x in store.watching("found1")] == [w.watch_id]
    assert [x.watch_id for x in store.watching("lost1")] == [w.watch_id]
    assert store.watching("other") == []
    other = store.create(_watch(owner="t_b", source_catalog="lost1"))
    assert [x.watch_id for x in store.list("t_a")] == [w.watch_id]
    assert {x.watch_id for x in store.watching("lost1")} == {w.watch_id, other.watch_id}
    store.delete(w.watch_id)
    with pytest.raises(NotFound):
        store.get(w.watch_id)
    assert store.watching("found1") == []
    with pytest.raises(NotFound):
        store.get("../etc")


def test_one_alert_per_pair(store: WatchStore) -> None:
    w = store.create(_watch())
    aid = alert_id_of(w.watch_id, "rex", "found-7")
    assert aid == alert_id_of(w.watch_id, "rex", "found-7") != alert_id_of(w.watch_id, "rex", "x")

    def alert(score: float, image: str) -> Alert:
        return Alert(aid, w.watch_id, "rex", "a", "found-7", image, score, True, created_at=2.0)

    results = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(store.add_alert(alert(0.9, f"i{i}"))))
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]  # exactly one writer created it
    assert [a.alert_id for a in store.alerts(w.watch_id)] == [aid]
    assert Alert.from_json(alert(0.9, "i1").to_json()) == alert(0.9, "i1")


def test_seen_merges_concurrent_writers(store: WatchStore) -> None:
    w = store.create(_watch())
    threads = [
        threading.Thread(target=store.mark_seen, args=(w.watch_id, "found1", {f"img{i}"}))
        for i in range(10)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.seen(w.watch_id, "found1") == {f"img{i}" for i in range(10)}
