"""Keeping answers as sightings: a matched frame (or a search's ranked list) in, documents out.

`keep_frame` keeps every matched object of a `FrameResult` (detect, video jobs, trap batches),
`keep_ranked` a search's one ranked list for the whole photo, and `TrackKeeper` one sighting per
stream track: its best view (the highest top score, then similarity, among the frames whose
keypoints ran), rewritten in place while the track lives, reviews kept. After each write the
catalog's retention limit is applied (`SightingRepository.enforce_retention`).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np

from catalog.manifest import utc_now
from core.images import encode_jpeg
from matching.result import FrameResult, Match
from sightings.model import Candidate, Sighting, SightingSource
from sightings.repository import SightingRepository, crop_key, new_sighting_id, photo_key


@dataclass(frozen=True)
class KeepContext:
    """What every sighting of one answer shares."""

    catalog_id: str
    tenant: str
    catalog_version: int
    source: SightingSource
    calibration: str = "kind_default"
    embedder: str | None = None
    retention: int = 10_000  # the catalog's limit (`Settings.sightings_retention`)
    keep_photo: bool = True  # also store the photo each sighting comes from


@dataclass(frozen=True)
class Kept:
    """What keeping wrote: the sightings' ids, and those retention dropped to make room."""

    sighting_ids: list[str]
    dropped: list[str]


def candidates_of(matches: Sequence[Match]) -> tuple[Candidate, ...]:
    """A detection's ranked matches as stored candidates (full precision: the refit reads
    them)."""
    return tuple(
        Candidate(
            item_id=m.item_id,
            image_id=m.image_id,
            score=float(m.score),
            similarity=float(m.similarity),
            inliers=int(m.inliers),
            spread=float(m.spread),
            checked=bool(m.checked),
            verified=bool(m.verified),
        )
        for m in matches
    )


def exif_time(data: bytes | None) -> str | None:
    """The photo's EXIF DateTimeOriginal (else DateTime) as ISO 8601, or None."""
    if not data:
        return None
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            exif = im.getexif()
            raw = exif.get_ifd(0x8769).get(0x9003) or exif.get(0x0132)
        if not raw:
            return None
        return datetime.strptime(str(raw).strip(), "%Y:%m:%d %H:%M:%S").isoformat()
    except (OSError, ValueError, SyntaxError, KeyError):
        return None


def _sighting(
    ctx: KeepContext,
    box: np.ndarray,
    crop: np.ndarray,
    matches: Sequence[Match],
    *,
    class_name: str = "",
    confidence: float = 0.0,
    source: SightingSource | None = None,
) -> Sighting:
    sid = new_sighting_id()
    now = utc_now()
    return Sighting(
        sighting_id=sid,
        catalog_id=ctx.catalog_id,
        tenant=ctx.tenant,
        catalog_version=ctx.catalog_version,
        kept_at=now,
        updated_at=now,
        box=tuple(float(v) for v in np.asarray(box).reshape(4)),
        source=source or ctx.source,
        candidates=candidates_of(matches),
        crop_key=crop_key(ctx.catalog_id, sid),
        photo_key=photo_key(ctx.catalog_id, sid) if ctx.keep_photo else None,
        crop_size=(int(crop.shape[1]), int(crop.shape[0])),
        class_name=class_name,
        confidence=float(confidence),
        calibration=ctx.calibration,
        embedder=ctx.embedder,
    )


def keep_frame(
    repository: SightingRepository,
    result: FrameResult,
    frame: np.ndarray | None,
    ctx: KeepContext,
) -> Kept:
    """Keep every detection of ``result`` that has candidates (one sighting each).

    Args:
        frame: uint8 (H, W, 3) RGB, the photo (stored once per sighting when
            ``ctx.keep_photo``); None: no photo.
    """
    det = result.detections
    crops = det.data.get("crop", [])
    names = det.class_name
    photo = encode_jpeg(frame, 85) if frame is not None and ctx.keep_photo else None
    ids = []
    for row in range(len(det)):
        if not result.matches[row] or row >= len(crops):
            continue
        s = _sighting(
            ctx,
            det.xyxy[row],
            crops[row],
            result.matches[row],
            class_name=str(names[row]) if len(names) else "",
            confidence=float(det.confidence[row]),
        )
        if photo is None:
            s = replace(s, photo_key=None)
        repository.add(s, encode_jpeg(crops[row], 90), photo)
        ids.append(s.sighting_id)
    dropped = repository.enforce_retention(ctx.catalog_id, ctx.retention) if ids else []
    return Kept(ids, dropped)


def keep_ranked(
    repository: SightingRepository,
    matches: Sequence[Match],
    photo: np.ndarray,
    ctx: KeepContext,
) -> Kept:
    """Keep a search's ranked list as one sighting of the whole photo (its crop)."""
    if not matches:
        return Kept([], [])
    h, w = photo.shape[:2]
    s = replace(_sighting(ctx, np.array([0, 0, w, h]), photo, matches), photo_key=None)
    repository.add(s, encode_jpeg(photo, 90))
    return Kept([s.sighting_id], repository.enforce_retention(ctx.catalog_id, ctx.retention))


def _quality(matches: Sequence[Match]) -> tuple[float, float]:
    best = matches[0] if matches else None
    return (best.score, best.similarity) if best is not None else (-1.0, -2.0)


class TrackKeeper:
    """One sighting per track of one stream (module docstring); one per open stream."""

    def __init__(self) -> None:
        self._tracks: dict[int, tuple[str, tuple[float, float]]] = {}
        self._lock = threading.Lock()

    def keep(
        self,
        repository: SightingRepository,
        result: FrameResult,
        frame: np.ndarray,
        ctx: KeepContext,
    ) -> Kept:
        """Keep new tracks, and better views of known ones (from frames that verified)."""
        det = result.detections
        crops = det.data.get("crop", [])
        names = det.class_name
        ids: list[str] = []
        photo: bytes | None = None
        with self._lock:
            for row in range(len(det)):
                tid = int(result.track_ids[row])
                matches = result.matches[row]
                if tid < 0 or not matches or row >= len(crops):
                    continue
                quality = _quality(matches)
                known = self._tracks.get(tid)
                if known is not None and (quality <= known[1] or not result.verified_now[row]):
                    continue
                if photo is None and ctx.keep_photo:
                    photo = encode_jpeg(frame, 85)
                source = replace(ctx.source, track_id=tid)
                s = _sighting(
                    ctx,
                    det.xyxy[row],
                    crops[row],
                    matches,
                    class_name=str(names[row]) if len(names) else "",
                    confidence=float(det.confidence[row]),
                    source=source,
                )
                crop = encode_jpeg(crops[row], 90)
                if known is None:
                    repository.add(s, crop, photo)
                    self._tracks[tid] = (s.sighting_id, quality)
                    ids.append(s.sighting_id)
                    continue
                s = replace(s, sighting_id=known[0], crop_key=crop_key(ctx.catalog_id, known[0]))

                def better(stored: Sighting, q: tuple[float, float] = quality) -> bool:
                    best = stored.best
                    return best is None or q > (best.score, best.similarity)

                if repository.replace_view(s, crop, photo, better) is not None:
                    ids.append(known[0])
                self._tracks[tid] = (known[0], quality)
        dropped = repository.enforce_retention(ctx.catalog_id, ctx.retention) if ids else []
        return Kept(ids, dropped)
