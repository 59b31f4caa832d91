"""Builds a worker's `Pipeline` from the settings (the one place models are loaded)."""

from __future__ import annotations

import logging
import time

from core.errors import ModelUnavailable
from core.runtime import configure_threads, prepare_environment
from core.settings import Settings
from matching.pipeline import Pipeline
from matching.score import load_calibrations

log = logging.getLogger(__name__)


def load_pipeline(settings: Settings) -> Pipeline:
    """Load the detector, embedder and verifier named in ``settings``.

    Raises:
        ModelUnavailable: a model is unknown or its file is missing or corrupt; the message
            names the file, the folders searched and where it comes from.
    """
    prepare_environment()
    from detection import load_detector
    from embedding import load_embedders
    from matching.verification import load_verifier

    start = time.perf_counter()
    detector = load_detector(settings)
    embedders = load_embedders(settings)
    verifier = load_verifier(settings)
    configure_threads(settings.threads)
    log.info(
        "models loaded in %.1f s: detector=%s (%s) embedder=%s (%s) verifier=%s",
        time.perf_counter() - start,
        settings.detector,
        detector.runtime.runtime,
        settings.embedder,
        ", ".join(sorted({e.runtime.runtime for e in embedders.values()})),
        settings.verifier,
    )
    if settings.calibration_file is not None and not settings.calibration_file.is_file():
        raise ModelUnavailable(
            f"SIGHTING_CALIBRATION_FILE {settings.calibration_file} does not exist "
            "(python -m bench.calibrate --save writes one)"
        )
    return Pipeline(detector, embedders, verifier, load_calibrations(settings.calibration_file))


_shared: dict[tuple, Pipeline] = {}


def shared_pipeline(settings: Settings) -> Pipeline:
    """One `load_pipeline` per process and model set: the job kinds of a consumer (catalog
    calibration refits, camera-trap batches) share it instead of each loading its own."""
    key = tuple(
        str(getattr(settings, name))
        for name in (
            "weights_dir",
            "device",
            "detector",
            "embedder",
            "products_embedder",
            "animals_embedder",
            "verifier",
            "runtime",
            "detector_runtime",
            "embedder_runtime",
            "detector_precision",
            "embedder_precision",
        )
    )
    if key not in _shared:
        _shared.clear()  # another model set: the old one's memory goes
        _shared[key] = load_pipeline(settings)
    return _shared[key]
