"""Matching a photo against a catalog: detect (every object), search (a ranked list) and
explain (why a photo matches one item)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.errors import NotFound
from core.images import decode_image
from labels.result import LabelResult
from matching.explain import Explanation, explain_match, parse_box
from matching.pipeline import Timer
from matching.result import FrameResult, Match, Ranking
from service.access import Caller, calibration_source, catalog_for_matching
from service.labels import check_label_source, frame_labels, label_source
from service.options import DetectOptions, ExplainOptions, SearchOptions
from service.sightings import keep_detected, keep_searched, wants_keep
from service.state import SightingState
from sightings.model import SightingSource


@dataclass
class Detected:
    """A matched frame: its detections (and their labels when asked), with what scored it."""

    result: FrameResult  # timings: seconds per stage, the edge's own stages included
    labels: list[LabelResult | None] | None  # per detection; None: not asked
    catalog_version: int
    calibration: str  # catalog or kind_default
    sighting_ids: list[str] | None = None  # kept as sightings (keep); None: not asked


@dataclass
class Searched:
    """A photo's ranked list of items."""

    matches: list[Match]
    timings: dict[str, float]  # seconds per stage
    catalog_version: int
    calibration: str
    ranking: Ranking = field(default_factory=Ranking)  # which ranking produced it
    sighting_ids: list[str] | None = None  # kept as sightings (keep); None: not asked


@dataclass
class Explained:
    explanation: Explanation
    catalog_version: int


def detect(
    s: SightingState,
    caller: Caller,
    catalog_id: str,
    pixels: np.ndarray,
    options: DetectOptions,
    timer: Timer | None = None,
    source: SightingSource | None = None,
) -> Detected:
    """Every object of a frame and the catalog items it is (labelled with ``options.labels``
    or ``options.prompts``).

    ``timer`` holds the caller's own stages so far (e.g. decode); they lead the timings.
    """
    timer = timer or Timer()
    view = catalog_for_matching(s, caller, catalog_id)
    asked = label_source(options)
    check_label_source(s, asked)
    with s.model_lock:
        result = s.pipeline.match_frames([pixels], view, options.config(s.settings))[0]
    labels = None
    if asked is not None:
        with timer.stage("labels"):
            labels = frame_labels(s, caller, result, asked)
    result.timings = timer.seconds | result.timings
    kept = None
    if wants_keep(s, options.keep):  # each matched object kept as a sighting to review
        source = source or SightingSource("detect")
        kept = keep_detected(s, caller, view, result, pixels, source).sighting_ids
    return Detected(result, labels, view.version, calibration_source(s, view), kept)


def search(
    s: SightingState,
    caller: Caller,
    catalog_id: str,
    pixels: np.ndarray,
    options: SearchOptions,
    source: SightingSource | None = None,
) -> Searched:
    """A ranked list of catalog items for a whole photo: the photo and its detected objects
    are matched, items ranked by their best score; nothing cut unless ``min_score``."""
    view = catalog_for_matching(s, caller, catalog_id)
    with s.model_lock:
        result = s.pipeline.match_frames([pixels], view, options.config(s.settings))[0]
    matches = result.ranked_items(options.top_k)
    kept = None
    if wants_keep(s, options.keep):  # the photo and its ranked list kept as one sighting
        source = source or SightingSource("search")
        kept = keep_searched(s, caller, view, matches, pixels, source).sighting_ids
    return Searched(
        matches, result.timings, view.version, calibration_source(s, view), result.ranking, kept
    )


def explain(
    s: SightingState, caller: Caller, catalog_id: str, pixels: np.ndarray, options: ExplainOptions
) -> Explained:
    """Why a photo matches one catalog item: keypoint correspondences and Grad-CAM heat-maps
    of the crop ``options.box`` (default: the detection that ranks the item best)."""
    view = catalog_for_matching(s, caller, catalog_id)
    item_id = options.item_id
    if item_id not in view.images_of and not view.index.images_of(item_id):
        raise NotFound(f"no item {item_id!r} in catalog {catalog_id!r}")
    box = None if options.box is None else parse_box(options.box)  # 422: x0 >= x1 or y0 >= y1

    def load_image(image_id: str) -> np.ndarray:
        _, data = s.repository.get_image(catalog_id, image_id)
        return decode_image(data, max_pixels=s.settings.max_image_pixels)

    with s.model_lock:
        explanation = explain_match(
            s.pipeline,
            view,
            pixels,
            item_id,
            box,
            load_image=load_image,
            config=options.config(s.settings),
        )
    return Explained(explanation, view.version)
