"""A catalog's calibration from its images: its pairs collected, then fitted
(`matching.calibration`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from matching.calibration.fit import fit_adjustment
from matching.calibration.pairs import CatalogImage, collect_pairs
from matching.calibration.record import CatalogCalibration, FitOptions


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
    ``reviewed`` sightings (real pairs first) the catalog's own pairs only fill in: fewer of
    its images are scored (``fill_to`` less the reviews, at least ``min_self_queries``)."""
    if len(reviewed) >= options.min_reviewed:
        queries = max(options.min_self_queries, options.max_queries - len(reviewed))
        options_self = replace(options, max_queries=min(options.max_queries, queries))
    else:
        options_self = options
    records = collect_pairs(pipeline, images, kind, options_self, progress=progress)
    base = pipeline.calibration(kind)
    cal = fit_adjustment(records, base, kind, content_digest, options, reviewed, reviews_digest)
    return cal, records
