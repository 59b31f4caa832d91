"""A camera trap's card, photo by photo: is there an animal, what is it, which known one.

`run_batch(photos, models, out_dir, ...)` is the library function behind ``python -m traps``
(and a job of the task queue): per photo it reads EXIF time and camera, detects animals, labels
the photo and each animal (by example or by text), matches each animal against a catalog of
known individuals, and appends the answer to ``results.jsonl`` at once; a re-run skips the
photos that file holds. A photo that cannot be read (not an image, truncated, 0 bytes, too
big) is kept as a row with its ``error``. ``progress(done, total)`` is called after each photo.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from core.errors import BadInput, SightingError
from core.images import DEFAULT_MAX_PIXELS, decode_image
from detection.detector import Detector
from labels.result import Labeler
from matching.catalog_view import CatalogView
from matching.pipeline import Pipeline, PipelineConfig
from traps.exif import read_meta
from traps.records import AnimalDetection, PhotoRecord, ResultsFile, latest, write_csv

log = logging.getLogger(__name__)

#: The COCO classes that are animals (yolov5/ultralytics COCO models).
COCO_ANIMALS = (
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
)

Progress = Callable[[int, int], None]


def animal_classes(names: Sequence[str]) -> tuple[str, ...]:
    """Which of a detector's classes are animals.

    A COCO model: `COCO_ANIMALS`. A model with a class named ``animal`` (MegaDetector:
    animal, person, vehicle): that one. Any other model of the operator's own: every class.
    """
    names = tuple(names)
    coco = [n for n in COCO_ANIMALS if n in names]
    if len(coco) == len(COCO_ANIMALS):
        return tuple(coco)
    if "animal" in names:
        return ("animal",)
    return names


@dataclass(frozen=True)
class TrapConfig:
    """Options of a batch."""

    threshold: float = 0.25  # an animal at or above this score means "animal present"
    floor: float = 0.05  # scores from this up are kept to tell how sure an "empty" is
    classes: tuple[str, ...] | None = None  # the animal classes; None: `animal_classes`
    top_k: int = 3  # known individuals kept per animal
    verify: bool = True  # keypoint-verify the known-individual shortlist
    label_photo: bool = True  # also label the whole photo (not only each animal)
    max_pixels: int = DEFAULT_MAX_PIXELS  # bigger photos are skipped (noted in the results)

    def __post_init__(self) -> None:
        if not 0.0 <= self.floor <= self.threshold <= 1.0:
            raise BadInput(
                f"need 0 <= floor <= threshold <= 1, got floor {self.floor}, "
                f"threshold {self.threshold}"
            )


@dataclass
class TrapModels:
    """What a batch runs: a detector, and optionally a labeler and a known-individual catalog.

    Attributes:
        detector: finds the animals.
        labeler: labels photos and crops (`labels.ExampleLabeler` or `labels.TextLabeler`).
        pipeline: embeds and verifies crops against ``catalog`` (its detector may be the same).
        catalog: the known individuals.
    """

    detector: Detector
    labeler: Labeler | None = None
    pipeline: Pipeline | None = None
    catalog: CatalogView | None = None

    def __post_init__(self) -> None:
        if (self.pipeline is None) != (self.catalog is None):
            raise BadInput("a known-individual catalog needs a pipeline, and the other way round")


def is_greyscale(image: np.ndarray, tolerance: int = 6) -> bool:
    """Whether a uint8 (H, W, 3) photo is grey (an infrared night frame): channels equal
    within ``tolerance`` on a 64x64 sample of pixels."""
    h, w = image.shape[:2]
    sample = image[:: max(1, h // 64), :: max(1, w // 64)].astype(np.int16)
    spread = sample.max(axis=2) - sample.min(axis=2)
    return bool(np.percentile(spread, 99) <= tolerance)


def list_photos(folder: str | Path) -> list[Path]:
    """Every file under ``folder`` (recursively; hidden files and folders skipped), sorted.

    Non-image files are listed too: the batch notes them as skipped, so nothing on the card
    goes unmentioned.

    Raises:
        BadInput: the folder does not exist.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInput(f"photo folder {folder} does not exist")
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def process_photo(
    data: bytes, name: str, models: TrapModels, config: TrapConfig, *, keep_image: bool = False
) -> tuple[PhotoRecord, np.ndarray | None]:
    """One photo's `PhotoRecord` from its encoded bytes (and the decoded image if asked).

    Unreadable bytes give a record with ``error`` set, never an exception (model errors
    still raise).
    """
    record = PhotoRecord(file=name)
    try:
        image = decode_image(data, max_pixels=config.max_pixels)
    except SightingError as exc:
        record.error = exc.message
        return record, None
    meta = read_meta(data)
    record.time, record.camera = meta.time, meta.camera
    record.height, record.width = image.shape[:2]
    record.night = is_greyscale(image)
    detector = models.detector
    classes = config.classes or animal_classes(detector.names)
    det = detector.detect([image], conf=config.floor, classes=classes, whole_frame=False)[0]
    record.confidence = float(det.confidence.max()) if len(det) else 0.0
    keep = det[det.confidence >= config.threshold]
    record.animal_present = len(keep) > 0
    crops = list(keep.data.get("crop", []))
    labeler = models.labeler
    if labeler is not None:
        photo_and_crops = ([image] if config.label_photo else []) + crops
        results = labeler.label(photo_and_crops) if photo_and_crops else []
        if config.label_photo:
            record.labels, results = results[0], results[1:]
    else:
        results = [None] * len(crops)
    matches: list[list] = [[] for _ in crops]
    if models.pipeline is not None and models.catalog is not None and crops:
        pipeline, catalog = models.pipeline, models.catalog
        vectors = pipeline.embedder_for(catalog.kind).embed(crops)
        pconfig = PipelineConfig(top_k=config.top_k, verify=config.verify)
        matches = pipeline.match_vectors(vectors, crops, catalog, pconfig)
    names = keep.class_name
    for i in range(len(keep)):
        x1, y1, x2, y2 = (float(v) for v in keep.xyxy[i])
        record.detections.append(
            AnimalDetection(
                (x1, y1, x2, y2), str(names[i]), float(keep.confidence[i]), results[i], matches[i]
            )
        )
    return record, (image if keep_image else None)


@dataclass
class BatchSummary:
    """What a batch did (this run and in all)."""

    total: int  # photos in the batch
    done_before: int  # skipped: done by an earlier run
    processed: int  # processed by this run
    errors: int  # photos skipped for an error, in all
    with_animal: int  # photos with an animal, in all
    seconds: float  # this run's wall time
    results: Path  # results.jsonl
    csv: Path  # results.csv


def run_batch(
    photos: Sequence[Path],
    models: TrapModels,
    out_dir: Path,
    config: TrapConfig = TrapConfig(),
    *,
    root: Path | None = None,
    progress: Progress | None = None,
    on_record: Callable[[dict, np.ndarray | None], None] | None = None,
) -> BatchSummary:
    """Process photos into ``out_dir/results.jsonl`` and ``out_dir/results.csv``; resumable.

    Args:
        photos: the photo files (e.g. `list_photos`).
        models: detector, labeler, catalog.
        out_dir: where the results go (created).
        config: thresholds and options.
        root: photo names are relative to it (the folder); their parent folder by default.
        progress: called with (done, total) after each photo, done counting earlier runs'.
        on_record: called with each new photo's JSON object and its decoded image (or None),
            e.g. to draw it.

    Returns:
        A `BatchSummary`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = ResultsFile(out_dir / "results.jsonl")
    previous = results.read()
    done = {r["file"] for r in previous}

    def name_of(path: Path) -> str:
        base = root if root is not None else path.parent
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            return path.as_posix()

    todo = [p for p in photos if name_of(p) not in done]
    total, start = len(photos), time.perf_counter()
    finished = total - len(todo)
    if progress is not None:
        progress(finished, total)
    for path in todo:
        try:
            data = path.read_bytes()
        except OSError as exc:
            record, image = PhotoRecord(file=name_of(path), error=f"cannot read: {exc}"), None
        else:
            record, image = process_photo(
                data, name_of(path), models, config, keep_image=on_record is not None
            )
        if record.error:
            log.warning("skipping %s: %s", path, record.error)
        obj = results.append(record)
        if on_record is not None:
            on_record(obj, image)
        finished += 1
        if progress is not None:
            progress(finished, total)
    every = list(latest(results.read()))
    write_csv(out_dir / "results.csv", every)
    return BatchSummary(
        total=total,
        done_before=total - len(todo),
        processed=len(todo),
        errors=sum(1 for r in every if r.get("error")),
        with_animal=sum(1 for r in every if r.get("animal_present")),
        seconds=time.perf_counter() - start,
        results=out_dir / "results.jsonl",
        csv=out_dir / "results.csv",
    )


def native_size(detector: Detector) -> Detector:
    """The detector at its model's own input size when that is larger than the config's
    (a P6 model such as MegaDetector v5 is trained at 1280)."""
    size = getattr(detector.backend, "native_imgsz", None)
    if size and size > detector.config.imgsz:
        detector.config = replace(detector.config, imgsz=int(size))
    return detector
