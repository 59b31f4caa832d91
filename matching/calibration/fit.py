"""`fit_adjustment`: a catalog's calibration fitted on its own pairs, or on its reviewed
sightings when there are enough (`matching.calibration.reviews`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from core.stats import wilson_interval
from matching.calibration.pair_record import PairRecord
from matching.calibration.platt import _look_alikes, _platt, _top
from matching.calibration.record import (
    UNTRAINED_FLOOR,
    CatalogCalibration,
    FitOptions,
    calibration_digest,
)
from matching.calibration.reviews import _fit_with_reviews
from matching.score import NEVER, TRAINED_KINDS, Calibration


def fit_adjustment(
    records: Sequence[PairRecord],
    base: Calibration,
    kind: str,
    content_digest: str,
    options: FitOptions = FitOptions(),
    reviewed: Sequence[PairRecord] = (),
    reviews_digest: str = "",
) -> CatalogCalibration:
    """Fit a catalog's calibration on its `collect_pairs` records (module docstring), and on
    ``reviewed`` (records of reviewed sightings, `sightings.pairs`) when there are at least
    `FitOptions.min_reviewed` of them (`_fit_with_reviews`)."""
    now = datetime.now(UTC).isoformat()
    common = {"content_digest": content_digest, "base_digest": calibration_digest(base)}
    common |= {"kind": kind, "fitted_at": now, "reviews_digest": reviews_digest}
    if len(reviewed) >= options.min_reviewed:
        # the catalog's own pairs give the prior the reviews refit
        prior = fit_adjustment(records, base, kind, content_digest, options)
        return _fit_with_reviews(prior, reviewed, base, kind, options, common)
    tops = [(r, _top(r, base)) for r in records]
    tops = [(r, t) for r, t in tops if t is not None]
    genuine = [(r, c) for r, (c, _) in tops if r.true is not None]
    impostors = [(r, c) for r, (c, _) in tops if r.true is None]
    looked = {r.excluded for r, _ in impostors}
    if len(impostors) < options.min_impostors or len(looked) < 2 or not genuine:
        return CatalogCalibration(
            **common,
            status="too_small",
            genuine=len(genuine),
            impostors=len(impostors),
            reason=f"{len(impostors)} impostor pairs over {len(looked)} items; "
            f"at least {options.min_impostors} over 2 items are needed: the kind's default "
            "applies",
        )
    z = np.array([logit for _, (_, logit) in tops])
    right = np.array([c.item_id == r.true for r, (c, _) in tops])
    is_imp = np.array([r.true is None for r, _ in tops])
    share = options.stranger_share
    w = np.where(is_imp, share / is_imp.sum(), (1 - share) / (~is_imp).sum())
    trained = kind in TRAINED_KINDS
    kind_confirmed = int((1 / (1 + np.exp(-z[is_imp])) >= base.threshold).sum())
    kind_lo = wilson_interval(kind_confirmed, int(is_imp.sum()), options.gate_z)[0]
    in_kind = trained and kind_lo <= options.kind_gate
    if in_kind or right.all() or not right.any():
        scale, offset = 1.0, 0.0  # the kind's calibration holds on this catalog: kept
    else:
        scale, offset = _platt(z, right, w, 1.0 if trained else 4.0, 0.0 if trained else 5.0)

    def adjusted(scale: float, offset: float) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(scale * z + offset, -60, 60)))

    score = adjusted(scale, offset)
    floor = base.threshold if trained else UNTRAINED_FLOOR
    imp_scores = score[is_imp]
    threshold = NEVER if not in_kind else base.threshold
    for t in [] if in_kind else np.round(np.arange(0.3, 0.995, 0.01), 2):
        if t < floor - 1e-9:
            continue
        confirmed = int((imp_scores >= t).sum())
        if wilson_interval(confirmed, len(imp_scores), options.bound_z)[1] <= options.max_stranger:
            threshold = float(t)
            break
    if not trained and threshold >= NEVER:
        # no threshold keeps the catalog's own look-alikes unconfirmed: its pairs cannot tell
        # right from wrong, so they do not reshape the score either (the conservative
        # default's stays; fitted on such a catalog the grocery set as `other` measured ECE
        # 0.271 on 200 shelf photos against the default's 0.123, README)
        scale, offset = 1.0, 0.0
        score = adjusted(scale, offset)
        imp_scores = score[is_imp]
    gen_right = right & ~is_imp
    imp_confirmed = int((imp_scores >= threshold).sum())
    metrics = {
        "impostor_confirm_rate": round(float((imp_scores >= threshold).mean()), 4),
        "impostor_confirm_bound": round(
            wilson_interval(imp_confirmed, len(imp_scores), options.bound_z)[1], 4
        ),
        "genuine_confirm_rate": round(
            float((gen_right & (score >= threshold)).sum()) / max(1, (~is_imp).sum()), 4
        ),
        "genuine_top1": round(float(gen_right.sum() / max(1, (~is_imp).sum())), 4),
        "kind_impostor_confirm_rate": round(kind_confirmed / max(1, int(is_imp.sum())), 4),
        "kind_holds": bool(in_kind),
        "kind_gate": options.kind_gate,
        "gate_z": options.gate_z,
        "max_stranger": options.max_stranger,
        "bound_z": options.bound_z,
        "stranger_share": share,
    }
    looks = _look_alikes(impostors, imp_scores)
    return CatalogCalibration(
        **common,
        status="fitted",
        scale=round(scale, 6),
        offset=round(offset, 6),
        threshold=threshold,
        genuine=len(genuine),
        impostors=len(impostors),
        look_alikes=tuple(looks),
        metrics=metrics,
    )
