"""Detection: frames -> `Detections` (boxes, scores, classes, crops).

Entry point: ``load_detector(settings)``; then ``detector.detect(frames)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from detection.detections import WHOLE_FRAME_CLASS_ID, WHOLE_FRAME_CLASS_NAME, Detections
from detection.draw import draw_detections

if TYPE_CHECKING:
    from core.settings import Settings
    from detection.detector import Detector, DetectorConfig

__all__ = [
    "WHOLE_FRAME_CLASS_ID",
    "WHOLE_FRAME_CLASS_NAME",
    "Detections",
    "Detector",
    "DetectorConfig",
    "draw_detections",
    "load_detector",
]


def __getattr__(name: str):
    """`Detector` and `DetectorConfig` on first use: importing the package (for `Detections`
    or the drawing code, e.g. in the stream client) does not load torch."""
    if name in ("Detector", "DetectorConfig"):
        from detection import detector

        return getattr(detector, name)
    raise AttributeError(f"module 'detection' has no attribute {name!r}")


def load_detector(settings: Settings) -> Detector:
    """Build the configured detector: ``settings.detector`` names a model of stage "detector",
    or is the path of a ``.pt`` file of the operator's own (ultralytics or original YOLOv5).

    Raises:
        ModelUnavailable: unknown model name, or its file missing/corrupt (the message names
            the file, where it was looked for and where it comes from).
    """
    from core.runtime import resolve_device
    from detection.detector import Detector, DetectorConfig
    from runtimes import request_for
    from weights import model_files, resolve

    if settings.detector.endswith(".pt"):  # an operator's own file (e.g. MegaDetector v5)
        path = Path(settings.detector).expanduser()
    else:
        spec = model_files(settings.detector, stage="detector")
        path = resolve(spec.files[0], settings.weights_dir, allow_download=settings.allow_download)
    config = DetectorConfig.from_settings(settings)
    return Detector.from_weights(
        path, resolve_device(settings.device), config, request_for(settings, "detector")
    )
