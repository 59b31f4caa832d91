"""The fit once people have reviewed enough sightings (`matching.calibration`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.stats import wilson_interval
from matching.calibration.platt import _look_alikes, _platt, _top
from matching.calibration.record import UNTRAINED_FLOOR, CatalogCalibration, FitOptions
from matching.score import NEVER, TRAINED_KINDS, Calibration


def review_pair_counts(reviewed: Sequence[dict]) -> tuple[int, int]:
    """(genuine, impostor) pairs of reviewed-sighting records: the candidate of the
    confirmed item is genuine, every other candidate (all of a ``none``) an impostor."""
    genuine = impostors = 0
    for r in reviewed:
        for crop in r["crops"]:
            for cand in crop:
                if r["true"] is not None and cand["item_id"] == r["true"]:
                    genuine += 1
                else:
                    impostors += 1
    return genuine, impostors


def _fit_with_reviews(
    records: Sequence[dict],
    reviewed: Sequence[dict],
    base: Calibration,
    kind: str,
    options: FitOptions,
    common: dict,
) -> CatalogCalibration:
    """The fit once people have reviewed enough sightings: real query photos first.

    The Platt adjustment is fitted on every reviewed sighting's top answer (one query each,
    right when it is the item a person confirmed; a ``none`` is always wrong) and on the
    catalog's own pairs, which weigh ``fill_to - reviewed`` queries' worth (none from
    ``fill_to`` reviews on). Its range is free for every kind: the reviews are photos of this
    very catalog, so where they say the kind's calibration is too careful (or too bold) it
    moves. The threshold is the lowest (never below the kind's, or `UNTRAINED_FLOOR`) at which
    the Wilson bound of the wrong share among the confirmed reviewed answers is <=
    ``max_false_confirm``; none such: `NEVER` (the score still carries its fitted meaning).
    """
    rev = [(r, _top(r, base)) for r in reviewed]
    rev = [(r, t) for r, t in rev if t is not None]
    own = [(r, _top(r, base)) for r in records]
    own = [(r, t) for r, t in own if t is not None]
    z_r = np.array([t["logit"] for _, t in rev])
    right_r = np.array([t["item_id"] == r["true"] for r, t in rev], dtype=bool)
    z_s = np.array([t["logit"] for _, t in own], dtype=np.float64)
    right_s = np.array([t["item_id"] == r["true"] for r, t in own], dtype=bool)
    imp_s = np.array([r["true"] is None for r, _ in own], dtype=bool)
    fill = max(0, options.fill_to - len(rev))
    w_s = np.zeros(len(own))
    share = options.stranger_share
    if fill and imp_s.any() and (~imp_s).any():
        w_s = np.where(imp_s, share / imp_s.sum(), (1 - share) / (~imp_s).sum()) * fill
    z = np.concatenate([z_r, z_s])
    right = np.concatenate([right_r, right_s])
    w = np.concatenate([np.ones(len(rev)), w_s])
    keep = w > 0
    if right[keep].all() or not right[keep].any():
        scale, offset = 1.0, 0.0
    else:
        scale, offset = _platt(z[keep], right[keep], w[keep], 4.0, 5.0)

    def adjusted(values: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(scale * values + offset, -60, 60)))

    score_r = adjusted(z_r)
    floor = base.threshold if kind in TRAINED_KINDS else UNTRAINED_FLOOR
    threshold = NEVER
    for t in np.round(np.arange(0.3, 0.995, 0.01), 2):
        if t < floor - 1e-9:
            continue
        confirmed = score_r >= t
        wrong = int((confirmed & ~right_r).sum())
        if not confirmed.any():
            break
        if wilson_interval(wrong, int(confirmed.sum()), options.bound_z)[1] <= (
            options.max_false_confirm
        ):
            threshold = float(t)
            break
    genuine_r, impostors_r = review_pair_counts([r for r, _ in rev])
    open_r = np.array([r["true"] is None for r, _ in rev], dtype=bool)
    confirmed = score_r >= threshold
    known = ~open_r
    metrics = {
        "reviewed_top1": round(float(right_r[known].mean()) if known.any() else 0.0, 4),
        "reviewed_confirmed": int(confirmed.sum()),
        "reviewed_wrong_confirmed": int((confirmed & ~right_r).sum()),
        "reviewed_confirm_recall": round(
            float((confirmed & right_r).sum() / max(1, int(known.sum()))), 4
        ),
        "reviewed_open": int(open_r.sum()),
        "reviewed_open_confirmed": int((confirmed & open_r).sum()),
        "own_pairs_weight": round(float(w_s.sum()), 2),
        "max_false_confirm": options.max_false_confirm,
        "bound_z": options.bound_z,
    }
    own_imp = [(r, t) for r, t in own if r["true"] is None]
    own_gen = [(r, t) for r, t in own if r["true"] is not None]
    looks = _look_alikes(own_imp, adjusted(z_s[imp_s])) if own_imp else []
    return CatalogCalibration(
        **common,
        status="fitted",
        scale=round(scale, 6),
        offset=round(offset, 6),
        threshold=threshold,
        genuine=len(own_gen),
        impostors=len(own_imp),
        look_alikes=tuple(looks),
        metrics=metrics,
        reviewed_sightings=len(rev),
        reviewed_genuine=genuine_r,
        reviewed_impostors=impostors_r,
    )
