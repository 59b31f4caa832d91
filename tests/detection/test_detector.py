"""`Detector` on the real original-format yolov5n.pt (legacy loader) and refusals of bad files."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import BadInput, ModelUnavailable
from core.images import read_image
from core.settings import Settings
from detection import Detector, DetectorConfig, load_detector
from detection.checkpoint import checkpoint_format
from detection.detections import WHOLE_FRAME_CLASS_ID, Detections
from detection.yolov5_legacy import LegacyYoloV5

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def detector(weights_dir: Path) -> Detector:
    return Detector.from_weights(weights_dir / "yolov5n.pt", CPU)


@pytest.fixture(scope="module")
def bus(ultralytics_assets: Path) -> np.ndarray:
    return read_image(ultralytics_assets / "bus.jpg")


@pytest.fixture(scope="module")
def zidane(ultralytics_assets: Path) -> np.ndarray:
    return read_image(ultralytics_assets / "zidane.jpg")


@pytest.fixture(scope="module")
def bus_result(detector: Detector, bus: np.ndarray) -> Detections:
    (result,) = detector.detect([bus])
    return result


# --- the real model ----------------------------------------------------------------------


def test_names_are_coco(detector: Detector) -> None:
    assert len(detector.names) == 80
    assert detector.names[0] == "person" and "bus" in detector.names


def test_bus_finds_a_bus_and_people(bus_result: Detections) -> None:
    names = list(bus_result.class_name)
    assert names.count("person") >= 3
    assert "bus" in names
    bus_row = bus_result[bus_result.class_name == "bus"]
    # the bus spans most of the width of the 810 px wide photo
    assert bus_row.xyxy[0, 2] - bus_row.xyxy[0, 0] > 600
    people = bus_result[bus_result.class_name == "person"]
    assert people.confidence.max() > 0.6


def test_rows_are_well_formed(bus_result: Detections, bus: np.ndarray) -> None:
    h, w = bus.shape[:2]
    det = bus_result
    assert det.xyxy.dtype == np.float32 and det.confidence.dtype == np.float32
    assert det.class_id.dtype == np.int64
    assert (det.xyxy[:, [0, 2]] >= 0).all() and (det.xyxy[:, [0, 2]] <= w).all()
    assert (det.xyxy[:, [1, 3]] >= 0).all() and (det.xyxy[:, [1, 3]] <= h).all()
    objects = det[det.class_id >= 0]
    assert (np.diff(objects.confidence) <= 0).all(), "best first"
    assert (objects.confidence >= 0.25).all()
    for box, crop in zip(det.xyxy, det.data["crop"], strict=True):
        assert crop.dtype == np.uint8 and crop.ndim == 3 and crop.shape[2] == 3
        x1, y1, x2, y2 = box
        assert abs(crop.shape[1] - (x2 - x1)) <= 2 and abs(crop.shape[0] - (y2 - y1)) <= 2
        np.testing.assert_array_equal(crop[0, 0], bus[int(y1), int(x1)])


def test_whole_frame_row(bus_result: Detections, bus: np.ndarray) -> None:
    last = bus_result[-1]
    h, w = bus.shape[:2]
    assert last.class_id[0] == WHOLE_FRAME_CLASS_ID
    assert last.class_name[0] == "image"
    assert last.confidence[0] == 1.0
    np.testing.assert_array_equal(last.xyxy[0], [0, 0, w, h])
    np.testing.assert_array_equal(last.data["crop"][0], bus)
    assert (bus_result.class_id == WHOLE_FRAME_CLASS_ID).sum() == 1


@pytest.mark.parametrize(
    ("kwargs", "check"),
    [
        # only people, whole-frame row still last
        ({"classes": ["person"]}, lambda d: set(d.class_name) == {"person", "image"}),
        # only the bus, without the whole-frame row
        ({"classes": ["bus"], "whole_frame": False}, lambda d: list(d.class_name) == ["bus"]),
        # a class absent from the photo: only the whole-frame row
        ({"classes": ["giraffe"]}, lambda d: list(d.class_name) == ["image"]),
        # an empty filter keeps nothing but the whole-frame row
        ({"classes": []}, lambda d: list(d.class_name) == ["image"]),
        # a high threshold drops the weaker boxes
        ({"conf": 0.7, "whole_frame": False}, lambda d: 0 < len(d) < 4),
        # no crops asked for: no crop column
        ({"crops": False}, lambda d: "crop" not in d.data and len(d) >= 5),
    ],
)
def test_options(detector: Detector, bus: np.ndarray, kwargs: dict, check) -> None:
    (result,) = detector.detect([bus], **kwargs)
    assert check(result), (kwargs, list(result.class_name), result.confidence)


def test_unknown_class_name_lists_known(detector: Detector, bus: np.ndarray) -> None:
    with pytest.raises(BadInput, match="unicorn.*person"):
        detector.detect([bus], classes=["person", "unicorn"])


def test_empty_batch(detector: Detector) -> None:
    assert detector.detect([]) == []


def test_batch_of_different_sizes_matches_single_frames(
    detector: Detector, bus: np.ndarray, zidane: np.ndarray
) -> None:
    both = detector.detect([bus, zidane])
    assert len(both) == 2
    for frame, result in zip([bus, zidane], both, strict=True):
        (alone,) = detector.detect([frame])
        np.testing.assert_allclose(result.xyxy, alone.xyxy, atol=1e-3)
        np.testing.assert_array_equal(result.class_id, alone.class_id)
        h, w = frame.shape[:2]
        np.testing.assert_array_equal(result.xyxy[-1], [0, 0, w, h])
    assert "tie" in list(both[1].class_name)  # zidane.jpg: two people and a tie


@pytest.mark.parametrize(
    "make",
    [
        # a grey copy of the bus photo, 3 equal channels
        lambda bus: np.repeat(bus.mean(2, keepdims=True).astype(np.uint8), 3, axis=2),
        # a 2-D grey frame is expanded to RGB
        lambda bus: bus.mean(2).astype(np.uint8),
        # a tiny thumbnail of the photo
        lambda bus: np.ascontiguousarray(bus[::40, ::40]),
        # a single pixel
        lambda bus: bus[:1, :1].copy(),
        # a flat grey frame
        lambda bus: np.full((64, 48, 3), 128, np.uint8),
    ],
)
def test_grey_and_small_frames(detector: Detector, bus: np.ndarray, make) -> None:
    frame = make(bus)
    (result,) = detector.detect([frame])
    h, w = frame.shape[:2]
    assert result.class_name[-1] == "image"
    np.testing.assert_array_equal(result.xyxy[-1], [0, 0, w, h])
    assert result.data["crop"][-1].shape == (h, w, 3)
    sizes = result.xyxy[:-1, 2:] - result.xyxy[:-1, :2]
    assert (sizes >= detector.config.min_crop_px).all()


def test_grey_photo_still_finds_people(detector: Detector, bus: np.ndarray) -> None:
    grey = np.repeat(bus.mean(2, keepdims=True).astype(np.uint8), 3, axis=2)
    (result,) = detector.detect([grey])
    assert list(result.class_name).count("person") >= 2


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((8, 8, 4), np.uint8),  # RGBA
        np.zeros((8, 8, 3), np.float32),  # floats
        np.zeros((0, 8, 3), np.uint8),  # no rows
        "not an image",
    ],
)
def test_bad_frames_are_bad_input(detector: Detector, frame: object) -> None:
    with pytest.raises(BadInput, match="frame 0"):
        detector.detect([frame])


@pytest.mark.parametrize("conf", [-0.1, 1.5])
def test_bad_conf(detector: Detector, bus: np.ndarray, conf: float) -> None:
    with pytest.raises(BadInput, match="conf"):
        detector.detect([bus], conf=conf)


def test_config_is_frozen_and_checked() -> None:
    config = DetectorConfig()
    with pytest.raises(AttributeError):
        config.conf = 0.5  # type: ignore[misc]
    with pytest.raises(BadInput, match="iou"):
        DetectorConfig(iou=2.0)


# --- load_detector from settings -----------------------------------------------------------


@pytest.mark.slow  # the real yolov5n of the shared weights, through its runtime
def test_load_detector_from_settings(settings: Settings) -> None:
    det = load_detector(settings.model_copy(update={"det_max": 2, "whole_frame": False}))
    assert det.config.max_det == 2 and det.config.whole_frame is False
    frame = np.full((64, 64, 3), 90, np.uint8)
    assert len(det.detect([frame])[0]) <= 2


@pytest.mark.parametrize(
    ("update", "match"),
    [
        ({"detector": "resnet34"}, "unknown detector"),  # a model of another stage
        ({"detector": "yolov5su", "allow_download": False}, "yolov5su.pt"),  # missing offline
    ],
)
def test_load_detector_unavailable(settings: Settings, update: dict, match: str) -> None:
    with pytest.raises(ModelUnavailable, match=match):
        load_detector(settings.model_copy(update=update))


# --- files that must be refused ------------------------------------------------------------


def _binunicode(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _evil_pickle(marker: Path, model_global: tuple[str, str] | None) -> bytes:
    """A protocol-2 pickle of ``{"model": <model_global>, "cmd": os.system("touch marker")}``."""
    body = b"\x80\x02}("  # PROTO 2, EMPTY_DICT, MARK
    if model_global is not None:
        body += _binunicode("model") + b"c%s\n%s\n" % tuple(s.encode() for s in model_global)
    body += _binunicode("cmd") + b"cos\nsystem\n" + _binunicode(f"touch {marker}") + b"\x85R"
    return body + b"u."  # SETITEMS, STOP


def _torch_zip(path: Path, pickle_bytes: bytes, template: Path) -> Path:
    """Write ``pickle_bytes`` as the data.pkl of a torch zip archive shaped like ``template``."""
    torch.save({}, template)
    with zipfile.ZipFile(template) as src, zipfile.ZipFile(path, "w") as dst:
        for name in src.namelist():
            data = pickle_bytes if name.endswith("/data.pkl") else src.read(name)
            dst.writestr(name, data)
    return path


@pytest.mark.parametrize(
    "model_global",
    [
        ("models.yolo", "Model"),  # looks like an original YOLOv5 file
        ("ultralytics.nn.tasks", "DetectionModel"),  # looks like an ultralytics file
        None,  # looks like nothing
    ],
)
def test_pickle_with_os_system_is_refused(tmp_path: Path, model_global) -> None:
    marker = tmp_path / "pwned"
    path = _torch_zip(
        tmp_path / "evil.pt", _evil_pickle(marker, model_global), tmp_path / "template.pt"
    )
    with pytest.raises(ModelUnavailable, match="evil.pt"):
        Detector.from_weights(path, CPU)
    with pytest.raises(ModelUnavailable, match=r"os\.system|evil\.pt"):
        LegacyYoloV5.from_weights(path, CPU)
    assert not marker.exists(), "the pickle's os.system ran"


def test_legacy_loader_names_the_refused_global(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = _torch_zip(
        tmp_path / "evil.pt", _evil_pickle(marker, ("models.yolo", "Model")), tmp_path / "t.pt"
    )
    with pytest.raises(ModelUnavailable, match=r"os\.system is not allowed"):
        LegacyYoloV5.from_weights(path, CPU)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content",
    [
        b"\x00garbage bytes, not a checkpoint" * 10,  # garbage
        b"",  # empty file
        "truncated",  # the first half of the real file
    ],
)
def test_corrupt_checkpoint(tmp_path: Path, weights_dir: Path, content: bytes | str) -> None:
    path = tmp_path / "broken.pt"
    if content == "truncated":
        real = (weights_dir / "yolov5n.pt").read_bytes()
        content = real[: len(real) // 2]
    path.write_bytes(content)
    with pytest.raises(ModelUnavailable, match="broken.pt"):
        Detector.from_weights(path, CPU)
    with pytest.raises(ModelUnavailable, match="broken.pt"):
        LegacyYoloV5.from_weights(path, CPU)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="nowhere.pt"):
        Detector.from_weights(tmp_path / "nowhere.pt", CPU)


def test_format_of_real_file(weights_dir: Path) -> None:
    assert checkpoint_format(weights_dir / "yolov5n.pt") == "yolov5"
