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
from matching.calibration.record import FitOptions
from matching.catalog_view import CatalogView, FeatureCache
from matching.features import LocalFeatures
from matching.index import ItemHits
from matching.pipeline import Pipeline, PipelineConfig, image_id_of
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
