"""Why a photo matched a catalog item: keypoint correspondences and Grad-CAM, in one picture.

    python -m matching.explain CATALOG_DIR IMAGE --item ID [--kind animals] [--box x0,y0,x1,y1]
                               [--out explain.png]

The command line lives in `matching.explain_cli`. `explain_match` picks the crop of the photo
that the item was matched on (the detection whose candidates rank the item best, a given box,
or the whole photo), verifies it against the item's catalog images, computes Grad-CAM maps of
both, and draws them (`matching.explain_picture`: the crop and the catalog image with the
inlier lines, their heat-maps below, a caption).

The Grad-CAM maps show where each image's embedding supports the similarity to the other's
(`embedding.gradcam`). The numbers (`Explanation.numbers`) are the pipeline's own ranking of
the item for that crop (the same as the detect endpoint's) plus those of the drawn pair.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import BadInput, NotFound
from detection.detector import crop_box
from embedding.gradcam import gradcam
from matching.catalog_view import CatalogView
from matching.explain_picture import caption_lines, compose
from matching.features import LocalFeatures
from matching.pipeline import Match, Pipeline, PipelineConfig, Timer, image_id_of
from matching.verifier import MatchResult

#: Candidates ranked per crop when looking for the item (the explained item must be among them
#: for its score to be known).
EXPLAIN_TOP_K = 20

ImageLoader = Callable[[str], np.ndarray]


@dataclass
class Explanation:
    """One explained match.

    Attributes:
        picture: uint8 (H, W, 3) RGB, the composed picture (see the module docstring).
        numbers: JSON-ready ``{"item_id", "image_id", "box", "class", "rank", "score",
            "verified", "similarity", "inliers", "checked", "pair", "timings"}``; ``rank``,
            ``score``, ``similarity``, ``inliers`` are null when the item is not among the
            crop's `EXPLAIN_TOP_K` candidates. ``pair`` holds the drawn (crop, catalog image)
            pair's ``similarity``, ``inliers``, ``matches`` and ``spread``.
        crop: uint8 (h, w, 3) RGB, the query crop.
        reference: uint8 (Hr, Wr, 3) RGB, the catalog image drawn.
        crop_heat: float32 (h, w) in [0, 1], Grad-CAM of the crop towards the catalog image.
        reference_heat: float32 (Hr, Wr) in [0, 1], Grad-CAM of the catalog image towards
            the crop.
        pair: the keypoint verification of the drawn pair.
    """

    picture: np.ndarray
    numbers: dict
    crop: np.ndarray
    reference: np.ndarray
    crop_heat: np.ndarray
    reference_heat: np.ndarray
    pair: MatchResult


def parse_box(value: str | Sequence[float]) -> np.ndarray:
    """A box from ``"x0,y0,x1,y1"`` or four numbers: float64 (4,) xyxy in pixels.

    Raises:
        BadInput: not four finite numbers with x0 < x1 and y0 < y1.
    """
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        box = np.array([float(v) for v in parts], dtype=np.float64)
    except (TypeError, ValueError):
        raise BadInput(f"box must be four numbers x0,y0,x1,y1; got {value!r}") from None
    if box.shape != (4,) or not np.isfinite(box).all():
        raise BadInput(f"box must be four finite numbers x0,y0,x1,y1; got {value!r}")
    if box[0] >= box[2] or box[1] >= box[3]:
        raise BadInput(f"box must have x0 < x1 and y0 < y1; got {box.tolist()}")
    return box


def explain_match(
    pipeline: Pipeline,
    catalog: CatalogView,
    image: np.ndarray,
    item_id: str,
    box: np.ndarray | Sequence[float] | None = None,
    *,
    load_image: ImageLoader,
    config: PipelineConfig | None = None,
    height: int = 320,
    max_width: int = 1600,
) -> Explanation:
    """Explain why (or how well) a photo matches one catalog item.

    Args:
        pipeline: the loaded models.
        catalog: the catalog the item is in.
        image: uint8 (H, W, 3) RGB, the photo.
        item_id: the catalog item to explain.
        box: optional xyxy pixels of the crop to explain; by default the detection whose
            candidates rank ``item_id`` with the best score (the whole photo when none does).
        load_image: ``image_id -> uint8 (Hr, Wr, 3) RGB``, the catalog's images.
        config: matching options; ``top_k`` is raised to `EXPLAIN_TOP_K` and the whole photo
            is always a candidate crop.
        height: height of each picture row in pixels (lowered to keep ``max_width``).
        max_width: widest picture in pixels.

    Returns:
        An `Explanation`.

    Raises:
        NotFound: the item is not in the catalog.
        BadInput: a bad image or box (outside the photo, empty).
    """
    images = _item_images(catalog, item_id)
    config = config or PipelineConfig()
    config = dataclasses.replace(config, top_k=max(EXPLAIN_TOP_K, config.top_k), whole_frame=True)
    timer = Timer()
    with timer.stage("match"):
        crop, xyxy, class_name, rank, match = _choose_crop(
            pipeline, catalog, image, item_id, box, config
        )
    order = [match.image_id] if match is not None else []
    order += [im for im in images if im not in order]
    candidates = order[: max(1, config.refs_per_item)]
    with timer.stage("verify"):
        pair_index, pair, keypoint_size = _verify_pair(pipeline, catalog, crop, candidates)
    image_id = candidates[pair_index]
    reference = load_image(image_id)
    if keypoint_size is not None:  # the catalog image as loaded may differ from the keypoints'
        pair = pair.resized(crop.shape[:2], crop.shape[:2], keypoint_size, reference.shape[:2])
    embedder = pipeline.embedder_for(catalog.kind)
    with timer.stage("gradcam"):
        crop_vec, ref_vec = embedder.embed([crop, reference])
        crop_heat = gradcam(embedder, crop, ref_vec)
        reference_heat = gradcam(embedder, reference, crop_vec)
    numbers = {
        "item_id": item_id,
        "image_id": image_id,
        "box": [round(float(v), 1) for v in xyxy],
        "class": class_name,
        "rank": rank,
        "score": None if match is None else round(match.score, 4),
        "verified": bool(match is not None and match.verified),
        "similarity": None if match is None else round(match.similarity, 4),
        "inliers": None if match is None else match.inliers,
        "checked": bool(match is not None and match.checked),
        "pair": {
            "similarity": round(float(crop_vec @ ref_vec), 4),
            "inliers": pair.inliers,
            "matches": pair.matches,
            "spread": round(pair.spread, 4),
        },
    }
    with timer.stage("draw"):
        caption = caption_lines(numbers, EXPLAIN_TOP_K)
        picture = compose(
            crop, reference, pair, crop_heat, reference_heat, caption, height, max_width
        )
    numbers["timings"] = {k: round(v * 1000.0, 1) for k, v in timer.seconds.items()}
    return Explanation(picture, numbers, crop, reference, crop_heat, reference_heat, pair)


def _item_images(catalog: CatalogView, item_id: str) -> list[str]:
    """The item's catalog image ids (those with keypoints first, as the matcher uses them)."""
    images = list(catalog.images_of.get(item_id, []))
    for vector_id in catalog.index.images_of(item_id):
        if image_id_of(vector_id) not in images:
            images.append(image_id_of(vector_id))
    if not images:
        raise NotFound(f"no item {item_id!r} in catalog {catalog.catalog_id!r}")
    return images


def _choose_crop(
    pipeline: Pipeline,
    catalog: CatalogView,
    image: np.ndarray,
    item_id: str,
    box: np.ndarray | Sequence[float] | None,
    config: PipelineConfig,
) -> tuple[np.ndarray, np.ndarray, str, int | None, Match | None]:
    """``(crop, xyxy (4,), class name, 1-based rank of the item, its Match)`` of the crop to
    explain; rank and Match are None when the item is not among the crop's candidates."""
    if box is not None:
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.dtype != np.uint8:
            raise BadInput("the photo must be uint8 (H, W, 3) RGB")
        h, w = image.shape[:2]
        asked = parse_box(box)
        xyxy = np.clip(asked, 0, [w, h, w, h])
        if xyxy[2] - xyxy[0] < 1 or xyxy[3] - xyxy[1] < 1:
            raise BadInput(f"box {asked.tolist()} lies outside the {w}x{h} photo")
        crop = crop_box(image, xyxy)
        vectors = pipeline.embedder_for(catalog.kind).embed([crop])
        matches = pipeline.match_vectors(vectors, [crop], catalog, config)[0]
        rank, match = _find(matches, item_id)
        return crop, xyxy, "box", rank, match
    result = pipeline.match_frames([image], catalog, config)[0]
    det = result.detections
    best_row, best = len(det) - 1, None  # the whole-photo row unless a detection ranks the item
    best_rank = None
    for row, matches in enumerate(result.matches):
        rank, match = _find(matches, item_id)
        if match is not None and (
            best is None or (match.score, match.similarity) > (best.score, best.similarity)
        ):
            best_row, best, best_rank = row, match, rank
    names = det.data["class_name"]
    return det.data["crop"][best_row], det.xyxy[best_row], str(names[best_row]), best_rank, best


def _find(matches: list[Match], item_id: str) -> tuple[int | None, Match | None]:
    """1-based rank and `Match` of ``item_id`` among ranked matches, or (None, None)."""
    for i, match in enumerate(matches):
        if match.item_id == item_id:
            return i + 1, match
    return None, None


def _verify_pair(
    pipeline: Pipeline, catalog: CatalogView, crop: np.ndarray, image_ids: list[str]
) -> tuple[int, MatchResult, tuple[int, int] | None]:
    """Keypoint-match the crop against each catalog image that has keypoints.

    Returns:
        ``(index of the image with most inliers (the first on ties), its MatchResult,
        (h, w) its keypoints were computed at)``; ``(0, empty, None)`` without a verifier or
        without any keypoints.
    """
    if pipeline.verifier is None:
        return 0, MatchResult.empty(), None
    refs: dict[int, LocalFeatures] = {}
    for i, image_id in enumerate(image_ids):
        try:
            refs[i] = catalog.features.get(image_id)
        except (NotFound, KeyError):  # stored without keypoints (service: NotFound; folder: Key)
            continue
    if not refs:
        return 0, MatchResult.empty(), None
    query = pipeline.verifier.extract(crop)
    results = dict(zip(refs, pipeline.verifier.match_many(query, list(refs.values())), strict=True))
    best = max(results, key=lambda i: (results[i].inliers, -i))
    h, w = refs[best].image_size
    return best, results[best], (int(h), int(w))


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m matching.explain``: the command line, in `matching.explain_cli`."""
    from matching.explain_cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
