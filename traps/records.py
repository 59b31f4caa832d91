"""One photo's answer as typed data, its one JSON serialiser, and the batch's files.

A batch writes ``results.jsonl`` (one JSON object per photo, appended as each photo is done,
so a killed run loses at most the photo in flight and a re-run skips the photos it holds) and,
from it, ``results.csv``: one row per detection, one row for a photo without any, with the
columns of `CSV_COLUMNS` (spreadsheet users and review tools rely on their names).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from labels.result import LabelResult, result_to_dict
from matching.report import match_to_dict
from matching.result import Match

#: The CSV's columns, in order. ``confidence`` of a photo without detection is the best
#: animal score the detector gave below its threshold (how unsure the "empty" verdict is).
CSV_COLUMNS = (
    "file",
    "time",
    "camera",
    "night",
    "animal_present",
    "detection",
    "class",
    "confidence",
    "box",
    "label",
    "label_probability",
    "unknown",
    "item_id",
    "score",
    "verified",
    "photo_label",
    "photo_label_probability",
    "error",
)


@dataclass
class AnimalDetection:
    """One animal in a photo.

    Attributes:
        box: ``(x1, y1, x2, y2)`` pixels of the photo.
        class_name: the detector's class.
        confidence: the detector's score in [0, 1].
        labels: the crop's labels (None without a labeler).
        matches: the best known individuals, best first (empty without a catalog).
    """

    box: tuple[float, float, float, float]
    class_name: str
    confidence: float
    labels: LabelResult | None = None
    matches: list[Match] = field(default_factory=list)


@dataclass
class PhotoRecord:
    """Everything the batch found in one photo (or why it skipped it).

    Attributes:
        file: path relative to the batch's folder (its key: a re-run skips it).
        time, camera: from EXIF, ``""`` when absent.
        night: a greyscale (infrared) frame: its three channels are equal.
        width, height: pixels (0 when unreadable).
        animal_present: any animal detection at or above the threshold.
        confidence: the best animal score, also below the threshold (0 when none at all).
        detections: the animals at or above the threshold, best first.
        labels: the whole photo's labels (None without a labeler).
        error: why the photo was skipped (``""`` when it was not).
    """

    file: str
    time: str = ""
    camera: str = ""
    night: bool = False
    width: int = 0
    height: int = 0
    animal_present: bool = False
    confidence: float = 0.0
    detections: list[AnimalDetection] = field(default_factory=list)
    labels: LabelResult | None = None
    error: str = ""


def _labels_dict(result: LabelResult | None) -> dict | None:
    return None if result is None else result_to_dict(result)


def record_to_dict(record: PhotoRecord) -> dict:
    """A photo's JSON object (one line of ``results.jsonl``)."""
    return {
        "file": record.file,
        "time": record.time,
        "camera": record.camera,
        "night": record.night,
        "width": record.width,
        "height": record.height,
        "animal_present": record.animal_present,
        "confidence": round(record.confidence, 4),
        "labels": _labels_dict(record.labels),
        "detections": [
            {
                "box": [round(v, 1) for v in d.box],
                "class": d.class_name,
                "confidence": round(d.confidence, 4),
                "labels": _labels_dict(d.labels),
                "matches": [match_to_dict(m) for m in d.matches],
            }
            for d in record.detections
        ],
        "error": record.error,
    }


def _top(labels: dict | None) -> tuple[str, str, str]:
    """(top label or "unknown", its probability, unknown probability) of a labels dict."""
    if not labels:
        return "", "", ""
    probs = {x["label"]: x["probability"] for x in labels["labels"]}
    top = labels["top"]
    p = probs[top] if top is not None else labels["unknown"]
    return (top if top is not None else "unknown"), f"{p:.4f}", f"{labels['unknown']:.4f}"


def csv_rows(record: dict) -> list[dict]:
    """The CSV rows of one photo's JSON object: one per detection, one if it has none."""
    photo_label, photo_p, _ = _top(record.get("labels"))
    base = {
        "file": record["file"],
        "time": record.get("time", ""),
        "camera": record.get("camera", ""),
        "night": str(record.get("night", False)).lower(),
        "animal_present": str(record.get("animal_present", False)).lower(),
        "photo_label": photo_label,
        "photo_label_probability": photo_p,
        "error": record.get("error", ""),
    }
    rows = []
    for i, det in enumerate(record.get("detections") or []):
        label, p, unknown = _top(det.get("labels"))
        best = det["matches"][0] if det.get("matches") else None
        rows.append(
            base
            | {
                "detection": str(i),
                "class": det["class"],
                "confidence": f"{det['confidence']:.4f}",
                "box": " ".join(f"{v:.0f}" for v in det["box"]),
                "label": label,
                "label_probability": p,
                "unknown": unknown,
                "item_id": best["item_id"] if best else "",
                "score": f"{best['score']:.4f}" if best else "",
                "verified": str(best["verified"]).lower() if best else "",
            }
        )
    if not rows:
        label, p, unknown = _top(record.get("labels"))
        rows.append(
            base
            | {
                "detection": "",
                "class": "",
                "confidence": f"{record.get('confidence', 0.0):.4f}" if not base["error"] else "",
                "box": "",
                "label": label,
                "label_probability": p,
                "unknown": unknown,
                "item_id": "",
                "score": "",
                "verified": "",
            }
        )
    return rows


class ResultsFile:
    """``results.jsonl``: read what a previous run did, append each photo as it is done."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def read(self) -> list[dict]:
        """The photos done so far. A last line cut by a kill is dropped from the file."""
        if not self.path.is_file():
            return []
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):  # killed mid-write: drop the partial line
            data = data[: data.rfind(b"\n") + 1]
            with open(self.path, "r+b") as f:
                f.truncate(len(data))
        out = []
        for line in data.decode("utf-8", "replace").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def append(self, record: PhotoRecord) -> dict:
        """Write one photo (flushed and synced) and return its JSON object."""
        obj = record_to_dict(record)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(obj) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return obj


def write_csv(path: Path, records: Iterable[dict]) -> int:
    """Write ``results.csv`` (columns `CSV_COLUMNS`), atomically. Returns the row count."""
    path = Path(path)
    tmp = path.with_suffix(".csv.tmp")
    n = 0
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for record in records:
            for row in csv_rows(record):
                writer.writerow(row)
                n += 1
    os.replace(tmp, path)
    return n


def latest(records: Iterable[dict]) -> Iterator[dict]:
    """One object per file (the last one written), in first-seen order."""
    by_file: dict[str, dict] = {}
    for r in records:
        by_file[r["file"]] = r
    yield from by_file.values()
