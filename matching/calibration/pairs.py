"""The catalog scored against itself: its impostor and genuine pairs (`matching.calibration`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from tqdm import tqdm

from core.errors import NotFound
from embedding import MIRROR_KINDS
from embedding.photos import augment
from matching.calibration.pair_record import Candidate, PairRecord
from matching.calibration.record import FitOptions
from matching.catalog_view import CatalogView, FeatureCache
from matching.features import LocalFeatures
from matching.index import IndexWithout, VectorIndex
from matching.pipeline import Pipeline, PipelineConfig
from matching.report import benchmark_candidates


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


# --- collecting the catalog's own pairs ----------------------------------------------------
def augmented_view(image: np.ndarray, rng: np.random.Generator, flip: bool) -> np.ndarray:
    """``uint8 (H, W, 3) -> uint8 (h, w, 3)``: `embedding.photos.augment` (crop of 55-100 %
    of the area, colour jitter, optional flip), then down-scaled by 0.5-1 and back (a photo
    taken further away: fewer fine details to match)."""
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

    def verify_matches(self, q_pts, r_pts, scores, ref):  # RANSAC: cheap, not memoised
        return self.verifier.verify_matches(q_pts, r_pts, scores, ref)


def _view(
    kind: str,
    index: VectorIndex | IndexWithout,
    images: Sequence[CatalogImage],
    features: dict[str, LocalFeatures],
) -> CatalogView:
    """The catalog of ``images`` (those ``index`` searches) as the matcher sees it."""
    images_of: dict[str, list[str]] = {}
    for image in images:
        if image.image_id in features and image.image_id not in images_of.get(image.item_id, []):
            images_of.setdefault(image.item_id, []).append(image.image_id)

    def load(image_id: str) -> LocalFeatures:
        if image_id not in features:
            raise NotFound(f"catalog image {image_id!r} has no keypoints")
        return features[image_id]

    return CatalogView(
        catalog_id="calibration",
        kind=kind,
        index=index,  # type: ignore[arg-type]  (an IndexWithout: search and len)
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
) -> list[PairRecord]:
    """Score a catalog's sampled images against the catalog (module docstring).

    Args:
        pipeline: a `matching.pipeline.Pipeline` (its kind calibration scores the pairs).
        images: every image of the catalog.
        kind: the catalog's kind.
        config: the `PipelineConfig` of the matches (default: the production defaults).

    Returns:
        `PairRecord` s (`bench.metrics`' format as JSON), two per sampled image: the genuine
        one (``true`` its item, ``pair``: ``other_image`` or ``augmented``) and the impostor
        one (``true`` None, ``excluded``: its item).
    """
    # local ranking without a time budget: the fit runs as a job, not in a request, and its
    # pairs must not depend on how busy the machine was
    config = config or PipelineConfig(verify_crops=options.verify_crops, local_budget_s=0.0)
    once = _OnceVerifier(pipeline.verifier) if pipeline.verifier is not None else None
    pipeline = Pipeline(pipeline.detector, pipeline.embedders, once, pipeline.calibrations)
    images = [im for im in images if len(im.vectors)]
    if not images:
        return []
    vectors = np.concatenate([im.vectors for im in images])
    items = [im.item_id for im in images for _ in im.tags]
    ids = [im.image_id + t for im in images for t in im.tags]
    full = VectorIndex(vectors.shape[1])
    full.add(vectors, items, ids)
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
        # the catalog without the query image (when its item has others), and without its item
        others = [im for im in images if im.image_id != image.image_id] if own else images
        genuine_index = full.without([image.image_id + t for t in image.tags]) if own else full
        strangers = [im for im in images if im.item_id != image.item_id]
        impostor_index = full.without(full.images_of(image.item_id))
        for index, kept, true in (
            (genuine_index, others, image.item_id),
            (impostor_index, strangers, None),
        ):
            view = _view(kind, index, kept, features)
            matches = pipeline.match_vectors(vecs, crops, view, config)
            # the candidates rounded as a benchmark dump rounds them, so a refit from the
            # stored records (`PairRecord.to_dict`) fits what this one fits
            ranked = tuple(
                tuple(Candidate.from_dict(c) for c in crop)
                for crop in benchmark_candidates(matches)
            )
            if true is None:
                records.append(PairRecord(image.image_id, None, ranked, excluded=image.item_id))
            else:
                pair = "other_image" if own else "augmented"
                records.append(PairRecord(image.image_id, true, ranked, pair=pair))
    return records
