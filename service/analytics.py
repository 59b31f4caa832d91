"""Collection analytics of a catalog (a job, kind ``analytics``) and its images' quality."""

from __future__ import annotations

from dataclasses import dataclass

from analytics.quality import assess, duplicate_flags
from core.images import decode_image
from jobs import JobRecord
from service.access import Caller, owned_manifest
from service.jobs import submit_job
from service.state import SightingState


@dataclass(frozen=True)
class ImageQuality:
    item_id: str
    image_id: str
    warnings: list[str]  # dark, blurry, ..., exact/near duplicate of image X of item Y
    measures: dict


def start_analytics(s: SightingState, caller: Caller, catalog_id: str, params: dict) -> JobRecord:
    """Queue the analytics of the caller's catalog (404 unknown or foreign)."""
    owned_manifest(s, caller, catalog_id)
    return submit_job(s, caller, "analytics", {"catalog_id": catalog_id} | params)


def catalog_quality(s: SightingState, caller: Caller, catalog_id: str) -> list[ImageQuality]:
    """Quality flags of every image of the catalog."""
    manifest = owned_manifest(s, caller, catalog_id)
    refs, reports = [], []
    for item in manifest.items.values():
        for image_id in item.images:
            _, data = s.repository.get_image(catalog_id, image_id)
            refs.append((item.item_id, image_id))
            reports.append(assess(decode_image(data, max_pixels=s.settings.max_image_pixels)))
    warnings = [[*r.flags] for r in reports]
    for i, j, kind in duplicate_flags(reports):
        warnings[j].append(f"{kind} of image {refs[i][1]} of item {refs[i][0]}")
    return [
        ImageQuality(it, im, w, r.measures)
        for (it, im), w, r in zip(refs, warnings, reports, strict=True)
    ]
