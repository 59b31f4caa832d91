"""A catalog's calibration learns from reviewed sightings: real query photos first, the
catalog's own pairs only filling in, and unchanged where there are too few reviews."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bench.calibrate import rescore
from bench.metrics import summarize
from matching.calibration.fit import fit_adjustment
from matching.calibration.record import CatalogCalibration, FitOptions, describe_state
from matching.calibration.reviews import review_pair_counts
from matching.score import NEVER, load_calibrations
from tests.matching.test_catalog_calibration import _catalog, _record

SHIPPED = load_calibrations()


def _reviews(n: int, rng: np.random.Generator, open_share: float = 0.15) -> list[dict]:
    """Real queries of an unseen kind: the right item is usually on top with a clearly
    higher similarity than what a stranger's top answer gets, but far below what the
    conservative default calls sure."""
    out = []
    for i in range(n):
        if rng.random() < open_share:  # a photo of something not in the catalog
            rec = _record(None, f"i{i % 7}", float(rng.uniform(0.55, 0.7)), 2)
            out.append(rec | {"excluded": f"sighting:{i}", "source": "review"})
        elif rng.random() < 0.85:  # right on top
            rec = _record(f"i{i % 9}", f"i{i % 9}", float(rng.uniform(0.8, 0.9)), 30)
            out.append(rec | {"source": "review"})
        else:  # wrong on top
            rec = _record(f"i{i % 9}", "x", float(rng.uniform(0.6, 0.72)), 3)
            out.append(rec | {"source": "review"})
    return out


def _inseparable() -> list[dict]:
    """A catalog whose own look-alikes no threshold keeps unconfirmed (sister products)."""
    records = []
    for i in range(60):
        records.append(_record(f"i{i}", f"i{i}", 0.99, 100))
        strong = i < 3
        look = _record(None, f"i{i + 1}", 0.99 if strong else 0.5, 100 if strong else 2)
        records.append(look | {"excluded": f"i{i}"})
    return records


def test_too_few_reviews_leave_the_fit_as_it_was() -> None:
    rng = np.random.default_rng(0)
    own = _catalog(40, 0.85, rng)
    reviews = _reviews(19, rng)
    base = SHIPPED["other"]
    before = fit_adjustment(own, base, "other", "d")
    after = fit_adjustment(own, base, "other", "d", FitOptions(), reviews, "rd")
    strip = {"fitted_at": "", "reviews_digest": ""}
    assert replace(after, **strip) == replace(before, **strip)
    assert after.reviewed_pairs == 0


def test_reviews_let_an_unseen_kind_confirm_and_stay_precise() -> None:
    rng = np.random.default_rng(1)
    own = _inseparable()  # its own look-alikes cannot be told apart: it confirms nothing
    base = SHIPPED["other"]
    without = fit_adjustment(own, base, "other", "d")
    assert without.threshold >= NEVER
    reviews = _reviews(100, rng)
    cal = fit_adjustment(own, base, "other", "d", FitOptions(), reviews, "rd")
    assert cal.status == "fitted" and cal.threshold < NEVER
    genuine, impostors = review_pair_counts(reviews)
    assert (cal.reviewed_genuine, cal.reviewed_impostors) == (genuine, impostors)
    assert cal.reviewed_sightings == 100 and cal.reviews_digest == "rd"
    assert cal.metrics["own_pairs_weight"] == 100.0  # the catalog's pairs fill in the rest
    assert cal.genuine == 60 and cal.impostors == 60
    # on new queries like the reviewed ones: precise confirmations, most of the right ones
    fresh = _reviews(400, np.random.default_rng(2))
    m = summarize(rescore(fresh, cal.apply(base)))
    assert m["confirm_precision"] >= 0.95 and m["confirm_recall"] >= 0.5
    assert m["open_set_false_confirm"] <= 0.05
    assert summarize(rescore(fresh, base))["confirmed"] == 0  # the default confirmed none
    state = describe_state(cal, "d", base)
    assert state["reviewed_pairs"] == genuine + impostors and state["state"] == "fitted"
    assert CatalogCalibration.from_json(cal.to_json()) == cal


def test_from_fill_to_reviews_on_the_catalog_pairs_weigh_nothing() -> None:
    rng = np.random.default_rng(3)
    own = _catalog(40, 0.85, rng)
    reviews = _reviews(60, rng)
    cal = fit_adjustment(own, SHIPPED["other"], "other", "d", FitOptions(fill_to=50), reviews)
    assert cal.metrics["own_pairs_weight"] == 0.0 and cal.impostors == 40
    assert cal.look_alikes  # the catalog's own pairs still name its look-alikes


def test_reviews_that_cannot_be_confirmed_precisely_confirm_nothing() -> None:
    rng = np.random.default_rng(4)
    # right and wrong top answers with the same evidence: no threshold is precise
    reviews = []
    for i in range(80):
        true = f"i{i}" if i % 2 else None
        rec = _record(true, f"i{i}", 0.9, 40) | {"source": "review"}
        reviews.append(rec if true else rec | {"excluded": f"s{i}"})
    cal = fit_adjustment(
        _catalog(30, 0.5, rng), SHIPPED["products"], "products", "d", FitOptions(), reviews
    )
    assert cal.threshold >= NEVER
