"""A catalog's calibration from its images: its pairs collected, then fitted
(`matching.calibration`)."""

from __future__ import annotations

from collections.abc import Sequence

from matching.calibration.fit import fit_adjustment
from matching.calibration.pair_record import PairRecord
from matching.calibration.pairs import CatalogImage, collect_pairs
from matching.calibration.record import CatalogCalibration, FitOptions


def fit_catalog_calibration(
    pipeline,
    images: Sequence[CatalogImage],
    kind: str,
    content_digest: str,
    options: FitOptions = FitOptions(),
    progress: bool = False,
    reviewed: Sequence[PairRecord] = (),
    reviews_digest: str = "",
) -> tuple[CatalogCalibration, list[PairRecord]]:
    """Collect a catalog's own pairs and fit its calibration over the pipeline's kind
    calibration; returns it with the pair records (`collect_pairs`). With enough
    ``reviewed`` sightings the catalog's own pairs are the prior the reviews refit
    (`matching.calibration.reviews`)."""
    records = collect_pairs(pipeline, images, kind, options, progress=progress)
    base = pipeline.calibration(kind)
    cal = fit_adjustment(records, base, kind, content_digest, options, reviewed, reviews_digest)
    return cal, records
