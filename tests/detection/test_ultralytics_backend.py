"""The ultralytics loading path, on a small checkpoint this test builds itself (no download).

The model has random weights (built from the yaml bundled in the ultralytics wheel and saved
the way ultralytics saves checkpoints), so only types, shapes and plumbing are checked here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import BadInput
from core.images import read_image
from detection import Detector, DetectorConfig
from detection.checkpoint import checkpoint_format
from detection.detector import UltralyticsBackend

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ultralytics import YOLO

    path = tmp_path_factory.mktemp("ultralytics") / "yolov8n-random.pt"
    YOLO("yolov8n.yaml").save(path)
    return path


@pytest.fixture(scope="module")
def detector(checkpoint: Path) -> Detector:
    return Detector.from_weights(checkpoint, CPU, DetectorConfig(max_det=5, imgsz=160))


@pytest.fixture(scope="module")
def frames(data_dir: Path, ultralytics_assets: Path) -> list[np.ndarray]:
    shelf = sorted((data_dir / "grocery" / "queries").glob("*/*.jpg"))[0]
    small_bus = read_image(ultralytics_assets / "bus.jpg")[::6, ::6].copy()
    return [read_image(shelf), small_bus]


def test_format_and_backend(checkpoint: Path, detector: Detector) -> None:
    assert checkpoint_format(checkpoint) == "ultralytics"
    assert isinstance(detector.backend, UltralyticsBackend)
    assert len(detector.names) == 80 and all(isinstance(n, str) for n in detector.names)


def test_detect_types_and_shapes(detector: Detector, frames: list[np.ndarray]) -> None:
    torch.set_num_threads(2)
    results = detector.detect(frames, conf=0.0)
    assert torch.get_num_threads() == 2, "ultralytics' 1-thread setting was not undone"
    assert len(results) == len(frames)
    for frame, det in zip(frames, results, strict=True):
        h, w = frame.shape[:2]
        assert 1 <= len(det) <= detector.config.max_det + 1
        assert det.xyxy.dtype == np.float32 and det.xyxy.shape == (len(det), 4)
        assert det.confidence.dtype == np.float32 and det.class_id.dtype == np.int64
        assert (det.xyxy[:, [0, 2]] <= w).all() and (det.xyxy[:, [1, 3]] <= h).all()
        assert (det.xyxy >= 0).all()
        objects = det[det.class_id >= 0]
        assert all(objects.class_name == [detector.names[i] for i in objects.class_id])
        assert det.class_name[-1] == "image"
        assert all(c.dtype == np.uint8 and c.shape[2] == 3 for c in det.data["crop"])


def test_class_filter_by_name(detector: Detector, frames: list[np.ndarray]) -> None:
    name = detector.names[3]
    (det,) = detector.detect(frames[:1], conf=0.0, classes=[name], whole_frame=False)
    assert set(det.class_name) <= {name}
    with pytest.raises(BadInput, match="not-a-class"):
        detector.detect(frames[:1], classes=["not-a-class"])
