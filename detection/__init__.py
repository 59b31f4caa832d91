"""Detection: frames -> `Detections` (boxes, scores, classes, crops).

Entry point: ``load_detector(settings)``; then ``detector.detect(frames)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from core.runtime import resolve_device
from detection.detections import WHOLE_FRAME_CLASS_ID, WHOLE_FRAME_CLASS_NAME, Detections
from detection.detector import Detector, DetectorConfig
from detection.draw import draw_detections
from weights import model_files, resolve

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = [
    "WHOLE_FRAME_CLASS_ID",
    "WHOLE_FRAME_CLASS_NAME",
    "Detections",
    "Detector",
    "DetectorConfig",
    "draw_detections",
    "load_detector",
]


def load_detector(settings: Settings) -> Detector:
    """Build the configured detector: ``settings.detector`` names a model of stage "detector",
    or is the path of a ``.pt`` file of the operator's own (ultralytics or original YOLOv5).

    Raises:
        ModelUnavailable: unknown model name, or its file missing/corrupt (the message names
            the file, where it was looked for and where it comes from).
    """
    if settings.detector.endswith(".pt"):  # an operator's own file (e.g. MegaDetector v5)
        path = Path(settings.detector).expanduser()
    else:
        spec = model_files(settings.detector, stage="detector")
        path = resolve(spec.files[0], settings.weights_dir, allow_download=settings.allow_download)
    config = DetectorConfig(
        conf=settings.det_conf, max_det=settings.det_max, whole_frame=settings.whole_frame
    )
    return Detector.from_weights(path, resolve_device(settings.device), config)
