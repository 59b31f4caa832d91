"""A catalog's calibration learns from reviewed sightings: real query photos first, the
catalog's own pairs the prior they move away from only as far as cross-validation allows, and
unchanged where there are too few reviews."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bench.calibrate import rescore
from bench.metrics import summarize
from matching.calibration.fit import fit_adjustment
from matching.calibration.record import CatalogCalibration, FitOptions, describe_state
from matching.calibration.reviews import review_pair_counts
from matching.score import NEVER, load_calibrations
from tests.matching.test_catalog_calibration import _catalog, _record, typed

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
    before = fit_adjustment(typed(own), base, "other", "d")
    after = fit_adjustment(typed(own), base, "other", "d", FitOptions(), typed(reviews), "rd")
    strip = {"fitted_at": "", "reviews_digest": ""}
    assert replace(after, **strip) == replace(before, **strip)
    assert after.reviewed_pairs == 0


def test_reviews_let_an_unseen_kind_confirm_and_stay_precise() -> None:
    rng = np.random.default_rng(1)
    own = _inseparable()  # its own look-alikes cannot be told apart: it confirms nothing
    base = SHIPPED["other"]
    without = fit_adjustment(typed(own), base, "other", "d")
    assert without.threshold >= NEVER
    reviews = _reviews(100, rng)
    cal = fit_adjustment(typed(own), base, "other", "d", FitOptions(), typed(reviews), "rd")
    assert cal.status == "fitted" and cal.threshold < NEVER
    genuine, impostors = review_pair_counts(typed(reviews))
    assert (cal.reviewed_genuine, cal.reviewed_impostors) == (genuine, impostors)
    assert cal.reviewed_sightings == 100 and cal.reviews_digest == "rd"
    assert cal.metrics["model"] != "prior"  # the reviews moved it, by cross-validation
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


def _hard(n: int, rng: np.random.Generator) -> list[dict]:
    """Real photos of a kind the model never learned: the top answer is right a third of the
    time, and right or wrong it has the same middling evidence."""
    out = []
    for i in range(n):
        sim, inl = float(rng.uniform(0.6, 0.8)), int(rng.integers(5, 25))
        right = rng.random() < 0.33
        rec = _record(f"i{i % 9}", f"i{i % 9}" if right else "x", sim, inl)
        out.append(rec | {"source": "review"})
    return out


def _log_loss(records: list[dict], cal) -> float:
    rows = rescore(records, cal)
    p = np.clip([r["crops"][0][0]["score"] for r in rows], 1e-6, 1 - 1e-6)
    y = np.array([r["crops"][0][0]["item_id"] == r["true"] for r in rows])
    return float(-np.mean(np.where(y, np.log(p), np.log1p(-p))))


def test_reviews_never_make_the_scores_worse_than_before() -> None:
    rng = np.random.default_rng(3)
    own = _catalog(40, 0.6, rng)  # easy own pairs: the prior is sure of middling evidence
    base = SHIPPED["other"]
    prior = fit_adjustment(typed(own), base, "other", "d").apply(base)
    fresh = _hard(600, np.random.default_rng(5))
    for n in (20, 100):
        cal = fit_adjustment(
            typed(own), base, "other", "d", FitOptions(), typed(_hard(n, rng)), "rd"
        )
        # held out of every fit: the refit is no worse than what the catalog had
        assert _log_loss(fresh, cal.apply(base)) <= _log_loss(fresh, prior) + 0.02, n
        assert (
            cal.metrics["cv_log_loss"][cal.metrics["model"]]
            <= (cal.metrics["cv_log_loss"]["prior"])
        )
    # 100 reviews that say the prior is overconfident: it moves, and fresh photos agree
    assert cal.metrics["model"] != "prior"
    assert _log_loss(fresh, cal.apply(base)) < _log_loss(fresh, prior) - 0.05
    assert summarize(rescore(fresh, cal.apply(base)))["confirmed"] == 0  # nothing is sure


def test_reviews_that_cannot_be_confirmed_precisely_confirm_nothing() -> None:
    rng = np.random.default_rng(4)
    # right and wrong top answers with the same evidence: no threshold is precise
    reviews = []
    for i in range(80):
        true = f"i{i}" if i % 2 else None
        rec = _record(true, f"i{i}", 0.9, 40) | {"source": "review"}
        reviews.append(rec if true else rec | {"excluded": f"s{i}"})
    base = SHIPPED["products"]
    cal = fit_adjustment(
        typed(_catalog(30, 0.5, rng)), base, "products", "d", FitOptions(), typed(reviews)
    )
    assert summarize(rescore(reviews, cal.apply(base)))["confirmed"] == 0


def test_a_refit_without_a_justified_threshold_confirms_no_more_than_the_prior() -> None:
    """Too few held-out reviews to justify any threshold of a refit that scores higher: the
    prior's threshold read on the refit's scores would confirm most of them; the threshold
    kept confirms no more of them than the prior did."""
    from matching.calibration.reviews import choose_threshold

    rng = np.random.default_rng(3)
    refit = rng.uniform(0.85, 0.99, 15)  # 15 held-out top answers, all right...
    right = np.ones(15, dtype=bool)  # ...too few to bound a 5 % error rate at z = 1
    prior = refit - 0.05  # the prior scored the same answers lower
    prior_confirms = int((prior >= 0.89).sum())
    assert 0 < prior_confirms < int((refit >= 0.89).sum())

    t = choose_threshold(refit, right, 0.3, 0.89, 0.05, 1.0, prior_scores=prior)
    assert 0.89 <= t < NEVER and int((refit >= t).sum()) <= prior_confirms
    # the prior itself chosen: its threshold stays
    assert choose_threshold(prior, right, 0.3, 0.89, 0.05, 1.0) == 0.89
    # enough held-out reviews, all right: the lowest threshold is justified by them alone,
    # however few the prior confirmed
    many = rng.uniform(0.85, 0.99, 60)
    t = choose_threshold(many, np.ones(60, bool), 0.3, 0.89, 0.05, 1.0, prior_scores=many - 0.3)
    assert t == 0.3
