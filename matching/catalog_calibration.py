"""Each catalog calibrated on itself: its own look-alikes say how far its scores are trusted.

The kind's calibration (`matching.score`) was fitted on the dev photos of its kind; a catalog of
other things (cars in a `products` catalog, zebras in an `animals` one, any `other` catalog)
gets scores that do not mean what they say (issue 14: 88 % of strangers confirmed). So each
catalog is scored against itself (`collect_pairs`):

* impostor pairs: each sampled catalog image is a query with its own item taken out of the
  catalog; its top answer is the catalog's closest look-alike, always wrong (what a photo of
  something not in the catalog meets);
* genuine pairs: the same query with its item in: against the item's other images when it has
  two or more (the image itself left out), else against itself, the query then being an
  augmented view (a crop, colour jitter, a down-scale; `augmented_view`).

`fit_adjustment` then fits a Platt adjustment of the kind's logit on the top answers of those
pairs, ``score = sigmoid(scale * logit + offset)``, with the impostors weighing
``stranger_share`` of the fit (the dev photos' share of open-set queries, 15 %), and the lowest
threshold at which the Wilson bound ``bound_z`` standard errors out of the share of the
catalog's impostors confirmed is <= ``max_stranger``. For a kind with a trained model the
adjustment may only lower scores above the logit's zero (``scale`` <= 1, ``offset`` <= 0) and
the threshold is never below the kind's, so where the kind's calibration holds (its own dev
photos) the catalog's changes little; for the other kinds both are free and the threshold is at
least `UNTRAINED_FLOOR`, and where no threshold keeps the catalog's look-alikes unconfirmed the
scores stay the conservative default's (the pairs that cannot separate right from wrong do not
reshape the score either). The score stays a probability: that the top answer is right, for the
catalog's own pairs weighted as a query stream with 15 % strangers. Genuine pairs from one
image's views are easier than a new photo, so on real photos the fitted score is an upper
estimate for the kinds the models do not know: confirmations get rarer, and right.

A catalog with fewer than `MIN_IMPOSTORS` impostor pairs (or one item) is ``too_small``: it
keeps the kind's default, marked so. A calibration is fingerprinted by the catalog content it
was fitted on (``content_digest``: kind, items, images and model fingerprints, see
`catalog.manifest.Manifest.content_digest`) and by the kind calibration it adjusts
(`calibration_digest`); either changed and it is stale, and not used.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

import numpy as np
from tqdm import tqdm

from core.errors import NotFound
from core.stats import wilson_interval
from matching.catalog_view import CatalogView, FeatureCache
from matching.features import LocalFeatures
from matching.index import ItemHits
from matching.report import benchmark_candidates
from matching.score import NEVER, TRAINED_KINDS, Calibration, candidate_features

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
class CatalogImage:
    """One catalog image as the fit needs it.

    Attributes:
        item_id, image_id: where it belongs.
        vectors: float32 (V, D) its stored vectors (row 0 the image, row 1 its main crop).
        tags: (V,) the vectors' id suffixes (``""``, ``":crop"``).
        features: its stored keypoints, or None.
        pixels: returns the decoded image, uint8 (H, W, 3) RGB (called for sampled images).
    """

    item_id: str
    image_id: str
    vectors: np.ndarray
    tags: list[str]
    features: LocalFeatures | None
    pixels: Callable[[], np.ndarray]


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


# --- collecting the catalog's own pairs ----------------------------------------------------
class MaskedIndex:
    """Exact item-level search over a catalog's vectors with items or images left out (what
    `matching.index.VectorIndex.search` answers, for a catalog without them)."""

    def __init__(
        self,
        vectors: np.ndarray,
        item_ids: Sequence[str],
        image_ids: Sequence[str],
        keep: np.ndarray | None = None,
    ) -> None:
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.item_ids = np.asarray(item_ids, dtype=object)
        self.image_ids = np.asarray(image_ids, dtype=object)
        self.keep = np.ones(len(self.vectors), dtype=bool) if keep is None else keep

    def without(self, items: Sequence[str] = (), images: Sequence[str] = ()) -> MaskedIndex:
        """The same index with every vector of ``items`` and of ``images`` left out."""
        from matching.pipeline import image_id_of

        base_images = np.array([image_id_of(i) for i in self.image_ids], dtype=object)
        drop = np.isin(self.item_ids, list(items)) | np.isin(base_images, list(images))
        return MaskedIndex(self.vectors, self.item_ids, self.image_ids, self.keep & ~drop)

    def __len__(self) -> int:
        return int(self.keep.sum())

    def search(self, queries: np.ndarray, k: int) -> ItemHits:
        """Top-k distinct items per query (see `VectorIndex.search`)."""
        rows = np.flatnonzero(self.keep)
        nq = len(queries)
        scores = np.full((nq, k), -np.inf, dtype=np.float32)
        items: list[list[str]] = [[] for _ in range(nq)]
        images: list[list[str]] = [[] for _ in range(nq)]
        if len(rows) == 0:
            return ItemHits(items, images, scores)
        sims = np.asarray(queries, dtype=np.float32) @ self.vectors[rows].T
        for q in range(nq):
            seen: dict[str, tuple[str, float]] = {}
            for j in np.argsort(-sims[q], kind="stable"):
                item = self.item_ids[rows[j]]
                if item not in seen:
                    seen[item] = (self.image_ids[rows[j]], float(sims[q, j]))
                    if len(seen) == k:
                        break
            items[q] = list(seen)
            images[q] = [image for image, _ in seen.values()]
            scores[q, : len(seen)] = [s for _, s in seen.values()]
        return ItemHits(items, images, scores)


def augmented_view(image: np.ndarray, rng: np.random.Generator, flip: bool) -> np.ndarray:
    """``uint8 (H, W, 3) -> uint8 (h, w, 3)``: `embedding.photos.augment` (crop of 55-100 %
    of the area, colour jitter, optional flip), then down-scaled by 0.5-1 and back (a photo
    taken further away: fewer fine details to match)."""
    from PIL import Image

    from embedding.photos import augment

    out = augment(image, rng, flip)
    h, w = out.shape[:2]
    factor = rng.uniform(0.5, 1.0)
    small = (max(16, round(w * factor)), max(16, round(h * factor)))
    pil = Image.fromarray(out).resize(small, Image.Resampling.BILINEAR)
    return np.asarray(pil.resize((w, h), Image.Resampling.BILINEAR))


def sample_queries(images: Sequence[CatalogImage], limit: int, seed: int) -> list[CatalogImage]:
    """Up to ``limit`` images: one of each item first (items in a seeded order), then more."""
    rng = np.random.default_rng(seed)
    by_item: dict[str, list[CatalogImage]] = {}
    for image in images:
        by_item.setdefault(image.item_id, []).append(image)
    order = list(by_item)
    rng.shuffle(order)
    queues = {item: list(rng.permutation(len(by_item[item]))) for item in order}
    out: list[CatalogImage] = []
    while len(out) < limit and any(queues.values()):
        for item in order:
            if queues[item] and len(out) < limit:
                out.append(by_item[item][queues[item].pop(0)])
    return out


class _OnceVerifier:
    """A verifier that extracts each crop's keypoints once and matches each (crop, catalog
    image) pair once: the genuine and the impostor search of one query share most of their
    candidates, and keypoints are the expensive stage (halves the fit's time)."""

    def __init__(self, verifier) -> None:
        self.verifier = verifier
        self.fingerprint = verifier.fingerprint
        self._extracted: dict[tuple, tuple[np.ndarray, LocalFeatures]] = {}
        self._matched: dict[tuple[int, int], object] = {}

    def reset(self) -> None:
        """Forget the previous query's crops."""
        self._extracted.clear()
        self._matched.clear()

    def extract(self, image: np.ndarray, max_side: int | None = None) -> LocalFeatures:
        found = self._extracted.get((id(image), max_side))
        if found is None or found[0] is not image:
            found = (image, self.verifier.extract(image, max_side))
            self._extracted[(id(image), max_side)] = found
        return found[1]

    def match_many(self, query: LocalFeatures, refs: Sequence[LocalFeatures]) -> list:
        todo = [r for r in refs if (id(query), id(r)) not in self._matched]
        for ref, result in zip(todo, self.verifier.match_many(query, todo), strict=True):
            self._matched[(id(query), id(ref))] = result
        return [self._matched[(id(query), id(r))] for r in refs]


def _view(kind: str, index: MaskedIndex, features: dict[str, LocalFeatures]) -> CatalogView:
    from matching.pipeline import image_id_of

    images_of: dict[str, list[str]] = {}
    for row in np.flatnonzero(index.keep):
        image = image_id_of(index.image_ids[row])
        if image in features and image not in images_of.get(index.item_ids[row], []):
            images_of.setdefault(index.item_ids[row], []).append(image)

    def load(image_id: str) -> LocalFeatures:
        if image_id not in features:
            raise NotFound(f"catalog image {image_id!r} has no keypoints")
        return features[image_id]

    return CatalogView(
        catalog_id="calibration",
        kind=kind,
        index=index,  # type: ignore[arg-type]  (the search and length a view needs)
        features=FeatureCache(load, size=0),
        images_of=images_of,
    )


def collect_pairs(
    pipeline,
    images: Sequence[CatalogImage],
    kind: str,
    options: FitOptions = FitOptions(),
    config=None,
    progress: bool = False,
) -> list[dict]:
    """Score a catalog's sampled images against the catalog (module docstring).

    Args:
        pipeline: a `matching.pipeline.Pipeline` (its kind calibration scores the pairs).
        images: every image of the catalog.
        kind: the catalog's kind.
        config: the `PipelineConfig` of the matches (default: the production defaults).

    Returns:
        Records in `bench.metrics`' format, two per sampled image: the genuine one (``true``
        its item, ``pair``: ``other_image`` or ``augmented``) and the impostor one (``true``
        None, ``excluded``: its item).
    """
    from embedding import MIRROR_KINDS
    from matching.pipeline import Pipeline, PipelineConfig

    config = config or PipelineConfig(verify_crops=options.verify_crops)
    once = _OnceVerifier(pipeline.verifier) if pipeline.verifier is not None else None
    pipeline = Pipeline(pipeline.detector, pipeline.embedders, once, pipeline.calibrations)
    images = [im for im in images if len(im.vectors)]
    if not images:
        return []
    vectors = np.concatenate([im.vectors for im in images])
    items = [im.item_id for im in images for _ in im.tags]
    ids = [im.image_id + t for im in images for t in im.tags]
    full = MaskedIndex(vectors, items, ids)
    features = {im.image_id: im.features for im in images if im.features is not None}
    count: dict[str, int] = {}
    for im in images:
        count[im.item_id] = count.get(im.item_id, 0) + 1
    rng = np.random.default_rng(options.seed)
    embedder = pipeline.embedder_for(kind)
    records = []
    sample = sample_queries(images, options.max_queries, options.seed)
    for image in tqdm(sample, desc="calibration pairs", unit="img", disable=not progress):
        pixels = image.pixels()
        own = count[image.item_id] > 1
        query = pixels if own else augmented_view(pixels, rng, flip=kind in MIRROR_KINDS)
        det = pipeline.detector.detect([query], whole_frame=True)[0]
        crops = list(det.data.get("crop", []))
        vecs = embedder.embed(crops)
        if once is not None:
            once.reset()
        genuine_index = full.without(images=[image.image_id]) if own else full
        impostor_index = full.without(items=[image.item_id])
        for index, true in ((genuine_index, image.item_id), (impostor_index, None)):
            view = _view(kind, index, features)
            matches = pipeline.match_vectors(vecs, crops, view, config)
            record = {"path": image.image_id, "true": true, "crops": benchmark_candidates(matches)}
            if true is None:
                record["excluded"] = image.item_id
            else:
                record["pair"] = "other_image" if own else "augmented"
            records.append(record)
    return records


# --- fitting the adjustment ---------------------------------------------------------------
def _top(record: dict, base: Calibration) -> dict | None:
    """The record's top answer under ``base``: its candidate dict plus ``logit``."""
    best = None
    for crop in record["crops"]:
        if not crop:
            continue
        feats = candidate_features(
            np.array([c["similarity"] for c in crop]),
            np.array([c["inliers"] for c in crop]),
            np.array([c["spread"] for c in crop]),
            np.array([c.get("checked", True) for c in crop]),
        )
        z = base.logit(feats)
        i = int(np.argmax(z))
        if best is None or z[i] > best["logit"]:
            best = crop[i] | {"logit": float(z[i])}
    return best


def _platt(
    z: np.ndarray, y: np.ndarray, w: np.ndarray, max_scale: float, max_offset: float
) -> tuple[float, float]:
    """Weighted log-loss minimiser of ``sigmoid(a z + c)`` on a grid, bounded above."""
    best = (math.inf, 1.0, 0.0)
    scales = np.geomspace(0.02, max_scale, 60)
    offsets = np.linspace(-20.0, max_offset, 201)
    for a in scales:
        logits = a * z[:, None] + offsets[None, :]
        # log(1 + e^-x) for y=1, log(1 + e^x) for y=0, stable
        loss = np.where(y[:, None], np.logaddexp(0, -logits), np.logaddexp(0, logits))
        total = (w[:, None] * loss).sum(0)
        j = int(np.argmin(total))
        if total[j] < best[0]:
            best = (float(total[j]), float(a), float(offsets[j]))
    return best[1], best[2]


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


def fit_adjustment(
    records: Sequence[dict],
    base: Calibration,
    kind: str,
    content_digest: str,
    options: FitOptions = FitOptions(),
    reviewed: Sequence[dict] = (),
    reviews_digest: str = "",
) -> CatalogCalibration:
    """Fit a catalog's calibration on its `collect_pairs` records (module docstring), and on
    ``reviewed`` (records of reviewed sightings, `sightings.pairs`) when there are at least
    `FitOptions.min_reviewed` of them (`_fit_with_reviews`)."""
    now = datetime.now(UTC).isoformat()
    common = {"content_digest": content_digest, "base_digest": calibration_digest(base)}
    common |= {"kind": kind, "fitted_at": now, "reviews_digest": reviews_digest}
    if len(reviewed) >= options.min_reviewed:
        return _fit_with_reviews(records, reviewed, base, kind, options, common)
    tops = [(r, _top(r, base)) for r in records]
    tops = [(r, t) for r, t in tops if t is not None]
    genuine = [(r, t) for r, t in tops if r["true"] is not None]
    impostors = [(r, t) for r, t in tops if r["true"] is None]
    looked = {r["excluded"] for r, _ in impostors}
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
    z = np.array([t["logit"] for _, t in tops])
    right = np.array([t["item_id"] == r["true"] for r, t in tops])
    is_imp = np.array([r["true"] is None for r, _ in tops])
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


def _fit_with_reviews(
    records: Sequence[dict],
    reviewed: Sequence[dict],
    base: Calibration,
    kind: str,
    options: FitOptions,
    common: dict,
) -> CatalogCalibration:
    """The fit once people have reviewed enough sightings: real query photos first.

    The catalog's own pairs give the prior (`fit_adjustment` without reviews: what the catalog
    had before anyone reviewed); `matching.review_calibration.fit_on_reviews` then moves away
    from it only as far as cross-validation on the reviewed sightings says it should, and sets
    the threshold from their held-out answers (never below the kind's, or `UNTRAINED_FLOOR`).
    """
    from matching.review_calibration import fit_on_reviews

    own_fit = fit_adjustment(records, base, kind, common["content_digest"], options)
    prior = own_fit.apply(base) if own_fit.status == "fitted" else base
    floor = base.threshold if kind in TRAINED_KINDS else UNTRAINED_FLOOR
    rev = [r for r in reviewed if any(r["crops"])]
    fit = fit_on_reviews(
        rev,
        prior,
        floor,
        max_false_confirm=options.max_false_confirm,
        bound_z=options.bound_z,
        seed=options.seed,
    )
    genuine_r, impostors_r = review_pair_counts(rev)
    metrics = {
        "model": fit.model,
        "cv_log_loss": fit.cv_log_loss,
        "held_out": fit.held_out,
        "reviewed_open": sum(r["true"] is None for r in rev),
        "max_false_confirm": options.max_false_confirm,
        "bound_z": options.bound_z,
        "own_pairs": dict(own_fit.metrics),
    }
    return replace(
        own_fit,
        status="fitted",
        weights=fit.weights,
        bias=fit.bias,
        threshold=fit.threshold,
        metrics=metrics,
        reason="",
        reviewed_sightings=len(rev),
        reviewed_genuine=genuine_r,
        reviewed_impostors=impostors_r,
        reviews_digest=common["reviews_digest"],
        fitted_at=common["fitted_at"],
    )


def _look_alikes(impostors: Sequence[tuple[dict, dict]], imp_scores: np.ndarray) -> list[dict]:
    """The worst look-alike pairs (one per pair of items), highest adjusted score first."""
    order = np.argsort(-imp_scores)
    looks: list[dict] = []
    pairs_seen: set[frozenset] = set()
    imp_list = [t for _, t in impostors]
    imp_recs = [r for r, _ in impostors]
    for i in order:
        pair = frozenset((imp_recs[i]["excluded"], imp_list[i]["item_id"]))
        if pair in pairs_seen:
            continue
        pairs_seen.add(pair)
        looks.append(
            {
                "item": imp_recs[i]["excluded"],
                "image": imp_recs[i]["path"],
                "looks_like": imp_list[i]["item_id"],
                "score": round(float(imp_scores[i]), 4),
                "similarity": round(float(imp_list[i]["similarity"]), 4),
                "inliers": int(imp_list[i]["inliers"]),
            }
        )
        if len(looks) == LOOK_ALIKES:
            break
    return looks


def fit_catalog_calibration(
    pipeline,
    images: Sequence[CatalogImage],
    kind: str,
    content_digest: str,
    options: FitOptions = FitOptions(),
    progress: bool = False,
    reviewed: Sequence[dict] = (),
    reviews_digest: str = "",
) -> tuple[CatalogCalibration, list[dict]]:
    """Collect a catalog's own pairs and fit its calibration over the pipeline's kind
    calibration; returns it with the pair records (`collect_pairs`). With enough
    ``reviewed`` sightings the catalog's own pairs are the prior the reviews refit
    (`_fit_with_reviews`)."""
    records = collect_pairs(pipeline, images, kind, options, progress=progress)
    base = pipeline.calibration(kind)
    cal = fit_adjustment(records, base, kind, content_digest, options, reviewed, reviews_digest)
    return cal, records
