"""Builds a worker's `Pipeline` from the settings (the one place models are loaded)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import BadInput, ModelUnavailable
from core.images import read_image
from core.runtime import configure_threads, prepare_environment
from core.settings import Settings
from matching.catalog_view import CatalogView
from matching.folder_catalog import load_folder_catalog
from matching.pipeline import Pipeline, PipelineConfig
from matching.result import FrameResult, Match
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


@dataclass(frozen=True)
class Engine:
    """The Python front door: one model set, folder catalogs, a photo matched in one call.

    ``Engine.load(weights_dir, detector=...)`` takes any `Settings` field by name (the rest
    come from the environment and ``.env``, as for the service)."""

    pipeline: Pipeline
    settings: Settings

    @classmethod
    def load(cls, weights_dir: str | Path | None = None, **settings: object) -> Engine:
        """Load the models of ``Settings(weights_dir=weights_dir, **settings)`` (the folder of
        model files; see `load_pipeline` for its errors)."""
        if weights_dir is not None:
            settings["weights_dir"] = weights_dir
        resolved = Settings(**settings)
        return cls(load_pipeline(resolved), resolved)

    def folder_catalog(self, folder: str | Path, *, kind: str = "products") -> CatalogView:
        """Index a ``<item_id>/<image>`` folder catalog (`load_folder_catalog`)."""
        return load_folder_catalog(self.pipeline, folder, kind=kind)

    def match(
        self, photo: str | Path | np.ndarray, catalog: CatalogView, **options: object
    ) -> FrameResult:
        """Every object of one photo (a path or uint8 RGB pixels) and its ranked candidates,
        as detect answers; ``options`` are `PipelineConfig` fields (``top_k``, ``verify``...).

        Raises:
            BadInput: no file at the path, or not a readable image.
            TypeError: an option that is not a `PipelineConfig` field.
        """
        pixels = photo if isinstance(photo, np.ndarray) else self._read(photo)
        config = PipelineConfig.from_settings(self.settings, **options)
        return self.pipeline.match_frames([pixels], catalog, config)[0]

    def search(
        self, photo: str | Path | np.ndarray, catalog: CatalogView, top_k: int | None = None
    ) -> list[Match]:
        """The catalog's items ranked for a whole photo, best score first, as search answers
        (up to ``top_k``, default ``SIGHTING_SEARCH_TOP_K``; never cut by a threshold)."""
        top_k = top_k or self.settings.search_top_k
        return self.match(photo, catalog, top_k=top_k, whole_frame=True).ranked_items(top_k)

    def _read(self, path: str | Path) -> np.ndarray:
        if not Path(path).is_file():
            raise BadInput(f"no photo at {path}")
        return read_image(path, max_pixels=self.settings.max_image_pixels)
