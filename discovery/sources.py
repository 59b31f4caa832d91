"""What a discovery job groups: the photos nobody recognised.

* **Sightings** of the catalog (`sightings`): reviewed ``none`` (not in the catalog), or
  unreviewed whose best candidate scored below ``max_score`` (or had no candidate at all);
  kept by the catalog owner's tenant; the most recent ``limit``.
* **A camera-trap batch** (`traps`; for a catalog without sightings): each animal detected in
  the batch's photos whose best match with a known individual scored below ``max_score``
  (or that had no match: a batch run without a catalog); its crop is cut from the photo.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from core.errors import BadInput, NotFound, SightingError, StoreUnavailable
from core.images import decode_image, encode_jpeg
from discovery.model import Member
from discovery.store import crop_key
from jobs.records import JobStore
from sightings.model import Sighting
from sightings.repository import SightingRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Photo:
    """One photo to group: its member record and its crop's pixels (and JPEG bytes for a
    crop that must still be stored)."""

    member: Member
    pixels: np.ndarray
    jpeg: bytes | None = None


def unknown(sighting: Sighting, max_score: float) -> bool:
    """Reviewed ``none``, or unreviewed with no candidate at or above ``max_score``."""
    if sighting.state == "none":
        return True
    if sighting.state != "unreviewed":
        return False
    return sighting.best is None or sighting.best.score < max_score


def sighting_photos(
    repository: SightingRepository,
    catalog_id: str,
    tenant: str,
    max_score: float,
    limit: int,
) -> Iterator[Photo]:
    """The catalog's unknown sightings of ``tenant`` (newest first, at most ``limit``)."""
    taken = 0
    for s in repository.iter(catalog_id, newest_first=True):
        if taken >= limit:
            return
        if s.tenant != tenant or not unknown(s, max_score):
            continue
        try:
            data = repository.image(s, "crop")
            pixels = decode_image(data)
        except (NotFound, SightingError) as exc:
            log.warning("sighting %s left out: %s", s.sighting_id, exc)
            continue
        taken += 1
        member = Member(
            ref=s.sighting_id,
            source="sighting",
            crop_key=s.crop_key,
            file_name=s.source.file_name or "",
            camera=s.source.camera or s.source.stream_id or "",
            time=s.source.exif_time or s.kept_at,
        )
        yield Photo(member, pixels)


def trap_photos(
    jobs: JobStore,
    job_id: str,
    owner: str,
    catalog_id: str,
    max_score: float,
    limit: int,
) -> Iterator[Photo]:
    """Unmatched animal detections of a finished camera-trap batch of ``owner``.

    Raises:
        NotFound: no such batch (or another tenant's).
        BadInput: the job is no finished camera-trap batch.
    """
    try:
        record = jobs.get(job_id)
    except NotFound:
        raise NotFound(f"no job {job_id!r}", details={"trap_job": job_id}) from None
    if record.owner != owner:
        raise NotFound(f"no job {job_id!r}", details={"trap_job": job_id})
    if record.kind != "traps" or record.state != "done":
        raise BadInput(
            f"job {job_id!r} is no finished camera-trap batch ({record.kind}, {record.state})",
            details={"trap_job": job_id},
        )
    prefix = str(record.params.get("prefix", ""))
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    lines = jobs.get_file(job_id, "results.jsonl").decode().splitlines()
    latest: dict[str, dict] = {}
    for line in lines:
        if line.strip():
            rec = json.loads(line)
            latest[rec["file"]] = rec
    taken = 0
    for file, rec in sorted(latest.items()):
        wanted = [
            (k, d)
            for k, d in enumerate(rec.get("detections") or [])
            if max((m.get("score", 0.0) for m in d.get("matches") or []), default=0.0) < max_score
        ]
        if not wanted or rec.get("error"):
            continue
        try:
            photo = decode_image(jobs.store.get(prefix + file))
        except (NotFound, StoreUnavailable, SightingError) as exc:
            log.warning("trap photo %s left out: %s", file, exc)
            continue
        for k, det in wanted:
            if taken >= limit:
                return
            x1, y1, x2, y2 = (int(round(v)) for v in det["box"])
            h, w = photo.shape[:2]
            x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
            if x2 - x1 < 8 or y2 - y1 < 8:
                continue
            crop = np.ascontiguousarray(photo[y1:y2, x1:x2])
            ref = f"{file}#{k}"
            name = f"{job_id}-{hashlib.sha256(ref.encode()).hexdigest()[:16]}"
            member = Member(
                ref=ref,
                source="trap",
                crop_key=crop_key(catalog_id, name),
                file_name=file,
                camera=str(rec.get("camera") or ""),
                time=str(rec.get("time") or ""),
            )
            taken += 1
            yield Photo(member, crop, encode_jpeg(crop))
