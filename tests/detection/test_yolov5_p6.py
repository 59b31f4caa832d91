"""Original-format YOLOv5 in the P6 layout (4 output levels, strides 8-64, 1280 input), the
layout of MegaDetector v5 (classes animal, person, vehicle), on a checkpoint the test builds.

The checkpoint is made the way ultralytics/yolov5 makes one: a pickled ``models.yolo.Model``
whose layers are ``models.common.*`` objects, built from yolov5n6.yaml's layer table (widths
scaled down), saved with ``torch.save({"model": ...})``. The loader never imports those
modules: its restricted unpickler maps the names to `detection.yolov5_legacy`.
"""

from __future__ import annotations

import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from core.images import read_image
from detection.checkpoint import checkpoint_format
from detection.detector import Detector, DetectorConfig
from detection.yolov5_legacy import LEGACY_CLASSES, LegacyYoloV5
from tests.conftest import offline_settings

NAMES = ["animal", "person", "vehicle"]
# yolov5n6.yaml (v6.x) anchors, in pixels per level P3/8, P4/16, P5/32, P6/64
ANCHORS = [
    [19, 27, 44, 40, 38, 94],
    [96, 68, 86, 152, 180, 137],
    [140, 301, 303, 264, 238, 542],
    [436, 615, 739, 380, 925, 792],
]
# yolov5n6.yaml's layer table: (from, repeats, module, args) with channel args already scaled
# (width 1/16 of yolov5l6, repeats 1): backbone 0-11, head 12-32, Detect 33
W = {64: 4, 128: 8, 256: 16, 512: 32, 768: 48, 1024: 64}
LAYERS = [
    (-1, "Conv", (W[64], 6, 2, 2)),  # 0 P1/2
    (-1, "Conv", (W[128], 3, 2)),  # 1 P2/4
    (-1, "C3", (W[128],)),
    (-1, "Conv", (W[256], 3, 2)),  # 3 P3/8
    (-1, "C3", (W[256],)),
    (-1, "Conv", (W[512], 3, 2)),  # 5 P4/16
    (-1, "C3", (W[512],)),
    (-1, "Conv", (W[768], 3, 2)),  # 7 P5/32
    (-1, "C3", (W[768],)),
    (-1, "Conv", (W[1024], 3, 2)),  # 9 P6/64
    (-1, "C3", (W[1024],)),
    (-1, "SPPF", (W[1024], 5)),  # 11
    (-1, "Conv", (W[768], 1, 1)),
    (-1, "Upsample", ()),
    ([-1, 8], "Concat", ()),
    (-1, "C3f", (W[768],)),  # 15
    (-1, "Conv", (W[512], 1, 1)),
    (-1, "Upsample", ()),
    ([-1, 6], "Concat", ()),
    (-1, "C3f", (W[512],)),  # 19
    (-1, "Conv", (W[256], 1, 1)),
    (-1, "Upsample", ()),
    ([-1, 4], "Concat", ()),
    (-1, "C3f", (W[256],)),  # 23 (P3/8-small)
    (-1, "Conv", (W[256], 3, 2)),
    ([-1, 20], "Concat", ()),
    (-1, "C3f", (W[512],)),  # 26 (P4/16-medium)
    (-1, "Conv", (W[512], 3, 2)),
    ([-1, 16], "Concat", ()),
    (-1, "C3f", (W[768],)),  # 29 (P5/32-large)
    (-1, "Conv", (W[768], 3, 2)),
    ([-1, 12], "Concat", ()),
    (-1, "C3f", (W[1024],)),  # 32 (P6/64-xlarge)
    ([23, 26, 29, 32], "Detect", ()),
]


@pytest.fixture()
def yolov5_modules(monkeypatch: pytest.MonkeyPatch) -> dict[str, type]:
    """``models.common`` / ``models.yolo`` as importable modules (for pickling only), whose
    classes carry yolov5's module names."""
    classes = {}
    for module in ("models.common", "models.yolo"):
        mod = types.ModuleType(module)
        for name in (
            ("Conv", "C3", "Bottleneck", "SPPF", "Concat")
            if module.endswith("common")
            else ("Detect", "Model")
        ):
            cls = type(name, (LEGACY_CLASSES[name],), {"__module__": module, "__qualname__": name})
            setattr(mod, name, cls)
            classes[name] = cls
        monkeypatch.setitem(sys.modules, module, mod)
    monkeypatch.setitem(sys.modules, "models", types.ModuleType("models"))
    return classes


def _new(cls: type, **attrs) -> nn.Module:
    obj = cls.__new__(cls)
    nn.Module.__init__(obj)
    for key, value in attrs.items():
        setattr(obj, key, value)
    return obj


def _conv(c: dict, c1: int, c2: int, k: int = 1, s: int = 1, p: int | None = None) -> nn.Module:
    p = k // 2 if p is None else p
    return _new(
        c["Conv"],
        conv=nn.Conv2d(c1, c2, k, s, p, bias=False),
        bn=nn.BatchNorm2d(c2),
        act=nn.SiLU(),
    )


def _c3(c: dict, c1: int, c2: int, shortcut: bool) -> nn.Module:
    h = c2 // 2
    neck = _new(c["Bottleneck"], cv1=_conv(c, h, h), cv2=_conv(c, h, h, 3), add=shortcut)
    return _new(
        c["C3"],
        cv1=_conv(c, c1, h),
        cv2=_conv(c, c1, h),
        cv3=_conv(c, 2 * h, c2),
        m=nn.Sequential(neck),
    )


def build_p6(c: dict, nc: int = 3, seed: int = 0) -> nn.Module:
    """A YOLOv5 P6 ``Model`` of yolov5n6.yaml's layout, random weights, BatchNorm statistics
    set so the network is not degenerate."""
    torch.manual_seed(seed)
    chans: list[int] = []
    layers = []
    for i, (src, kind, args) in enumerate(LAYERS):
        c1 = 3 if i == 0 else chans[-1] if src == -1 else None
        if kind == "Conv":
            m, out = _conv(c, c1, *args), args[0]
        elif kind in ("C3", "C3f"):
            m, out = _c3(c, c1, args[0], shortcut=kind == "C3"), args[0]
        elif kind == "SPPF":
            h = c1 // 2
            m = _new(
                c["SPPF"],
                cv1=_conv(c, c1, h),
                cv2=_conv(c, 4 * h, args[0]),
                m=nn.MaxPool2d(args[1], 1, args[1] // 2),
            )
            out = args[0]
        elif kind == "Upsample":
            m, out = nn.Upsample(None, 2, "nearest"), c1
        elif kind == "Concat":
            m, out = _new(c["Concat"], d=1), sum(chans[j] for j in src)
        else:  # Detect
            ch = [chans[j] for j in src]
            strides = torch.tensor([8.0, 16.0, 32.0, 64.0])
            anchors = torch.tensor(ANCHORS, dtype=torch.float32).view(4, 3, 2)
            m = _new(
                c["Detect"],
                nc=nc,
                no=nc + 5,
                nl=4,
                na=3,
                stride=strides,
                m=nn.ModuleList(nn.Conv2d(x, 3 * (nc + 5), 1) for x in ch),
            )
            m.register_buffer("anchors", anchors / strides.view(-1, 1, 1))
            for conv, s in zip(m.m, strides, strict=True):  # yolov5's _initialize_biases
                b = conv.bias.view(3, -1)
                b.data[:, 4] += math.log(8 / (640 / s) ** 2)
                b.data[:, 5:] += math.log(0.6 / (nc - 0.99999))
            out = 0
        m.f, m.i = src, i
        layers.append(m)
        chans.append(out)
    for mod in nn.Sequential(*layers).modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_var.fill_(1.0)
            mod.eval()
    save = sorted(
        {
            j
            for src, _, _ in LAYERS
            if src != -1
            for j in ([src] if isinstance(src, int) else src)
            if j != -1
        }
    )
    return _new(c["Model"], model=nn.Sequential(*layers), save=save, names=NAMES, nc=nc)


@pytest.fixture()
def p6_checkpoint(yolov5_modules, tmp_path: Path) -> Path:
    path = tmp_path / "md_v5_p6.pt"
    model = build_p6(yolov5_modules).eval()
    torch.save({"model": model.half(), "ema": None, "epoch": -1, "date": "2022-06-15"}, path)
    return path


def test_p6_checkpoint_loads_with_four_levels(p6_checkpoint: Path) -> None:
    assert checkpoint_format(p6_checkpoint) == "yolov5"
    legacy = LegacyYoloV5.from_weights(p6_checkpoint, torch.device("cpu"))
    assert legacy.names == ("animal", "person", "vehicle")
    assert legacy.stride == 64 and legacy.native_imgsz == 1280
    detect = legacy.model.model[-1]
    assert detect.nl == 4 and [float(s) for s in detect.stride] == [8.0, 16.0, 32.0, 64.0]
    with torch.inference_mode():
        out = legacy.model(torch.rand(1, 3, 1280, 1280))
    assert out.shape == (1, 3 * (160**2 + 80**2 + 40**2 + 20**2), 8)


def test_p6_decode_matches_yolov5s_formula(p6_checkpoint: Path) -> None:
    """The head's output equals yolov5's decode of its four raw maps, computed here anew."""
    legacy = LegacyYoloV5.from_weights(p6_checkpoint, torch.device("cpu"))
    detect = legacy.model.model[-1]
    raw: list[torch.Tensor] = []
    hooks = [conv.register_forward_hook(lambda m, i, o: raw.append(o)) for conv in detect.m]
    with torch.inference_mode():
        out = legacy.model(torch.rand(1, 3, 384, 640))[0]
    for h in hooks:
        h.remove()
    rows = []
    for level, (x, stride) in enumerate(zip(raw, (8, 16, 32, 64), strict=True)):
        ny, nx = x.shape[2:]
        y = x.view(3, 8, ny, nx).permute(0, 2, 3, 1).sigmoid()  # (na, ny, nx, 8)
        gy, gx = torch.meshgrid(torch.arange(ny), torch.arange(nx), indexing="ij")
        for a in range(3):
            aw, ah = ANCHORS[level][2 * a], ANCHORS[level][2 * a + 1]
            cx = (y[a, ..., 0] * 2 - 0.5 + gx) * stride
            cy = (y[a, ..., 1] * 2 - 0.5 + gy) * stride
            w, h = (y[a, ..., 2] * 2) ** 2 * aw, (y[a, ..., 3] * 2) ** 2 * ah
            rows.append(torch.stack([cx, cy, w, h, *y[a, ..., 4:].unbind(-1)], -1).view(-1, 8))
    assert torch.allclose(out, torch.cat(rows), atol=1e-3)


def test_p6_detects_through_settings_file_path(p6_checkpoint: Path, ultralytics_assets, tmp_path):
    """``SIGHTING_DETECTOR=/path/to/md_v5a.0.0.pt`` loads the file; frames are letterboxed to
    multiples of 64 and boxes come back in frame pixels."""
    from detection import load_detector
    from traps.batch import animal_classes, native_size

    settings = offline_settings(tmp_path, detector=str(p6_checkpoint), det_conf=0.01)
    detector = native_size(load_detector(settings))
    assert isinstance(detector, Detector) and detector.config.imgsz == 1280
    assert animal_classes(detector.names) == ("animal",)
    bus = read_image(ultralytics_assets / "bus.jpg")  # 1080 x 810
    det = detector.detect([bus, bus[:, :, 0]], whole_frame=False)
    for d in det:
        assert d.xyxy.dtype == np.float32 and d.xyxy.shape[1] == 4
        assert set(d.class_name) <= set(NAMES)
        if len(d):
            assert (d.xyxy[:, [0, 2]] <= bus.shape[1]).all() and (
                d.xyxy[:, [1, 3]] <= bus.shape[0]
            ).all()
    only = detector.detect([bus], classes=["animal"], whole_frame=False)[0]
    assert set(only.class_name) <= {"animal"}
    small = Detector(detector.backend, DetectorConfig(imgsz=640, conf=0.01))
    assert len(small.detect([bus], whole_frame=False)) == 1
