"""A catalog's own calibration: fitted on its look-alikes, used only on what it was fitted on."""

from __future__ import annotations

import numpy as np
import pytest

from matching.calibration.fit import fit_adjustment
from matching.calibration.pair_record import PairRecord, records_from_json
from matching.calibration.record import (
    CatalogCalibration,
    FitOptions,
    calibration_digest,
    describe_state,
    resolve,
)
from matching.index import VectorIndex
from matching.score import NEVER, TRAINED_KINDS, conservative_default, load_calibrations

SHIPPED = load_calibrations()


def _record(true, item, sim, inliers, others=(("x", 0.3, 0),), excluded=None) -> dict:
    crop = [{"item_id": item, "similarity": sim, "inliers": inliers, "spread": 0.1}]
    crop += [{"item_id": i, "similarity": s, "inliers": n, "spread": 0.0} for i, s, n in others]
    rec = {"path": f"img-{item}-{sim}", "true": true, "crops": [crop]}
    if excluded is not None:
        rec["excluded"] = excluded
    return rec


def typed(records: list[dict]) -> list[PairRecord]:
    """Records written as a benchmark dump or a side file writes them, read as the fit reads
    them (the test data's dicts are also what `bench.calibrate.rescore` reads)."""
    return records_from_json(records)


def _catalog(n: int, impostor_sim: float, rng: np.random.Generator) -> list[dict]:
    """n genuine pairs (strong evidence) and n impostor pairs whose look-alike has similarity
    ``impostor_sim`` (0.85: what a model that never saw the kind gives every pair)."""
    records = []
    for i in range(n):
        item, other = f"item{i}", f"item{(i + 1) % n}"
        sim = float(rng.uniform(0.93, 0.99))
        records.append(_record(item, item, sim, int(rng.integers(40, 120))))
        records.append(
            _record(
                None,
                other,
                float(impostor_sim + rng.uniform(-0.03, 0.03)),
                int(rng.integers(5, 12)),
                others=((f"item{(i + 2) % n}", impostor_sim - 0.05, 3),),
                excluded=item,
            )
        )
    return records


def test_too_small_a_catalog_keeps_the_kind_default_and_says_so() -> None:
    records = _catalog(5, 0.5, np.random.default_rng(0))
    cal = fit_adjustment(typed(records), SHIPPED["products"], "products", "digest")
    assert cal.status == "too_small" and cal.impostors == 5 and "20" in cal.reason
    chosen, source = resolve(cal, "digest", SHIPPED["products"])
    assert source == "kind_default" and chosen == SHIPPED["products"]
    state = describe_state(cal, "digest", SHIPPED["products"])
    assert state["state"] == "too_small" and state["source"] == "kind_default"


def test_one_item_is_too_small() -> None:
    records = [_record("a", "a", 0.99, 100)] + [
        {"path": "a.jpg", "true": None, "crops": [[]], "excluded": "a"}
    ] * 30
    cal = fit_adjustment(typed(records), SHIPPED["animals"], "animals", "d")
    assert cal.status == "too_small"


@pytest.mark.parametrize("kind", ["products", "animals", "other"])
def test_look_alikes_the_kind_would_confirm_are_not_confirmed_by_the_catalog(kind: str) -> None:
    """Issue 14's failure: a kind's calibration confirms the catalog's look-alikes; the
    catalog's own calibration keeps them unconfirmed, with a Wilson bound."""
    records = _catalog(60, 0.92, np.random.default_rng(1))
    base = SHIPPED[kind]
    cal = fit_adjustment(typed(records), base, kind, "d", FitOptions())
    assert cal.status == "fitted" and cal.impostors == 60 and cal.genuine == 60
    adjusted = cal.apply(base)
    imp = [r for r in records if r["true"] is None]
    from bench.calibrate import rescore
    from bench.metrics import summarize

    if kind in TRAINED_KINDS:  # the kind alone confirms many of them (the premise)
        assert summarize(rescore(imp, base))["open_set_false_confirm"] > 0.2
    assert summarize(rescore(imp, adjusted))["open_set_false_confirm"] <= 0.03
    assert cal.metrics["impostor_confirm_bound"] <= 0.03
    # look-alike pairs are listed worst first, each pair once
    scores = [p["score"] for p in cal.look_alikes]
    assert scores == sorted(scores, reverse=True) and len(cal.look_alikes) <= 10
    assert all(p["item"] != p["looks_like"] for p in cal.look_alikes)


def test_a_trained_kind_is_only_ever_tightened() -> None:
    records = _catalog(60, 0.92, np.random.default_rng(2))
    base = SHIPPED["products"]
    cal = fit_adjustment(typed(records), base, "products", "d")
    assert 0 < cal.scale <= 1 and cal.offset <= 0 and cal.threshold >= base.threshold
    feats = np.random.default_rng(3).uniform(0, 1, (200, 6)).astype(np.float32)
    feats[:, 2:4] *= 5
    z = base.logit(feats)
    more = z >= 0  # where the base is at least even, the catalog's score is never higher
    assert (cal.apply(base).score(feats)[more] <= base.score(feats)[more] + 1e-6).all()


def test_near_identical_items_confirm_nothing() -> None:
    """A thousand near-identical images: impostors as strong as genuine pairs, so no
    confirmation would mean anything; the catalog's calibration confirms none of either."""
    records = []
    for i in range(60):
        near = ((f"i{i + 1}", 0.99, 99), (f"i{i + 2}", 0.99, 98))
        records.append(_record(f"i{i}", f"i{i}", 0.99, 100, others=near))
        records.append(_record(None, f"i{i + 1}", 0.99, 99, others=near[1:], excluded=f"i{i}"))
    base = SHIPPED["products"]
    cal = fit_adjustment(typed(records), base, "products", "d")
    assert cal.status == "fitted"
    from bench.calibrate import rescore
    from bench.metrics import summarize

    assert summarize(rescore(records, base))["confirmed"] > 50  # the kind confirms them all
    assert summarize(rescore(records, cal.apply(base)))["confirmed"] == 0


def test_an_untrained_kind_whose_look_alikes_cannot_be_separated_keeps_the_default_scores() -> None:
    # a few look-alikes as strong as every genuine pair (sister products, 100 inliers): the fit
    # would score them 0.99, so no threshold keeps them unconfirmed
    records = []
    for i in range(60):
        records.append(_record(f"i{i}", f"i{i}", 0.99, 100))
        strong = i < 3
        look = _record(None, f"i{i + 1}", 0.99 if strong else 0.5, 100 if strong else 2)
        records.append(look | {"excluded": f"i{i}"})
    base = SHIPPED["other"]
    cal = fit_adjustment(typed(records), base, "other", "d")
    assert cal.status == "fitted" and cal.threshold >= 1.0  # confirms nothing, says so
    assert (cal.scale, cal.offset) == (1.0, 0.0)  # and leaves the scores as they were
    feats = np.random.default_rng(4).uniform(0, 1, (50, 6)).astype(np.float32)
    np.testing.assert_allclose(cal.apply(base).score(feats), base.score(feats), atol=1e-6)


def test_stale_or_foreign_calibration_is_not_used() -> None:
    records = _catalog(40, 0.9, np.random.default_rng(5))
    base = SHIPPED["animals"]
    cal = fit_adjustment(typed(records), base, "animals", "digest-1")
    assert resolve(cal, "digest-1", base)[1] == "catalog"
    assert resolve(cal, "digest-2", base) == (base, "kind_default")  # the catalog changed
    other = base.rescaled(1.0, 0.0, 0.9)  # the kind calibration was refitted
    assert resolve(cal, "digest-1", other) == (other, "kind_default")
    assert describe_state(cal, "digest-2", base)["state"] == "stale"
    assert describe_state(None, "digest-1", base)["state"] == "not_fitted"
    assert describe_state(cal, "digest-1", base)["source"] == "catalog"


def test_calibration_round_trips_as_json() -> None:
    cal = fit_adjustment(
        typed(_catalog(30, 0.9, np.random.default_rng(6))), SHIPPED["products"], "products", "d"
    )
    assert CatalogCalibration.from_json(cal.to_json()) == cal
    with pytest.raises(ValueError):
        CatalogCalibration.from_json(b'{"schema": 99}')
    with pytest.raises(ValueError):
        CatalogCalibration.from_json(b'{"schema": 1, "kind": "x"}')


def test_untrained_kinds_default_to_confirming_nothing_never_to_products() -> None:
    for kind in ("vehicles", "wildlife", "other"):
        cal = SHIPPED[kind]
        assert cal.threshold == NEVER and cal == conservative_default(kind)
        assert calibration_digest(cal) != calibration_digest(SHIPPED["products"])
        assert (cal.score(np.full((2, 6), 10.0, np.float32)) < cal.threshold).all()


def test_masked_index_answers_as_the_vector_index_without_the_left_out() -> None:
    rng = np.random.default_rng(7)
    vecs = rng.normal(size=(30, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    items = [f"it{i // 3}" for i in range(30)]
    images = [f"im{i}" for i in range(30)]
    queries = rng.normal(size=(4, 16)).astype(np.float32)
    index = VectorIndex(16)
    index.add(vecs, items, images)
    masked = index.without([*index.images_of("it2"), "im0"])
    keep = [i for i in range(30) if items[i] != "it2" and images[i] != "im0"]
    ref = VectorIndex(16)
    ref.add(vecs[keep], [items[i] for i in keep], [images[i] for i in keep])
    got, want = masked.search(queries, 5), ref.search(queries, 5)
    assert len(masked) == len(keep) == 26
    assert got.item_ids == want.item_ids and got.image_ids == want.image_ids
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)
