"""A catalog's own calibration as stored: what it was fitted on, its adjustment of the
kind's calibration, and what `GET /v1/catalogs/<id>` says of it (`matching.calibration`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Literal

from matching.score import NEVER, Calibration

#: Fewer impostor pairs than this and a catalog is too small to calibrate.
MIN_IMPOSTORS = 20
#: The lowest threshold of a kind without a trained model (its scores come from the fit alone).
UNTRAINED_FLOOR = 0.9
#: How many of the worst look-alike pairs a calibration keeps.
LOOK_ALIKES = 10
SCHEMA = 1

Source = Literal["catalog", "kind_default"]


@dataclass(frozen=True)
class FitOptions:
    """How a catalog's calibration is fitted (defaults: the shipped behaviour)."""

    max_queries: int = 200  # catalog images used as queries (one per item first, seeded)
    max_stranger: float = 0.03  # most of the catalog's impostors a threshold may confirm...
    bound_z: float = 1.0  # ...at the Wilson bound this many standard errors out
    stranger_share: float = 0.15  # weight of the impostor answers in the Platt fit
    seed: int = 0  # sample and augmentation seed
    # crops of each query that keypoints verify (the production default is 3; a catalog image
    # is one object, its top answer comes from its most similar crop, and keypoints are the
    # fit's cost)
    verify_crops: int = 1
    min_impostors: int = MIN_IMPOSTORS  # fewer impostor pairs: too small to calibrate
    # a trained kind's calibration is adjusted only where it would confirm more than this share
    # of the catalog's own look-alikes: there it does not hold. Between the 6.7 % of the
    # grocery catalog's look-alikes that the products fit confirms (in kind: left as it is)
    # and the 36 % the animals fit confirms of it (out of kind).
    kind_gate: float = 0.10
    # ...measured at the Wilson lower bound this many standard errors out; 0: the share itself.
    # At 1 (before) the dogs catalog through the products model (13.3 %, 6 of 45, lower bound
    # 8.3 %) kept the products calibration and confirmed 10 % of open-set photos (README)
    gate_z: float = 0.0
    # --- reviewed sightings (real query photos a person labelled, `sightings.pairs`) -------
    min_reviewed: int = 20  # fewer reviewed sightings and the fit ignores them
    # with reviews, the lowest threshold at which the Wilson bound (``bound_z``) of the share
    # of wrong top answers among the held-out reviewed ones confirmed is <= this
    max_false_confirm: float = 0.05


@dataclass(frozen=True)
class CatalogCalibration:
    """A catalog's own adjustment of its kind's calibration, and what it rests on.

    Attributes:
        content_digest: the catalog content it was fitted on (stale when it differs).
        base_digest: `calibration_digest` of the kind calibration it adjusts.
        kind: the catalog's kind.
        status: ``fitted``, or ``too_small`` (no adjustment: the kind's default applies).
        scale, offset: ``score = sigmoid(scale * kind_logit + offset)``.
        threshold: ``verified`` when the adjusted score >= this.
        genuine, impostors: how many pairs of each the fit rests on.
        look_alikes: the worst impostor pairs, highest score first: ``item`` (the query's),
            ``image``, ``looks_like`` (the other item), ``score`` (adjusted), ``similarity``,
            ``inliers``.
        metrics: the fit's figures on its own pairs (module docstring).
        fitted_at: ISO 8601 UTC.
        reason: why ``too_small``.
        reviewed_sightings: reviewed sightings the fit used (0: none, or fewer than
            `FitOptions.min_reviewed`).
        reviewed_genuine, reviewed_impostors: the reviewed pairs it rests on.
        reviews_digest: `sightings.pairs.ReviewedPairs.digest` of the verdicts it saw (another
            digest now: a refit is due; the calibration stays usable meanwhile).
        weights, bias: the fusion refitted on reviewed sightings
            (`matching.calibration.reviews`), used instead of ``scale``/``offset`` when set.
    """

    content_digest: str
    base_digest: str
    kind: str
    status: Literal["fitted", "too_small"]
    scale: float = 1.0
    offset: float = 0.0
    threshold: float = NEVER
    genuine: int = 0
    impostors: int = 0
    look_alikes: tuple[dict, ...] = ()
    metrics: dict = field(default_factory=dict)
    fitted_at: str = ""
    reason: str = ""
    reviewed_sightings: int = 0
    reviewed_genuine: int = 0
    reviewed_impostors: int = 0
    reviews_digest: str = ""
    weights: tuple[float, ...] | None = None
    bias: float | None = None

    @property
    def reviewed_pairs(self) -> int:
        """Reviewed pairs (genuine and impostor) the fit rests on."""
        return self.reviewed_genuine + self.reviewed_impostors

    def usable(self, content_digest: str, base: Calibration) -> bool:
        """Whether it applies: fitted, on this catalog content, over this kind calibration."""
        return (
            self.status == "fitted"
            and self.content_digest == content_digest
            and self.base_digest == calibration_digest(base)
        )

    def apply(self, base: Calibration) -> Calibration:
        """The catalog's calibration: its own weights where reviews refitted them, else
        ``base`` adjusted (`Calibration.rescaled`)."""
        fitted_on = (
            f"catalog calibration ({self.genuine} genuine, {self.impostors} impostor "
            f"pairs, {self.reviewed_pairs} reviewed pairs of {self.reviewed_sightings} "
            f"sightings, fitted {self.fitted_at}) over: {base.fitted_on}"
        )
        if self.weights is not None and self.bias is not None:
            return Calibration(self.weights, self.bias, self.threshold, fitted_on=fitted_on)
        return base.rescaled(self.scale, self.offset, self.threshold, fitted_on=fitted_on)

    def to_json(self) -> bytes:
        """UTF-8 JSON with a ``schema`` field."""
        return json.dumps({"schema": SCHEMA} | asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> CatalogCalibration:
        """Parse `to_json`'s output.

        Raises:
            ValueError: not a calibration this code can read.
        """
        try:
            raw = json.loads(data)
            if raw.pop("schema", None) != SCHEMA:
                raise ValueError("unknown schema")
            raw["look_alikes"] = tuple(raw.get("look_alikes") or ())
            if raw.get("weights") is not None:
                raw["weights"] = tuple(raw["weights"])
            return cls(**raw)
        except (TypeError, KeyError, AttributeError, UnicodeDecodeError) as exc:
            raise ValueError(f"unreadable catalog calibration: {exc!r}") from exc


def calibration_digest(cal: Calibration) -> str:
    """A short digest of a kind calibration's weights, bias and threshold."""
    key = json.dumps([list(cal.weights), cal.bias, cal.threshold])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def resolve(
    record: CatalogCalibration | None, content_digest: str, base: Calibration
) -> tuple[Calibration, Source]:
    """The calibration a catalog's answers use, and where it comes from."""
    if record is not None and record.usable(content_digest, base):
        return record.apply(base), "catalog"
    return base, "kind_default"


def describe_state(
    record: CatalogCalibration | None, content_digest: str, base: Calibration
) -> dict:
    """What `GET /v1/catalogs/<id>` says of a catalog's calibration (one serialiser)."""
    cal, source = resolve(record, content_digest, base)
    out: dict = {"source": source, "threshold": round(float(cal.threshold), 4)}
    if record is None:
        out["state"] = "not_fitted"
    elif record.content_digest != content_digest or record.base_digest != calibration_digest(base):
        out["state"] = "stale"  # the catalog or the kind calibration changed since the fit
    elif record.status == "too_small":
        out["state"] = "too_small"
        out["reason"] = record.reason
    else:
        out["state"] = "fitted"
    if record is not None:
        out |= {
            "genuine_pairs": record.genuine,
            "impostor_pairs": record.impostors,
            "reviewed_pairs": record.reviewed_pairs,
            "reviewed_genuine_pairs": record.reviewed_genuine,
            "reviewed_impostor_pairs": record.reviewed_impostors,
            "reviewed_sightings": record.reviewed_sightings,
            "fitted_at": record.fitted_at,
            "look_alikes": list(record.look_alikes),
        }
        if record.status == "fitted":
            out["fit"] = dict(record.metrics)
    return out
