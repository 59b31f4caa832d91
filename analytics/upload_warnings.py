"""Warnings on reference photos as they are uploaded: what a merchant should re-take.

Per image: the quality flags of `analytics.quality.assess` (``dark``, ``over_exposed``,
``blurry``, ``low_information``, ``odd_size``, ``greyscale``), ``no_object`` (the detector
found nothing in it: search will match the whole photo only), and duplicates, each as
``exact_duplicate|near_duplicate of image X of item Y``: of another image of the same upload
(by pixels and difference hash, as ``GET /v1/catalogs/<id>/quality`` says), or of an image
already in the catalog (its embedding within `DUPLICATE_SIMILARITY` of the new one's).
A warning's first word is its code, which the ``refuse`` option names.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from analytics.pipeline import AnalyticsConfig
from analytics.quality import assess, duplicate_flags
from core.errors import BadInput
from matching.catalog_view import CatalogView
from matching.pipeline import CROP_TAG, Reference

DUPLICATE_SIMILARITY = AnalyticsConfig().duplicate_similarity  # the analytics' look-alike cosine
CODES = (
    "dark",
    "over_exposed",
    "blurry",
    "low_information",
    "odd_size",
    "greyscale",
    "no_object",
    "exact_duplicate",
    "near_duplicate",
)


def refuse_codes(value: str | None) -> frozenset[str]:
    """The codes of a ``refuse`` option: comma-separated codes, ``all`` or nothing.

    Raises:
        BadInput: an unknown code.
    """
    if not value:
        return frozenset()
    codes = {c.strip() for c in value.split(",") if c.strip()}
    if "all" in codes:
        return frozenset(CODES)
    unknown = sorted(codes - set(CODES))
    if unknown:
        raise BadInput(f"refuse: unknown warning {unknown}; known: all, {', '.join(CODES)}")
    return frozenset(codes)


def upload_warnings(
    images: Sequence[np.ndarray],
    refs: Sequence[Reference],
    names: Sequence[str],
    view: CatalogView | None,
) -> list[list[str]]:
    """The warnings of each uploaded image, in upload order.

    Args:
        images: uint8 (H, W, 3) RGB, as uploaded.
        refs: their `Reference` (vectors; ``objects`` from the detector).
        names: what to call each in a duplicate warning (e.g. ``upload 2``).
        view: the catalog as it was before this upload (None: empty), for duplicates of
            images already stored.
    """
    reports = [assess(image) for image in images]
    warnings = [list(r.flags) for r in reports]
    for warn, ref in zip(warnings, refs, strict=True):
        if ref.objects == 0:
            warn.append("no_object")
    for i, j, kind in duplicate_flags(reports):
        warnings[j].append(f"{kind} of {names[i]}")
    if view is not None and len(view.index) and refs:
        whole = np.stack([ref.vectors[0] for ref in refs]).astype(np.float32)
        hits = view.index.search(whole, 1)
        for q, warn in enumerate(warnings):
            if hits.item_ids[q] and hits.scores[q, 0] >= DUPLICATE_SIMILARITY:
                image_id = hits.image_ids[q][0].removesuffix(CROP_TAG)
                kind = "exact_duplicate" if hits.scores[q, 0] >= 0.9999 else "near_duplicate"
                warn.append(f"{kind} of image {image_id} of item {hits.item_ids[q][0]}")
    return warnings
