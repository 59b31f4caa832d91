"""Sightings in the store: kept, listed, reviewed (every verdict, changed, concurrent),
retention, tenancy and bad input; on both store backends."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from catalog.repository import CatalogRepository
from catalog.store import Store
from core.errors import BadInput, Conflict, NotFound
from sightings.keep import TrackKeeper, keep_frame, keep_ranked
from sightings.model import Sighting, SightingFilter, SightingSource
from sightings.pairs import reviewed_pairs
from sightings.repository import SightingRepository, new_sighting_id
from sightings.review import ReviewRequest, review_sighting
from tests.sightings.helpers import FP, FRAME, catalog, context, frame_result, match


@pytest.fixture()
def repos(store: Store) -> tuple[CatalogRepository, SightingRepository]:
    return CatalogRepository(store, backoff_s=0.002), SightingRepository(store, backoff_s=0.002)


def _describe(pixels: np.ndarray) -> dict[str, bytes]:
    # the feature blobs are opaque to the store; the API test describes with the real models
    return {"emb.npz": pixels.tobytes()[:64]}


def _keep_one(repos, cid: str, rows=None, **kw) -> Sighting:
    _, sightings = repos
    rows = rows or [[match("a", 0.7), match("b", 0.2)]]
    kept = keep_frame(sightings, frame_result(rows), FRAME, context(cid, **kw))
    return sightings.get(cid, kept.sighting_ids[0])


def test_a_kept_frame_stores_each_matched_object_with_its_evidence(repos) -> None:
    catalogs, sightings = repos
    cid = catalog(catalogs)
    result = frame_result([[match("a", 0.95), match("b", 0.3)], []])  # 2nd: no candidate
    kept = keep_frame(sightings, result, FRAME, context(cid))
    assert len(kept.sighting_ids) == 1 and kept.dropped == []
    s = sightings.get(cid, kept.sighting_ids[0])
    assert s.state == "unreviewed" and s.item_id is None and s.catalog_version == 4
    assert [c.item_id for c in s.candidates] == ["a", "b"]
    assert s.candidates[0].score == pytest.approx(0.95) and s.candidates[0].inliers == 10
    assert s.box == (0.0, 0.0, 16.0, 20.0) and s.crop_size == (16, 20)
    assert s.source.file_name == "shelf.jpg" and s.class_name == "bottle"
    assert sightings.image(s, "crop")[:2] == b"\xff\xd8"
    assert sightings.image(s, "photo")[:2] == b"\xff\xd8"
    assert Sighting.from_json(s.to_json()) == s
    # a search keeps its one ranked list for the whole photo
    ranked = keep_ranked(sightings, [match("c", 0.5)], FRAME, context(cid))
    assert sightings.get(cid, ranked.sighting_ids[0]).box == (0.0, 0.0, 64.0, 48.0)


def test_every_verdict_and_a_changed_one_keep_the_history(repos) -> None:
    catalogs, sightings = repos
    cid = catalog(catalogs)
    s = _keep_one(repos, cid)
    out = review_sighting(sightings, catalogs, cid, s.sighting_id, ReviewRequest("same", "b"), "t1")
    assert out.sighting.state == "confirmed" and out.sighting.item_id == "b"
    assert not out.catalog_changed and out.created_item is None
    out = review_sighting(sightings, catalogs, cid, s.sighting_id, ReviewRequest("none"), "t1")
    assert out.sighting.state == "none" and out.sighting.item_id is None
    stored = sightings.get(cid, s.sighting_id)
    assert [r.verdict for r in stored.reviews] == ["same", "none"]
    assert all(r.tenant == "t1" and r.at for r in stored.reviews)

    request = ReviewRequest("new_item", "d", metadata={"name": "new dog"})
    out = review_sighting(
        sightings, catalogs, cid, s.sighting_id, request, "t1", describe=_describe, fingerprints=FP
    )
    assert out.created_item == "d" and out.catalog_changed
    item = catalogs.get_manifest(cid).items["d"]
    assert item.metadata == {"from_sighting": s.sighting_id, "name": "new dog"}
    assert len(item.images) == 1 and out.sighting.state == "new_item"

    # same + add_reference: the crop becomes a reference image; changing the verdict removes it
    t = _keep_one(repos, cid)
    request = ReviewRequest("same", "c", add_reference=True)
    out = review_sighting(
        sightings, catalogs, cid, t.sighting_id, request, "t1", describe=_describe, fingerprints=FP
    )
    image_id = out.reference_image_id
    assert image_id in catalogs.get_manifest(cid).items["c"].images
    out = review_sighting(sightings, catalogs, cid, t.sighting_id, ReviewRequest("same", "a"), "t1")
    assert out.removed_image_id == image_id
    assert image_id not in catalogs.get_manifest(cid).items["c"].images


def test_bad_reviews_are_refused_and_change_nothing(repos) -> None:
    catalogs, sightings = repos
    cid = catalog(catalogs)
    s = _keep_one(repos, cid, version=2)
    sid = s.sighting_id
    with pytest.raises(BadInput):
        review_sighting(sightings, catalogs, cid, sid, ReviewRequest("maybe", "a"), "t1")
    with pytest.raises(BadInput):
        review_sighting(sightings, catalogs, cid, sid, ReviewRequest("same"), "t1")
    with pytest.raises(BadInput):
        review_sighting(sightings, catalogs, cid, sid, ReviewRequest("none", "a"), "t1")
    with pytest.raises(NotFound):  # an unknown item
        review_sighting(sightings, catalogs, cid, sid, ReviewRequest("same", "zzz"), "t1")
    catalogs.remove_item(cid, "b")  # deleted since the sighting (of an older version) was kept
    with pytest.raises(NotFound, match="deleted since"):
        review_sighting(sightings, catalogs, cid, sid, ReviewRequest("same", "b"), "t1")
    with pytest.raises(NotFound):  # another tenant's sighting
        review_sighting(sightings, catalogs, cid, sid, ReviewRequest("same", "a"), "t2")
    with pytest.raises(NotFound):
        sightings.get(cid, sid, tenant="t2")
    with pytest.raises(Conflict):  # a new item whose id exists
        review_sighting(
            sightings, catalogs, cid, sid, ReviewRequest("new_item", "a"), "t1", describe=_describe
        )
    with pytest.raises(NotFound):
        review_sighting(sightings, catalogs, cid, "nope", ReviewRequest("none"), "t1")
    assert sightings.get(cid, sid).reviews == ()
    # the older version's sighting is still reviewable against items that exist
    out = review_sighting(sightings, catalogs, cid, sid, ReviewRequest("same", "a"), "t1")
    assert out.sighting.catalog_version == 2 and out.catalog_version > 2
    # a deleted catalog's sightings are gone with it
    catalogs.delete_catalog(cid)
    with pytest.raises(NotFound):
        sightings.get(cid, sid)
    with pytest.raises(NotFound):
        review_sighting(sightings, catalogs, cid, sid, ReviewRequest("none"), "t1")
    assert sightings.ids(cid) == []


def test_two_reviews_at_once_both_land(repos) -> None:
    catalogs, sightings = repos
    cid = catalog(catalogs)
    sid = _keep_one(repos, cid).sighting_id
    barrier = threading.Barrier(4)
    errors = []

    def review(verdict: str, item: str | None) -> None:
        barrier.wait()
        try:
            review_sighting(sightings, catalogs, cid, sid, ReviewRequest(verdict, item), "t1")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=review, args=a)
        for a in (("same", "a"), ("none", None), ("same", "b"), ("same", "c"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stored = sightings.get(cid, sid)
    assert sorted(r.item_id or "-" for r in stored.reviews) == ["-", "a", "b", "c"]
    assert stored.state == ("none" if stored.reviews[-1].verdict == "none" else "confirmed")


def test_retention_drops_the_oldest_unreviewed_first_and_keeps_reviewed(repos) -> None:
    catalogs, sightings = repos
    cid = catalog(catalogs)
    first = _keep_one(repos, cid, retention=3).sighting_id
    review_sighting(sightings, catalogs, cid, first, ReviewRequest("same", "a"), "t1")
    ids = [_keep_one(repos, cid, retention=3).sighting_id for _ in range(2)]
    flood = keep_frame(
        sightings, frame_result([[match("a", 0.5)]] * 4), FRAME, context(cid, retention=3)
    )
    remaining = sightings.ids(cid)
    assert len(remaining) == 3 and first in remaining  # the reviewed one stays
    assert set(flood.dropped) == set(ids) | set(flood.sighting_ids[:2])
    assert remaining[1:] == flood.sighting_ids[2:]  # the newest unreviewed ones
    # nothing of the dropped ones is left behind (crops and photos included)
    keys = sightings.store.list(f"catalogs/{cid}/sightings/")
    assert not [k for k in keys if any(d in k for d in flood.dropped)]
    # reviewed ones are never dropped, even past the limit
    for sid in remaining:
        review_sighting(sightings, catalogs, cid, sid, ReviewRequest("none"), "t1")
    more = keep_frame(
        sightings, frame_result([[match("b", 0.5)]]), FRAME, context(cid, retention=3)
    )
    assert more.dropped == more.sighting_ids and set(sightings.ids(cid)) == set(remaining)


def test_listing_pages_and_filters(repos) -> None:
    catalogs, sightings = repos
    cid = catalog(catalogs)
    a = _keep_one(repos, cid, rows=[[match("a", 0.9)]])
    b = _keep_one(
        repos, cid, rows=[[match("b", 0.9)]], source=SightingSource("stream", stream_id="door")
    )
    c = _keep_one(repos, cid, rows=[[match("c", 0.9), match("a", 0.1)]])
    review_sighting(sightings, catalogs, cid, a.sighting_id, ReviewRequest("same", "a"), "t1")
    review_sighting(sightings, catalogs, cid, b.sighting_id, ReviewRequest("none"), "t1")
    page = sightings.list(cid, limit=2)
    assert [s.sighting_id for s in page.sightings] == [c.sighting_id, b.sighting_id]
    assert page.total == 3 and page.counts["unreviewed"] == 1
    assert [s.sighting_id for s in sightings.list(cid, offset=2).sightings] == [a.sighting_id]

    def ids(**where) -> list[str]:
        return [s.sighting_id for s in sightings.list(cid, SightingFilter(**where)).sightings]

    assert ids(state="unreviewed") == [c.sighting_id]
    assert ids(state="confirmed") == [a.sighting_id]
    assert ids(state="none") == [b.sighting_id]
    assert ids(item_id="a") == [c.sighting_id, a.sighting_id]  # a candidate, or the verdict
    assert ids(source="door") == [b.sighting_id] and ids(source="stream") == [b.sighting_id]
    assert ids(since=c.kept_at) == [c.sighting_id] and ids(until=b.kept_at) == [a.sighting_id]
    assert sightings.list(cid, tenant="t2").total == 0
    with pytest.raises(BadInput):
        sightings.list(cid, limit=0)


def test_one_sighting_per_track_holds_its_best_view(repos) -> None:
    catalogs, sightings = repos
    cid = catalog(catalogs)
    keeper = TrackKeeper()
    ctx = context(cid, source=SightingSource("stream", stream_id="cam1"))
    first = keeper.keep(sightings, frame_result([[match("a", 0.4)]], tracks=[7]), FRAME, ctx)
    sid = first.sighting_ids[0]
    keeper.keep(sightings, frame_result([[match("a", 0.3)]], tracks=[7]), FRAME, ctx)  # worse
    assert sightings.get(cid, sid).candidates[0].score == pytest.approx(0.4)
    old_crop = sightings.get(cid, sid).crop_key
    review_sighting(sightings, catalogs, cid, sid, ReviewRequest("same", "a"), "t1")
    keeper.keep(sightings, frame_result([[match("a", 0.8)]], tracks=[7]), FRAME, ctx)  # better
    s = sightings.get(cid, sid)
    assert s.candidates[0].score == pytest.approx(0.8) and s.state == "confirmed"
    assert s.source.track_id == 7 and s.crop_key != old_crop
    assert not sightings.store.exists(old_crop)
    two = keeper.keep(sightings, frame_result([[match("b", 0.5)]], tracks=[8]), FRAME, ctx)
    assert sightings.ids(cid) == sorted([sid, two.sighting_ids[0]])


def test_sightings_are_no_orphans_and_go_with_their_catalog(repos) -> None:
    catalogs, sightings = repos
    cid = catalog(catalogs)
    s = _keep_one(repos, cid)
    assert catalogs.gc_orphans(cid, grace_s=0.0) == []
    assert sightings.store.exists(s.crop_key)
    catalogs.delete_catalog(cid)
    assert sightings.store.list(f"catalogs/{cid}/") == []


def test_reviewed_sightings_become_pairs(repos) -> None:
    catalogs, sightings = repos
    cid = catalog(catalogs)
    rows = [[match("a", 0.7), match("b", 0.2), match("c", 0.1)]]
    s1, s2, s3, s4 = (_keep_one(repos, cid, rows=rows) for _ in range(4))
    review_sighting(sightings, catalogs, cid, s1.sighting_id, ReviewRequest("same", "a"), "t1")
    review_sighting(sightings, catalogs, cid, s2.sighting_id, ReviewRequest("same", "b"), "t1")
    review_sighting(sightings, catalogs, cid, s3.sighting_id, ReviewRequest("none"), "t1")
    pairs = reviewed_pairs(sightings, catalogs.get_manifest(cid))
    assert pairs.sightings == 3 and pairs.genuine == 2 and pairs.impostors == 2 + 2 + 3
    assert [r.true for r in pairs.records] == ["a", "b", None]
    # as JSON (the side file's ``reviewed``), in the shape these records always had
    none = pairs.records[2].to_dict()
    assert none == {
        "path": s3.sighting_id,
        "true": None,
        "source": "review",
        "crops": [
            [
                {"item_id": c.item_id, "similarity": c.similarity, "inliers": c.inliers,
                 "spread": c.spread, "checked": c.checked, "score": c.score,
                 "verified": c.verified}
                for c in s3.candidates
            ]
        ],
        "excluded": f"sighting:{s3.sighting_id}",
    }  # fmt: skip
    digest = pairs.digest
    review_sighting(sightings, catalogs, cid, s3.sighting_id, ReviewRequest("same", "c"), "t1")
    again = reviewed_pairs(sightings, catalogs.get_manifest(cid))
    assert again.digest != digest and again.genuine == 3
    catalogs.remove_item(cid, "c")  # a deleted item's candidate names nothing any more
    after = reviewed_pairs(sightings, catalogs.get_manifest(cid))
    assert after.sightings == 2 and after.skipped == 1


def test_sighting_ids_sort_by_time() -> None:
    ids = [new_sighting_id(t) for t in (1_700_000_000.0, 1_700_000_000.5, 1_800_000_000.0)]
    assert ids == sorted(ids) and all(len(i) == 16 and i.isalnum() for i in ids)
