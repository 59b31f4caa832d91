"""Proposals in a real store (local folder and moto's S3): what a run gathers (sightings and a
camera-trap batch's unmatched animals), accept (through the review's verdicts), split, reject,
tenancy and the states that refuse a decision."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from catalog.repository import CatalogRepository
from catalog.store import Store
from core.errors import BadInput, Conflict, NotFound
from discovery import decide
from discovery.model import Link, Member, Proposal
from discovery.sources import sighting_photos, trap_photos, unknown
from discovery.store import ProposalStore, new_proposal_id
from jobs.records import JobRecord, JobStore, file_key
from sightings.keep import keep_ranked
from sightings.repository import SightingRepository
from sightings.review import ReviewRequest, review_sighting
from tests.sightings.helpers import FP, catalog, context, match

DOGS = Path(__file__).resolve().parents[3] / "shared" / "data" / "dogs"


def _describe(pixels: np.ndarray) -> dict[str, bytes]:
    return {"emb.npz": pixels.tobytes()[:64]}  # opaque to the store


@pytest.fixture()
def repos(store: Store):
    return CatalogRepository(store), SightingRepository(store), ProposalStore(store)


def _photo(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (40, 30, 3), dtype=np.uint8)


def _sightings(repos, cid: str, scores: list[float], tenant: str = "t1") -> list[str]:
    _, sightings, _ = repos
    ids = []
    for k, score in enumerate(scores):
        kept = keep_ranked(sightings, [match("a", score)], _photo(k), context(cid, tenant=tenant))
        ids.extend(kept.sighting_ids)
    return ids


def _proposal(store: ProposalStore, cid: str, sids: list[str], tenant: str = "t1") -> Proposal:
    members = tuple(
        Member(sid, "sighting", f"catalogs/{cid}/sightings/crops/{sid}.jpg") for sid in sids
    )
    links = tuple(Link(a, b, 0.9, 40, 0.95) for a, b in zip(sids, sids[1:], strict=False))
    p = Proposal(new_proposal_id(), cid, tenant, "job000000001", "2026-12-07T00:00:00Z",
                 members, links, 0.95)  # fmt: skip
    return store.add(p)


def test_the_unknown_sightings_are_gathered(repos) -> None:
    catalogs, sightings, _ = repos
    cid = catalog(catalogs)
    low, high, none_, other = _sightings(repos, cid, [0.2, 0.9, 0.95, 0.1])[:4]
    review_sighting(sightings, catalogs, cid, none_, ReviewRequest("none"), "t1")
    # another tenant's sighting of the same catalog is not the owner's to group
    foreign = _sightings(repos, cid, [0.1], tenant="t2")[0]
    got = {p.member.ref for p in sighting_photos(sightings, cid, "t1", 0.5, 100)}
    assert got == {low, none_, other} and foreign not in got and high not in got
    assert len(list(sighting_photos(sightings, cid, "t1", 0.5, 2))) == 2  # the limit
    s = sightings.get(cid, high)
    assert not unknown(s, 0.5) and unknown(s, 0.95)


def test_accept_makes_one_item_of_the_group_through_the_reviews(repos) -> None:
    catalogs, sightings, proposals = repos
    cid = catalog(catalogs)
    sids = _sightings(repos, cid, [0.2, 0.3, 0.1])
    p = _proposal(proposals, cid, sids)
    before = catalogs.get_manifest(cid).version
    out = decide.accept(proposals, catalogs, sightings, cid, p.proposal_id, "t1", scope="t1",
                        describe=_describe, fingerprints=FP, item_id="stray-7",
                        metadata={"name": "stray"})  # fmt: skip
    assert out.item_id == "stray-7" and out.images == 3 and out.skipped == []
    item = catalogs.get_manifest(cid).items["stray-7"]
    assert len(item.images) == 3 and item.metadata["name"] == "stray"
    assert item.metadata["from_proposal"] == p.proposal_id
    assert out.catalog_version > before
    states = [sightings.get(cid, sid).state for sid in sids]
    assert states == ["new_item", "confirmed", "confirmed"]
    assert all(sightings.get(cid, sid).item_id == "stray-7" for sid in sids)
    stored = proposals.get(cid, p.proposal_id)
    assert stored.state == "accepted" and stored.item_id == "stray-7" and stored.decided_by == "t1"
    # decided: no second accept, split or reject
    with pytest.raises(Conflict):
        decide.accept(proposals, catalogs, sightings, cid, p.proposal_id, "t1", scope="t1",
                      describe=_describe)  # fmt: skip
    with pytest.raises(Conflict):
        decide.reject(proposals, cid, p.proposal_id, "t1", scope="t1")
    with pytest.raises(Conflict):
        decide.split(proposals, cid, p.proposal_id, [sids[0]], "t1", scope="t1")


def test_an_existing_item_id_is_409_and_the_proposal_stays_open(repos) -> None:
    catalogs, sightings, proposals = repos
    cid = catalog(catalogs)
    p = _proposal(proposals, cid, _sightings(repos, cid, [0.2, 0.3]))
    with pytest.raises(Conflict):
        decide.accept(proposals, catalogs, sightings, cid, p.proposal_id, "t1", scope="t1",
                      describe=_describe, item_id="a")  # fmt: skip
    with pytest.raises(BadInput):
        decide.accept(proposals, catalogs, sightings, cid, p.proposal_id, "t1", scope="t1",
                      describe=_describe, item_id="bad id/")  # fmt: skip
    assert proposals.get(cid, p.proposal_id).state == "open"


def test_two_accepts_at_once_make_one_item(repos) -> None:
    catalogs, sightings, proposals = repos
    cid = catalog(catalogs)
    p = _proposal(proposals, cid, _sightings(repos, cid, [0.2, 0.3]))
    results: list[object] = []

    def go() -> None:
        try:
            results.append(decide.accept(proposals, catalogs, sightings, cid, p.proposal_id,
                                         "t1", scope="t1", describe=_describe))  # fmt: skip
        except Conflict as exc:
            results.append(exc)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    made = [r for r in results if isinstance(r, decide.Accepted)]
    assert len(made) == 1 and sum(isinstance(r, Conflict) for r in results) == 3
    new_items = set(catalogs.get_manifest(cid).items) - {"a", "b", "c"}
    assert new_items == {made[0].item_id}


def test_a_deleted_sighting_is_left_out(repos) -> None:
    catalogs, sightings, proposals = repos
    cid = catalog(catalogs)
    sids = _sightings(repos, cid, [0.2, 0.3, 0.1])
    p = _proposal(proposals, cid, sids)
    sightings.delete(cid, sids[0])
    out = decide.accept(proposals, catalogs, sightings, cid, p.proposal_id, "t1", scope="t1",
                        describe=_describe)  # fmt: skip
    assert out.skipped == [sids[0]] and out.images == 2
    assert len(catalogs.get_manifest(cid).items[out.item_id].images) == 2


def test_split_and_reject(repos) -> None:
    catalogs, _, proposals = repos
    cid = catalog(catalogs)
    sids = _sightings(repos, cid, [0.2, 0.3, 0.1, 0.2])
    p = _proposal(proposals, cid, sids)
    for bad in ([], ["nope"], sids):
        with pytest.raises(BadInput):
            decide.split(proposals, cid, p.proposal_id, bad, "t1", scope="t1")
    rest, new = decide.split(proposals, cid, p.proposal_id, sids[2:], "t1", scope="t1")
    assert [m.ref for m in rest.members] == sids[:2] and [m.ref for m in new.members] == sids[2:]
    assert new.split_from == p.proposal_id and new.state == rest.state == "open"
    assert all(link.a in sids[2:] and link.b in sids[2:] for link in new.links)
    assert {x.proposal_id for x in proposals.list(cid)} == {p.proposal_id, new.proposal_id}
    rejected = decide.reject(proposals, cid, new.proposal_id, "t1", scope="t1")
    assert rejected.state == "rejected" and rejected.decided_by == "t1"


def test_another_tenants_proposal_is_not_found(repos) -> None:
    catalogs, sightings, proposals = repos
    cid = catalog(catalogs)
    p = _proposal(proposals, cid, _sightings(repos, cid, [0.2, 0.3]))
    with pytest.raises(NotFound):
        decide.reject(proposals, cid, p.proposal_id, "t2", scope="t2")
    with pytest.raises(NotFound):
        decide.accept(proposals, catalogs, sightings, cid, p.proposal_id, "t2", scope="t2",
                      describe=_describe)  # fmt: skip
    with pytest.raises(NotFound):
        proposals.get(cid, "../etc")
    assert proposals.list(cid, "t2") == [] and len(proposals.list(cid, "t1")) == 1
    assert proposals.get(cid, p.proposal_id, None).state == "open"  # an admin sees it


def test_a_trap_batch_gives_its_unmatched_animals(repos, store: Store) -> None:
    catalogs, sightings, proposals = repos
    cid = catalog(catalogs)
    jobs = JobStore(store)
    photo = (DOGS / "queries" / "0").iterdir().__next__().read_bytes()
    for name in ("cam1/a.jpg", "cam1/b.jpg"):
        store.put(f"uploads/batch1/{name}", photo)
    lines = [
        {"file": "cam1/a.jpg", "camera": "cam1", "time": "2026-12-01T03:00:00", "error": "",
         "detections": [{"box": [10, 10, 150, 160], "matches": [{"score": 0.2}]},
                        {"box": [20, 20, 120, 120], "matches": [{"score": 0.97}]}]},
        {"file": "cam1/b.jpg", "camera": "cam1", "time": "", "error": "",
         "detections": [{"box": [0, 0, 100, 100], "matches": []}]},
        {"file": "cam1/c.jpg", "error": "unreadable", "detections": []},
    ]  # fmt: skip
    record = JobRecord("trapjob00001", "traps", "t1", {"prefix": "uploads/batch1/"}, state="done")
    jobs.create(record)
    store.put(file_key(record.job_id, "results.jsonl"),
              "\n".join(json.dumps(x) for x in lines).encode())  # fmt: skip
    got = list(trap_photos(jobs, record.job_id, "t1", cid, 0.5, 100))
    assert [p.member.ref for p in got] == ["cam1/a.jpg#0", "cam1/b.jpg#0"]
    assert got[0].pixels.shape == (150, 140, 3) and got[0].member.camera == "cam1"
    assert got[0].jpeg[:2] == b"\xff\xd8" and got[0].member.source == "trap"
    with pytest.raises(NotFound):
        list(trap_photos(jobs, record.job_id, "t2", cid, 0.5, 100))  # another tenant's
    jobs.create(replace(record, job_id="notatrap0001", kind="analytics"))
    with pytest.raises(BadInput):
        list(trap_photos(jobs, "notatrap0001", "t1", cid, 0.5, 100))
    # a proposal of trap members accepted: the item gets their crops
    for p in got:
        store.put(p.member.crop_key, p.jpeg)
    prop = proposals.add(
        Proposal(new_proposal_id(), cid, "t1", "d", "2026", tuple(p.member for p in got))
    )
    out = decide.accept(proposals, catalogs, sightings, cid, prop.proposal_id, "t1", scope="t1",
                        describe=_describe, fingerprints=FP)  # fmt: skip
    item = catalogs.get_manifest(cid).items[out.item_id]
    assert len(item.images) == 2 and item.metadata["from_trap"] == "cam1/a.jpg#0"
