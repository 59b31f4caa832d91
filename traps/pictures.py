"""Pictures a person checks a batch with: a bar chart of a photo's label probabilities, the
photo with its animals drawn, and contact sheets (the photos with an animal, by confidence;
the "empty" photos the detector was least sure about).

Everything draws on new arrays (matplotlib through its object interface, no global state;
OpenCV for boxes via `detection.draw`) and reads the batch's JSON objects (`traps.records`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from detection.draw import draw_detections

GREEN, ORANGE, GREY = (40, 200, 40), (230, 160, 20), (150, 150, 150)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
PICTURE_INDEX = "photos/index.json"  # card file -> its picture's name


def picture_name(file: str, taken: set[str]) -> str:
    """``photos/<name>.jpg`` for a card file: ``/`` becomes ``__``, any other character a job
    file may not hold (``<``, spaces, accents...) ``_``, at most 120 characters, and ``-2``,
    ``-3``... when that name is taken. Adds the name to ``taken``."""
    stem = Path(file.replace("/", "__")).stem
    safe = _UNSAFE.sub("_", stem).lstrip(".-")[:120] or "photo"
    name, n = f"photos/{safe}.jpg", 1
    while name in taken:
        n += 1
        name = f"photos/{safe}-{n}.jpg"
    taken.add(name)
    return name


def _top_text(labels: dict | None) -> str:
    if not labels:
        return ""
    top = labels["top"]
    if top is None:
        return f"unknown {labels['unknown']:.2f}"
    p = next(x["probability"] for x in labels["labels"] if x["label"] == top)
    return f"{top} {p:.2f}"


def detection_text(det: dict) -> str:
    """``"<label p> | <known individual score>"`` (``OK`` when verified), else the class."""
    parts = [_top_text(det.get("labels")) or f"{det['class']} {det['confidence']:.2f}"]
    if det.get("matches"):
        best = det["matches"][0]
        if best["verified"]:
            parts.append(f"OK {best['item_id']} {best['score']:.2f}")
    return " | ".join(parts)


def bar_chart(
    labels: dict, *, title: str = "", width_px: int = 520, max_bars: int = 12
) -> np.ndarray:
    """Horizontal bars of one labels dict (``result_to_dict``), most probable first.

    Args:
        labels: ``{"labels": [{"label", "probability"}], "top", "unknown"}``.
        title: shown above the bars.
        width_px: picture width.
        max_bars: at most this many labels (the most probable); ``unknown`` is added when > 0.

    Returns:
        uint8 (H, width_px, 3) RGB.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = sorted(labels["labels"], key=lambda x: -x["probability"])[:max_bars]
    names = [r["label"] for r in rows]
    values = [r["probability"] for r in rows]
    if labels.get("unknown", 0.0) > 0.0005:
        names.append("(unknown)")
        values.append(labels["unknown"])
    dpi = 100
    height_px = 70 + 26 * max(1, len(names))
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(names))
    colors = ["#2ca02c" if n == labels.get("top") else "#1f77b4" for n in names]
    colors = ["#7f7f7f" if n == "(unknown)" else c for n, c in zip(names, colors, strict=True)]
    ax.barh(y, values, color=colors)
    ax.set_yticks(y, [n[:28] for n in names], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability", fontsize=9)
    for yi, v in zip(y, values, strict=True):
        ax.text(min(v + 0.01, 0.88), yi, f"{v:.2f}", va="center", fontsize=8)
    if title:
        ax.set_title(title[:60], fontsize=10)
    fig.tight_layout()
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3])


def draw_record(image: np.ndarray, record: dict) -> np.ndarray:
    """The photo with its animals' boxes and labels (green: a verified known individual)."""
    dets = record.get("detections") or []
    boxes = np.array([d["box"] for d in dets], dtype=np.float64).reshape(-1, 4)
    colors = [GREEN if d.get("matches") and d["matches"][0]["verified"] else ORANGE for d in dets]
    return draw_detections(image, boxes, [detection_text(d) for d in dets], colors)


def photo_card(image: np.ndarray, record: dict, *, height: int = 480) -> np.ndarray:
    """The drawn photo (``height`` px) beside the bar chart of its best-labelled animal (or of
    the whole photo). uint8 (height, W, 3) RGB."""
    drawn = _fit_height(draw_record(image, record), height)
    dets = record.get("detections") or []
    labels = dets[0].get("labels") if dets else None
    title = "best animal" if labels else "whole photo"
    labels = labels or record.get("labels")
    if not labels:
        return drawn
    chart = bar_chart(labels, title=f"{record['file']}: {title}")
    chart = _fit_height(chart, min(height, chart.shape[0])) if chart.shape[0] > height else chart
    panel = np.full((height, chart.shape[1], 3), 255, dtype=np.uint8)
    panel[: chart.shape[0]] = chart
    return np.hstack([drawn, panel])


def _fit_height(image: np.ndarray, height: int) -> np.ndarray:
    scale = height / image.shape[0]
    return cv2.resize(image, (max(1, round(image.shape[1] * scale)), height), cv2.INTER_AREA)


def _tile(
    image: np.ndarray, lines: Sequence[str], color: tuple, size: tuple[int, int]
) -> np.ndarray:
    """A thumbnail letterboxed into ``size`` (w, h) with caption lines under it."""
    w, h = size
    scale = min(w / image.shape[1], h / image.shape[0])
    thumb = cv2.resize(
        image,
        (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))),
        interpolation=cv2.INTER_AREA,
    )
    tile = np.full((h + 16 * len(lines) + 6, w, 3), 255, dtype=np.uint8)
    top, left = (h - thumb.shape[0]) // 2, (w - thumb.shape[1]) // 2
    tile[top : top + thumb.shape[0], left : left + thumb.shape[1]] = thumb
    cv2.rectangle(tile, (0, 0), (w - 1, h - 1), color, 2)
    for i, line in enumerate(lines):
        cv2.putText(
            tile,
            line[:38],
            (3, h + 14 + 16 * i),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    return tile


def contact_sheet(
    records: Sequence[dict],
    read: Callable[[str], np.ndarray | None],
    *,
    empties: bool = False,
    columns: int = 6,
    tile: tuple[int, int] = (240, 180),
    limit: int = 60,
) -> np.ndarray | None:
    """A grid of photos to check a batch at a glance.

    Args:
        records: the batch's JSON objects (`traps.records.record_to_dict`).
        read: file name -> uint8 (H, W, 3) RGB (None: unreadable now, left out).
        empties: False: the photos with an animal, most confident first, boxes, top label and
            the known individual when verified. True: the photos without one whose best
            (below-threshold) animal score is highest: the empty verdicts to check first.
        columns: tiles per row.
        tile: (w, h) of each thumbnail.
        limit: at most this many photos.

    Returns:
        uint8 RGB, or None when no photo qualifies.
    """
    chosen = [r for r in records if not r.get("error") and bool(r.get("animal_present")) != empties]
    chosen.sort(key=lambda r: -r.get("confidence", 0.0))
    tiles = []
    for r in chosen[:limit]:
        image = read(r["file"])
        if image is None:
            continue
        if empties:
            lines = [r["file"][-38:], f"best animal score {r.get('confidence', 0.0):.2f}"]
            top = _top_text(r.get("labels"))
            lines.append(f"photo: {top}" if top else "")
            tiles.append(_tile(image, lines, GREY, tile))
            continue
        dets = r.get("detections") or []
        verified = [d for d in dets if d.get("matches") and d["matches"][0]["verified"]]
        lines = [r["file"][-38:], f"{len(dets)} animal(s), best {r['confidence']:.2f}"]
        lines.append(detection_text(verified[0] if verified else dets[0]) if dets else "")
        tiles.append(_tile(draw_record(image, r), lines, GREEN if verified else ORANGE, tile))
    if not tiles:
        return None
    th = max(t.shape[0] for t in tiles)
    rows = []
    for start in range(0, len(tiles), columns):
        row = [
            np.pad(t, ((0, th - t.shape[0]), (0, 0), (0, 0)), constant_values=255)
            for t in tiles[start : start + columns]
        ]
        row += [np.full_like(row[0], 255)] * (columns - len(row))
        rows.append(
            np.hstack([np.pad(t, ((4, 4), (4, 4), (0, 0)), constant_values=255) for t in row])
        )
    return np.vstack(rows)


def write_pictures(
    records: Sequence[dict],
    read: Callable[[str], np.ndarray | None],
    out_dir: Path,
    *,
    photos: bool = True,
) -> list[str]:
    """A batch's pictures into ``out_dir``: ``animals.jpg`` and ``empties.jpg`` (contact
    sheets) and, when ``photos``, ``photos/<name>.jpg`` for each photo with an animal (its
    boxes and label bar chart; named by `picture_name`, listed in ``photos/index.json``).

    Returns:
        The names written, relative to ``out_dir``.
    """
    written = []
    if photos:
        taken: set[str] = set()
        index: dict[str, str] = {}
        for record in records:
            if record.get("error") or not record.get("animal_present"):
                continue
            image = read(record["file"])
            if image is None:
                continue
            name = picture_name(record["file"], taken)
            (out_dir / "photos").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(out_dir / name), photo_card(image, record)[..., ::-1])
            written.append(name)
            index[record["file"]] = name
        if index:
            (out_dir / PICTURE_INDEX).write_text(json.dumps(index, ensure_ascii=False))
            written.append(PICTURE_INDEX)
    for empties, name in ((False, "animals.jpg"), (True, "empties.jpg")):
        sheet = contact_sheet(records, read, empties=empties)
        if sheet is not None:
            cv2.imwrite(str(out_dir / name), sheet[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
            written.append(name)
    return written
