"""A camera trap's card, photo by photo: is there an animal, what is it, which known one.

`run_batch(source, models, out_dir, ...)` is the library function behind ``python -m traps``
and the ``traps`` job of the task queue (`traps.job`): per photo it reads EXIF time and camera,
detects animals, labels the photo and each animal (by example or by text), matches each animal
against a catalog of known individuals, and appends the answer to ``results.jsonl`` at once; a
re-run skips the photos that file holds. A photo that cannot be read (not an image, truncated,
0 bytes, too big) is kept as a row with its ``error``. ``progress(done, total)`` is called
after each photo.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from core.errors import BadInput, InternalError, SightingError
from core.images import DEFAULT_MAX_PIXELS, decode_image
from detection.detector import Detector
from labels.result import Labeler
from matching.catalog_view import CatalogView
from matching.pipeline import Pipeline, PipelineConfig
from matching.result import FrameResult
from traps.exif import read_meta
from traps.records import AnimalDetection, PhotoRecord, ResultsFile, latest, write_csv
from traps.sources import PhotoSource

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
            raise InternalError(
                "a known-individual catalog needs a pipeline, and the other way round"
            )


def is_greyscale(image: np.ndarray, tolerance: int = 6) -> bool:
    """Whether a uint8 (H, W, 3) photo is grey (an infrared night frame): channels equal
    within ``tolerance`` on a 64x64 sample of pixels."""
    h, w = image.shape[:2]
    sample = image[:: max(1, h // 64), :: max(1, w // 64)].astype(np.int16)
    spread = sample.max(axis=2) - sample.min(axis=2)
    return bool(np.percentile(spread, 99) <= tolerance)


#: Called with a photo's record, its matched animals (a `FrameResult`) and its pixels: keeps
#: them as sightings (`sightings.keep`; the ``keep`` option of a batch).
KeepHook = Callable[[PhotoRecord, FrameResult, np.ndarray], None]


def process_photo(
    data: bytes,
    name: str,
    models: TrapModels,
    config: TrapConfig,
    keep_hook: KeepHook | None = None,
) -> PhotoRecord:
    """One photo's `PhotoRecord` from its encoded bytes.

    Unreadable bytes give a record with ``error`` set, never an exception (model errors
    still raise). ``keep_hook`` gets the matched animals (when a catalog matched them).
    """
    record = PhotoRecord(file=name)
    try:
        image = decode_image(data, max_pixels=config.max_pixels)
    except SightingError as exc:
        record.error = exc.message
        return record
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
    if keep_hook is not None and models.catalog is not None and crops:
        keep_hook(record, FrameResult(keep, matches), image)
    names = keep.class_name
    for i in range(len(keep)):
        x1, y1, x2, y2 = (float(v) for v in keep.xyxy[i])
        record.detections.append(
            AnimalDetection(
                (x1, y1, x2, y2), str(names[i]), float(keep.confidence[i]), results[i], matches[i]
            )
        )
    return record


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
    source: PhotoSource,
    models: TrapModels,
    out_dir: Path,
    config: TrapConfig = TrapConfig(),
    *,
    progress: Progress | None = None,
    on_record: Callable[[dict], None] | None = None,
    keep_hook: KeepHook | None = None,
) -> BatchSummary:
    """Process a source's photos into ``out_dir/results.jsonl`` and ``results.csv``; resumable.

    Args:
        source: the photos (`traps.sources.FolderSource`, `traps.sources.StorePrefixSource`).
        models: detector, labeler, catalog.
        out_dir: where the results go (created). A ``results.jsonl`` already there (an
            earlier run's, or a job's checkpoint) is kept and its photos are skipped.
        config: thresholds and options.
        progress: called with (done, total) after each photo, done counting earlier runs'.
        on_record: called with each new photo's JSON object once it is in results.jsonl
            (a job checkpoints the file there).
        keep_hook: called with each photo's matched animals (`process_photo`).

    Returns:
        A `BatchSummary`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = ResultsFile(out_dir / "results.jsonl")
    done = {r["file"] for r in results.read()}
    names = source.names()
    todo = [name for name in names if name not in done]
    total, start = len(names), time.perf_counter()
    finished = total - len(todo)
    if progress is not None:
        progress(finished, total)
    for name in todo:
        try:
            data = source.read(name)
        except (OSError, SightingError) as exc:
            record = PhotoRecord(file=name, error=f"cannot read: {exc}")
        else:
            record = process_photo(data, name, models, config, keep_hook)
        if record.error:
            log.warning("skipping %s: %s", name, record.error)
        obj = results.append(record)
        if on_record is not None:
            on_record(obj)
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
