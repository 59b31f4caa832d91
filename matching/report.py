"""The one serialiser of `matching.result`: every JSON shape of a match, a detection and a
frame is made here, and drawing a matched frame (`draw_frame`).

The shapes on the wire (field names and rounding are the API's contract):

- a match (`match_to_dict`): ``{"item_id", "image_id", "similarity", "inliers", "verified",
  "score"}``;
- a detection (`detection_to_dict`): ``{"box", "class", "confidence", "matches"}``, and for a
  tracked frame ``{"track_id", ..., "verified_now"}`` around it;
- a frame (`frame_to_dict`): ``{"detections", "timings"}`` (detect; streams add
  ``stream_id`` and ``frame_index`` in front, `stream_frame_to_dict`); search's ranked list
  (`search_to_dict`): ``{"matches", "timings"}``; timings in ms (`timings_to_dict`); which
  ranking produced an answer (`ranking_to_dict`): ``{"method", "candidates", "checked",
  "partial"}``;
- one flat row per detection (`flat_row`), in two namings: the video endpoint's ndjson line
  (`VIDEO_LINE`, `video_lines`) and the stream client's JSON line (`CLIENT_ROW`,
  `client_rows`, made from a stream answer as the client receives it, read back with
  `match_from_dict`); the video's closing ``{"summary": ...}`` line (`video_summary`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import cv2
import numpy as np

from detection.draw import draw_detections
from matching.result import FrameResult, Match, Ranking

TIMING_STAGES = ("decode", "detect", "embed", "search", "verify")

#: (field, JSON key) of the video endpoint's ndjson line, in order.
VIDEO_LINE = (
    ("frame", "frame"),
    ("time", "time"),
    ("track", "track"),
    ("box", "box"),
    ("class", "class"),
    ("item", "item"),
    ("score", "score"),
    ("verified", "verified"),
    ("verified_now", "verified_now"),
)
#: (field, JSON key) of the stream client's JSON line (``--out``), in order.
CLIENT_ROW = (
    ("frame", "frame_index"),
    ("time", "time_s"),
    ("track", "track_id"),
    ("box", "box"),
    ("class", "class"),
    ("confidence", "confidence"),
    ("item", "item"),
    ("score", "score"),
    ("verified", "verified"),
    ("verified_now", "verified_now"),
)


def benchmark_candidates(matches: Sequence[Sequence[Match]]) -> list[list[dict]]:
    """Every crop's candidates as a benchmark dump records them (`bench.accuracy --json`,
    re-scored by `bench.calibrate`): with ``spread`` and ``checked``, rounded finer;
    ``inliers`` is what the score read (local ranking's weighted evidence, `Match.evidence`,
    with the plain count as ``raw_inliers``)."""
    return [
        [
            {
                "item_id": m.item_id,
                "similarity": round(m.similarity, 5),
                "inliers": m.inliers if m.evidence is None else round(m.evidence, 4),
                "raw_inliers": m.inliers,
                "spread": round(m.spread, 4),
                "checked": m.checked,
                "score": round(m.score, 5),
                "verified": m.verified,
            }
            for m in crop
        ]
        for crop in matches
    ]


def match_to_dict(match: Match) -> dict:
    """One match as the API's JSON object."""
    return {
        "item_id": match.item_id,
        "image_id": match.image_id,
        "similarity": round(match.similarity, 4),
        "inliers": match.inliers,
        "verified": match.verified,
        "score": round(match.score, 4),
    }


def match_from_dict(body: Mapping) -> Match:
    """A `Match` read back from `match_to_dict`'s JSON (missing fields: empty, 0, False;
    ``spread`` and ``checked`` are not on the wire)."""
    return Match(
        item_id=str(body.get("item_id", "")),
        image_id=str(body.get("image_id", "")),
        similarity=float(body.get("similarity", 0.0)),
        inliers=int(body.get("inliers", 0)),
        spread=0.0,
        checked=False,
        verified=bool(body.get("verified", False)),
        score=float(body.get("score", 0.0)),
    )


def timings_to_dict(timings: Mapping[str, float]) -> dict:
    """Seconds per stage as the API's ``timings``: milliseconds, 0.1 ms."""
    return {k: round(v * 1000.0, 1) for k, v in timings.items()}


def _box(xyxy: np.ndarray) -> list[float]:
    return [round(float(v), 1) for v in xyxy]


def _track(result: FrameResult, row: int) -> int | None:
    tid = int(result.track_ids[row])
    return tid if tid >= 0 else None


def _class_name(result: FrameResult, row: int) -> str:
    names = result.detections.class_name
    return str(names[row]) if len(names) else ""


def detection_to_dict(result: FrameResult, row: int) -> dict:
    """One detection with its matches; a tracked frame's adds ``track_id`` (None while not
    tracked yet) first and ``verified_now`` last."""
    det = result.detections
    body = {
        "box": _box(det.xyxy[row]),
        "class": _class_name(result, row),
        "confidence": round(float(det.confidence[row]), 4),
        "matches": [match_to_dict(m) for m in result.matches[row]],
    }
    if not result.tracked:
        return body
    return {
        "track_id": _track(result, row),
        **body,
        "verified_now": bool(result.verified_now[row]),
    }


def frame_to_dict(result: FrameResult) -> dict:
    """A frame's detections and their matches as the detect endpoint's JSON."""
    return {
        "detections": [detection_to_dict(result, i) for i in range(len(result.detections))],
        "timings": timings_to_dict(result.timings),
    }


def stream_frame_to_dict(result: FrameResult, stream_id: str, frame_index: int) -> dict:
    """A stream frame's answer: ``{"stream_id", "frame_index", "detections", "timings"}``."""
    return {"stream_id": stream_id, "frame_index": frame_index, **frame_to_dict(result)}


def ranking_to_dict(ranking: Ranking) -> dict:
    """Which ranking produced an answer: ``{"method", "candidates", "checked", "partial"}``
    (detect and search add it as ``ranking``)."""
    return {
        "method": ranking.method,
        "candidates": ranking.candidates,
        "checked": ranking.checked,
        "partial": ranking.partial,
    }


def search_to_dict(
    matches: Sequence[Match], timings: Mapping[str, float], ranking: Ranking | None = None
) -> dict:
    """The search endpoint's ranked list (see `FrameResult.ranked_items`), and ``ranking``
    when given."""
    body = {"matches": [match_to_dict(m) for m in matches], "timings": timings_to_dict(timings)}
    if ranking is not None:
        body["ranking"] = ranking_to_dict(ranking)
    return body


def flat_row(
    keys: Sequence[tuple[str, str]],
    *,
    frame: int,
    time_s: float,
    track: int | None,
    box: list[float],
    class_name: str | None,
    best: Match | None,
    verified_now: bool,
    confidence: float | None = None,
) -> dict:
    """One detection as a flat row: its best match's item, score and verdict.

    Args:
        keys: which fields, named how (`VIDEO_LINE` or `CLIENT_ROW`).
        frame: the frame's index in its source; ``time_s``: its time in seconds.
        track: the track id (None: not tracked).
        box: [x1, y1, x2, y2] pixels, already rounded.
        best: the best candidate (None: no match).
    """
    values = {
        "frame": frame,
        "time": round(time_s, 3),
        "track": track,
        "box": box,
        "class": class_name,
        "confidence": confidence,
        "item": best.item_id if best else None,
        "score": round(best.score, 4) if best else None,
        "verified": bool(best.verified) if best else False,
        "verified_now": bool(verified_now),
    }
    return {key: values[name] for name, key in keys}


def video_lines(result: FrameResult, frame: int, fps: float) -> Iterator[dict]:
    """The video endpoint's ndjson objects of one frame (`VIDEO_LINE`): one per detection."""
    for i in range(len(result.detections)):
        yield flat_row(
            VIDEO_LINE,
            frame=frame,
            time_s=frame / fps,
            track=_track(result, i),
            box=_box(result.detections.xyxy[i]),
            class_name=_class_name(result, i),
            best=result.best(i),
            verified_now=bool(result.verified_now[i]),
        )


def video_summary(
    *,
    frames: int,
    seconds: float,
    verify_calls: int,
    stages: Mapping[str, float],
    video_fps: float,
    sighting_ids: Sequence[str] | None = None,
) -> dict:
    """The video endpoint's last line: ``{"summary": {...}}`` over the processed frames
    (``seconds`` and ``stages`` in seconds; ``sighting_ids`` with keep: one per track)."""
    summary = {
        "frames": frames,
        "fps": round(frames / seconds, 2) if seconds else 0.0,
        "video_fps": round(video_fps, 3),
        "verify_calls": verify_calls,
        "verify_per_frame": round(verify_calls / max(1, frames), 4),
        "seconds": round(seconds, 3),
        "stages_ms": timings_to_dict(stages),
    }
    if sighting_ids is not None:
        summary["sighting_ids"] = list(sighting_ids)
    return {"summary": summary}


def client_rows(
    answer: Mapping, frame: int, time_s: float, scale: float, size: tuple[int, int]
) -> list[dict]:
    """The stream client's JSON lines (`CLIENT_ROW`) of one stream answer.

    Args:
        answer: the stream endpoint's JSON (`stream_frame_to_dict`), as received.
        frame: the frame's index in the client's source; ``time_s``: its time there.
        scale: sent image size / source frame size: boxes are mapped back to the source's
            pixels and clipped to ``size`` (W, H).

    Returns:
        One row per detection; the item is the best-scored match (verified or not), None when
        there is none.
    """
    w, h = size
    rows = []
    for det in answer.get("detections") or []:
        box = [float(v) / scale for v in det.get("box", [0, 0, 0, 0])]
        box = [min(max(v, 0.0), float(lim)) for v, lim in zip(box, (w, h, w, h), strict=True)]
        matches = [match_from_dict(m) for m in det.get("matches") or []]
        rows.append(
            flat_row(
                CLIENT_ROW,
                frame=frame,
                time_s=time_s,
                track=det.get("track_id"),
                box=[round(v, 1) for v in box],
                class_name=det.get("class"),
                confidence=det.get("confidence"),
                best=max(matches, key=lambda m: m.score) if matches else None,
                verified_now=bool(det.get("verified_now", False)),
            )
        )
    return rows


def _label(class_name: str, matches: list[Match]) -> str:
    if not matches:
        return class_name
    best = matches[0]
    mark = "OK " if best.verified else ""
    return f"{mark}{best.item_id} {best.score:.2f}"


def draw_frame(
    image: np.ndarray,
    result: FrameResult,
    reference: Callable[[str], np.ndarray | None] | None = None,
    *,
    thumb: int = 128,
) -> np.ndarray:
    """Boxes and best matches drawn on a copy of the frame, with a gallery strip below.

    Args:
        image: uint8 (H, W, 3) RGB, the frame the result belongs to.
        result: its matches.
        reference: optional ``image_id -> uint8 RGB`` for catalog thumbnails in the gallery.
        thumb: gallery thumbnail height in pixels.

    Returns:
        uint8 (H', W, 3) RGB: the annotated frame, plus one gallery row when ``reference``
        is given and any detection has a match.
    """
    det = result.detections
    names = det.data.get("class_name", [""] * len(det))
    labels = [_label(str(names[i]), result.matches[i]) for i in range(len(det))]
    verified = [bool(m and m[0].verified) for m in result.matches]
    colors = [(40, 200, 40) if v else (230, 160, 20) for v in verified]
    drawn = draw_detections(image, det.xyxy, labels, colors)
    if reference is None:
        return drawn
    tiles = []
    seen: set[str] = set()
    for i in np.argsort([-(m[0].score if m else 0.0) for m in result.matches]):
        if not result.matches[i] or result.matches[i][0].image_id in seen:
            continue
        best = result.matches[i][0]
        seen.add(best.image_id)
        ref = reference(best.image_id)
        if ref is None:
            continue
        scale = thumb / ref.shape[0]
        tile = cv2.resize(ref, (max(1, int(ref.shape[1] * scale)), thumb))
        tile = cv2.copyMakeBorder(tile, 22, 4, 4, 4, cv2.BORDER_CONSTANT, value=(255, 255, 255))
        text = f"{best.item_id[:24]} {best.score:.2f}"
        cv2.putText(tile, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colors[i], 1, cv2.LINE_AA)
        tiles.append(tile)
    if not tiles:
        return drawn
    strip = np.full((tiles[0].shape[0], drawn.shape[1], 3), 255, dtype=np.uint8)
    x = 0
    for tile in tiles:
        w = min(tile.shape[1], strip.shape[1] - x)
        if w <= 0:
            break
        strip[:, x : x + w] = tile[:, :w]
        x += w
    return np.vstack([drawn, strip])
