"""Pair records are typed in memory and read and written in the JSON they always had: a side
file (``own-pairs.json``) or a ``bench.catalog_calibration --pairs`` file written before the
records were typed loads, fits the same, and is written back unchanged."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import numpy as np
import pytest

from catalog.calibration import _side, own_pairs_key
from catalog.local_store import LocalStore
from catalog.repository import CatalogRepository
from matching.calibration.fit import fit_adjustment
from matching.calibration.pair_record import (
    Candidate,
    PairRecord,
    records_from_json,
    records_to_json,
)
from matching.calibration.platt import _top
from matching.calibration.reviews import candidate_rows, review_pair_counts
from matching.score import load_calibrations
from tests.matching.test_catalog_calibration import _catalog

SHIPPED = load_calibrations()

# A side file as `refit_catalog_calibration` wrote it before the records were typed: own pairs
# from `benchmark_candidates` (with ``raw_inliers``, weighted ``inliers``), a reviewed
# sighting (``source`` review, a ``none``: ``excluded``), an impostor pair of a watch's alert
# with and without a known embedder.
SIDE = """{"content_digest": "c1", "base_digest": "b1", "records": [
 {"path": "img-1", "true": "a", "crops": [[
   {"item_id": "a", "similarity": 0.91234, "inliers": 41.5, "raw_inliers": 44,
    "spread": 0.3125, "checked": true, "score": 0.97123, "verified": true},
   {"item_id": "b", "similarity": 0.70001, "inliers": 3, "raw_inliers": 3,
    "spread": 0.0, "checked": false, "score": 0.1, "verified": false}]], "pair": "other_image"},
 {"path": "img-1", "true": null, "crops": [[
   {"item_id": "b", "similarity": 0.7, "inliers": 3, "raw_inliers": 3, "spread": 0.0,
    "checked": true, "score": 0.1, "verified": false}], []], "excluded": "a"},
 {"path": "img-2", "true": "c", "crops": [], "pair": "augmented"}],
 "reviewed": [
 {"path": "s-1", "true": null, "source": "review", "crops": [[
   {"item_id": "a", "similarity": 0.8, "inliers": 12, "spread": 0.2, "checked": true,
    "score": 0.5, "verified": false}]], "excluded": "sighting:s-1"},
 {"path": "impostor:k1", "true": null, "source": "impostor", "embedder": null,
  "excluded": "impostor:k1", "crops": [[{"item_id": "a", "similarity": 0.81, "inliers": 12,
   "spread": 0.0, "checked": true, "score": 0.7, "verified": false}]]},
 {"path": "impostor:k2", "true": null, "source": "impostor", "embedder": "emb:1",
  "excluded": "impostor:k2", "crops": [[{"item_id": "b", "similarity": 0.6, "inliers": 2,
   "spread": 0.0, "checked": true, "score": 0.2, "verified": false}]]}],
 "reviews_digest": "r1"}"""


def test_a_side_file_of_today_reads_typed_and_writes_back_unchanged(tmp_path: Path) -> None:
    raw = json.loads(SIDE)
    repo = CatalogRepository(LocalStore(tmp_path / "store"))
    repo.store.put(own_pairs_key("cat1"), SIDE.encode())
    side = _side(repo, "cat1")
    own, reviewed = side["records"], side["reviewed"]
    assert all(isinstance(r, PairRecord) for r in [*own, *reviewed])
    first = own[0].crops[0]
    assert first[0] == Candidate("a", 0.91234, 41.5, 0.3125, True, 0.97123, True, 44)
    assert first[1].checked is False and own[0].pair == "other_image"
    assert own[1].excluded == "a" and own[1].crops[1] == ()
    assert reviewed[1].embedder is None and reviewed[2].embedder == "emb:1"
    assert side["reviews_digest"] == "r1"
    # written back: the same JSON, key for key
    assert records_to_json(own) == raw["records"]
    assert records_to_json(reviewed) == raw["reviewed"]
    assert json.loads(json.dumps(records_to_json(own))) == raw["records"]
    # what the fit reads of them
    assert _top(own[0], SHIPPED["products"])[0].item_id == "a"
    assert _top(own[2], SHIPPED["products"]) is None  # no crop: no answer
    assert review_pair_counts(reviewed) == (0, 3)
    rows = candidate_rows(reviewed)
    assert rows.count == 3 and len(rows.features) == 3 and not rows.genuine.any()


def test_records_without_the_optional_keys_read_with_their_defaults() -> None:
    # an older dump: no ``checked``, ``score``, ``verified``, ``raw_inliers``
    old = {"path": "p", "true": "a", "crops": [[{"item_id": "a", "similarity": 0.9,
                                                 "inliers": 10, "spread": 0.1}]]}  # fmt: skip
    record = PairRecord.from_dict(old)
    (cand,) = record.crops[0]
    assert cand.checked is True and cand.score is None and cand.raw_inliers is None
    assert record.excluded is None and record.pair is None and record.source is None
    back = record.to_dict()
    assert back == old | {"crops": [[old["crops"][0][0] | {"checked": True}]]}
    with pytest.raises(KeyError):
        PairRecord.from_dict({"path": "p", "true": None})  # no crops: not a record
    with pytest.raises(FrozenInstanceError):
        record.true = "b"  # type: ignore[misc]


def test_side_file_unreadable_records_are_scored_again(tmp_path: Path) -> None:
    repo = CatalogRepository(LocalStore(tmp_path / "store"))
    repo.store.put(own_pairs_key("cat1"), b'{"records": [{"path": "x"}]}')
    assert _side(repo, "cat1") == {}


def test_the_fit_on_records_read_back_from_json_is_the_same() -> None:
    records = records_from_json(_catalog(40, 0.9, np.random.default_rng(8)))
    again = records_from_json(json.loads(json.dumps(records_to_json(records))))
    assert again == records
    for kind in ("animals", "other", "products"):
        a = fit_adjustment(records, SHIPPED[kind], kind, "d")
        b = fit_adjustment(again, SHIPPED[kind], kind, "d")
        assert replace(a, fitted_at="") == replace(b, fitted_at="")
