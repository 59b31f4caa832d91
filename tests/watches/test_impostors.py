"""A watch's alert resolved "not the same" is an impostor pair for the watched catalog's
calibration (`sightings.impostors`): kept when marked, removed when the resolution changes,
left out for a deleted item or another embedder's similarity; the refit job's records."""

from __future__ import annotations

import json
from pathlib import Path

from catalog.local_store import LocalStore
from catalog.repository import CatalogRepository
from core.settings import Settings
from jobs.queue import JobQueue
from sightings.impostors import impostor_key, impostor_records
from tests.sightings.helpers import catalog
from watches.model import Alert, Watch, alert_id_of
from watches.service import Watches


def test_not_same_alerts_become_impostor_records(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    repo = CatalogRepository(store)
    lost = catalog(repo, items=("rex", "max"), owner="t_a")
    found = catalog(repo, items=("found-7",), owner="t_a")
    settings = Settings(data_dir=tmp_path / "store", storage="local", queue_url="")
    watches = Watches(store, JobQueue(settings, store))
    w = watches.store.create(
        Watch(watch_id="", owner="t_a", watched_catalog=lost, source_catalog=found,
              min_score=0.5, webhook_url="", secret="s", created_at=1.0)
    )  # fmt: skip
    alerts = []
    for item in ("rex", "max"):
        aid = alert_id_of(w.watch_id, item, "found-7")
        alert = Alert(aid, w.watch_id, item, f"img-{item}", "found-7", "img-f", 0.7, False,
                      similarity=0.81, inliers=12, created_at=2.0)  # fmt: skip
        assert watches.store.add_alert(alert)
        alerts.append(aid)

    manifest = lambda: repo.get_manifest(lost)  # noqa: E731
    assert impostor_records(store, manifest()).records == []
    watches.resolve(w.watch_id, alerts[0], "t_a", "not_same")
    watches.resolve(w.watch_id, alerts[1], "t_a", "reunited")
    got = impostor_records(store, manifest())
    (record,) = got.records
    assert record.true is None and record.source == "impostor"
    (cand,) = record.crops[0]
    assert cand.item_id == "rex" and cand.similarity == 0.81 and cand.inliers == 12
    assert cand.score == 0.7 and cand.checked is True
    # stored in the JSON these records always had
    stored = json.loads(store.get(impostor_key(lost, alerts[0])))
    assert stored == {
        "path": f"impostor:{alerts[0]}",
        "true": None,
        "source": "impostor",
        "embedder": manifest().embedder_fingerprint,
        "excluded": f"impostor:{alerts[0]}",
        "crops": [
            [
                {"item_id": "rex", "similarity": 0.81, "inliers": 12, "spread": 0.0,
                 "checked": True, "score": 0.7, "verified": False}
            ]
        ],
    }  # fmt: skip
    assert record.to_dict() == stored
    first_digest = got.digest
    assert first_digest
    # the other one also marked not the same: two records, another digest (a refit is due)
    watches.resolve(w.watch_id, alerts[1], "t_a", "not_same")
    both = impostor_records(store, manifest())
    assert len(both.records) == 2 and both.digest != first_digest
    # changed back to reunited: its record goes
    watches.resolve(w.watch_id, alerts[1], "t_a", "reunited")
    assert impostor_records(store, manifest()).digest == first_digest
    # the source catalog gets none (the pair's candidate is the watched item)
    assert impostor_records(store, repo.get_manifest(found)).records == []
    # the item deleted: its pair names nothing any more
    repo.remove_item(lost, "rex")
    assert impostor_records(store, manifest()).records == []
