"""`Detector`: frames -> one `Detections` per frame, from ultralytics or original YOLOv5 files.

Two backends share one small interface (``names`` and ``predict`` returning boxes, scores and
class ids in frame pixels): ultralytics checkpoints (``yolov5su.pt``, ``yolov8n.pt``) run
through ``ultralytics.YOLO``; original ultralytics/yolov5 checkpoints (``yolov5n.pt``) run
through `detection.yolov5_legacy`. `Detector` adds what the pipeline needs on top: class
filtering by name, clipping, crops, and the whole-frame row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from core.errors import BadInput, ModelUnavailable
from core.images import check_rgb
from core.runtime import configure_threads, prepare_environment
from core.settings import default_of
from detection.checkpoint import checkpoint_format
from detection.detections import (
    WHOLE_FRAME_CLASS_ID,
    WHOLE_FRAME_CLASS_NAME,
    Detections,
    object_array,
)
from detection.yolov5_legacy import LegacyYoloV5, letterbox_batch, letterbox_shape
from runtimes import RuntimeRequest, StageRuntime, accelerate
from weights.registry import sha256_of

if TYPE_CHECKING:
    from core.settings import Settings

Prediction = tuple[np.ndarray, np.ndarray, np.ndarray]  # xyxy (n, 4), scores (n,), ids (n,)


@dataclass(frozen=True)
class DetectorConfig:
    """Defaults of the detector; every call may override ``conf`` and ``whole_frame``.

    ``conf``, ``max_det`` and ``whole_frame`` take their defaults from `Settings`
    (``SIGHTING_DET_CONF``, ``SIGHTING_DET_MAX``, ``SIGHTING_WHOLE_FRAME``); `from_settings`
    takes them from a configured one. The others are the detector's internal knobs.
    """

    conf: float = default_of("det_conf")  # minimum score (objectness x class prob.) of a box
    iou: float = 0.45  # NMS: same-class boxes overlapping more than this are merged
    imgsz: int = 640  # longest side frames are resized to (rounded up to the stride)
    max_det: int = default_of("det_max")  # most boxes per frame (the whole-frame row on top)
    whole_frame: bool = default_of("whole_frame")  # add one row per frame for the whole image
    min_crop_px: int = 8  # boxes narrower or shorter than this (after clipping) are dropped
    half: bool = True  # float16 on CUDA; ignored on the CPU

    def __post_init__(self) -> None:
        for name in ("conf", "iou"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise BadInput(f"DetectorConfig.{name} must be in [0, 1], got {value}")
        for name in ("imgsz", "max_det", "min_crop_px"):
            if getattr(self, name) < 1:
                raise BadInput(f"DetectorConfig.{name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def from_settings(cls, settings: Settings, **options: object) -> DetectorConfig:
        """The configured ``conf``, ``max_det`` and ``whole_frame``, then ``options``.

        Raises:
            TypeError: an option that is not a field.
            BadInput: a value out of range.
        """
        configured = cls(
            conf=settings.det_conf, max_det=settings.det_max, whole_frame=settings.whole_frame
        )
        return replace(configured, **options)


class Backend(Protocol):
    """What `Detector` needs from a model."""

    names: tuple[str, ...]

    def predict(
        self,
        frames: Sequence[np.ndarray],
        *,
        conf: float,
        iou: float,
        imgsz: int,
        max_det: int,
        class_ids: Sequence[int] | None = None,
    ) -> list[Prediction]:
        """Per frame: xyxy float32 (n, 4) frame pixels, scores float32 (n,), ids int64 (n,)."""
        ...

    def accelerate(self, path: Path, request: RuntimeRequest) -> StageRuntime:
        """Run on ``request``'s runtime where the model exports (else torch, with the reason)."""
        ...


class UltralyticsBackend:
    """An ultralytics checkpoint run through ``ultralytics.YOLO``. Build with `from_weights`."""

    def __init__(self, yolo: object, device: torch.device, half: bool) -> None:
        self.yolo = yolo
        self.device = device
        self.half = half
        names = yolo.names  # type: ignore[attr-defined]
        self.names = tuple(str(names[k]) for k in sorted(names))
        self.runtime: StageRuntime | None = None
        self._forward = None  # the exported network (`accelerate`); None: YOLO.predict
        self.stride = 32

    @classmethod
    def from_weights(cls, path: Path, device: torch.device, *, half: bool) -> UltralyticsBackend:
        """Load an ultralytics ``.pt``; raises `ModelUnavailable` if ultralytics refuses it."""
        prepare_environment()
        from ultralytics import YOLO

        try:
            yolo = YOLO(str(path), task="detect")
            yolo.model.to(device).eval()
        except Exception as exc:  # ultralytics raises many types on bad files
            raise ModelUnavailable(f"ultralytics could not load {path}: {exc}") from None
        return cls(yolo, device, half and device.type == "cuda")

    def accelerate(self, path: Path, request: RuntimeRequest) -> StageRuntime:
        """Run the network on ``request``'s runtime (exported once from ``path``; dynamic
        batch, height and width), with yolov5-style letterbox and ultralytics' NMS around it
        (`predict`); on torch (``YOLO.predict``) when it cannot, with the reason."""
        if self.half:  # fp16 on CUDA stays torch's
            request = replace(request, runtime="torch")
        model = self.yolo.model  # type: ignore[attr-defined]
        self.stride = max(32, int(float(model.stride.max())))
        head = model.model[-1]
        dynamic = getattr(head, "dynamic", False)
        head.dynamic = True  # anchors from the input's shape, not baked in by the trace
        try:
            forward, self.runtime = accelerate(
                _FirstOutput(model).eval(),
                stage="detector",
                stem=path.stem,
                sources=[path],
                sample=torch.zeros(1, 3, self.stride * 2, self.stride * 3),
                shape=("b", 3, "h", "w"),
                request=request,
                device=self.device,
            )
        finally:
            head.dynamic = dynamic
        self._forward = None if self.runtime.runtime == "torch" else forward
        return self.runtime

    def predict(
        self,
        frames: Sequence[np.ndarray],
        *,
        conf: float,
        iou: float,
        imgsz: int,
        max_det: int,
        class_ids: Sequence[int] | None = None,
    ) -> list[Prediction]:
        """See `Backend.predict`. Frames are uint8 (H, W, 3) RGB; ultralytics wants BGR."""
        if self._forward is not None:
            return self._predict_exported(frames, conf, iou, imgsz, max_det, class_ids)
        threads = torch.get_num_threads()
        try:
            results = self.yolo.predict(  # type: ignore[attr-defined]
                [np.ascontiguousarray(f[..., ::-1]) for f in frames],
                conf=conf,
                iou=iou,
                imgsz=imgsz,
                max_det=max_det,
                classes=list(class_ids) if class_ids is not None else None,
                device=str(self.device),
                quantize=16 if self.half else None,  # fp16 on CUDA ('half' is deprecated)
                verbose=False,
            )
        finally:
            configure_threads(threads)  # ultralytics sets 1 thread on its first CPU predict
        out = []
        for r in results:
            boxes = r.boxes
            out.append(
                (
                    boxes.xyxy.float().cpu().numpy().astype(np.float32).reshape(-1, 4),
                    boxes.conf.float().cpu().numpy().astype(np.float32),
                    boxes.cls.cpu().numpy().astype(np.int64),
                )
            )
        return out

    def _predict_exported(
        self,
        frames: Sequence[np.ndarray],
        conf: float,
        iou: float,
        imgsz: int,
        max_det: int,
        class_ids: Sequence[int] | None,
    ) -> list[Prediction]:
        """The exported network between yolov5's letterbox (frames of one letterboxed shape
        run together) and ultralytics' NMS, boxes mapped back to frame pixels."""
        from ultralytics.utils.nms import non_max_suppression

        imgsz = -(-imgsz // self.stride) * self.stride
        groups: dict[tuple[int, int], list[int]] = {}
        for i, frame in enumerate(frames):
            groups.setdefault(letterbox_shape(frame.shape[:2], imgsz, self.stride), []).append(i)
        out: dict[int, Prediction] = {}
        for indices in groups.values():
            batch, meta = letterbox_batch([frames[i] for i in indices], imgsz, self.stride)
            x = torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255.0
            pred = self._forward(x)  # type: ignore[misc]
            kept = non_max_suppression(
                pred,
                conf,
                iou,
                classes=list(class_ids) if class_ids is not None else None,
                max_det=max_det,
            )
            for i, rows, (gain, pad_x, pad_y) in zip(indices, kept, meta, strict=True):
                rows = rows.float().cpu().numpy()
                boxes = rows[:, :4].astype(np.float64)
                boxes[:, [0, 2]] = (boxes[:, [0, 2]] - pad_x) / gain
                boxes[:, [1, 3]] = (boxes[:, [1, 3]] - pad_y) / gain
                out[i] = (
                    boxes.astype(np.float32),
                    rows[:, 4].astype(np.float32),
                    rows[:, 5].astype(np.int64),
                )
        return [out[i] for i in range(len(frames))]


class _FirstOutput(torch.nn.Module):
    """An ultralytics model whose forward returns only the decoded predictions
    (B, 4 + nc, anchors), as its export mode does."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.model(x)
        return y[0] if isinstance(y, (list, tuple)) else y


class Detector:
    """Frames -> `Detections`. Build with `from_weights` (or around any `Backend`)."""

    def __init__(
        self, backend: Backend, config: DetectorConfig | None = None, fingerprint: str = ""
    ) -> None:
        self.backend = backend
        self.config = config or DetectorConfig()
        #: ``"<file stem>:<sha256 prefix>:<conf>"``: what changes the crops, for caches
        self.fingerprint = fingerprint or f"{type(backend).__name__}:{self.config.conf}"

    @classmethod
    def from_weights(
        cls,
        path: Path,
        device: torch.device,
        config: DetectorConfig | None = None,
        runtime: RuntimeRequest | None = None,
    ) -> Detector:
        """Load a detector checkpoint, choosing the loader from what the file's pickle names.

        Args:
            path: an ultralytics checkpoint (``ultralytics.nn.tasks`` model) or an original
                ultralytics/yolov5 checkpoint (``models.yolo.Model``).
            device: where to run (``half`` in the config applies on CUDA only).
            config: thresholds and options; `DetectorConfig()` by default.
            runtime: the inference runtime (`runtimes`); None: torch.

        Raises:
            ModelUnavailable: missing, corrupt, unknown-format or unsafe file (path in message).
        """
        path = Path(path)
        config = config or DetectorConfig()
        if not path.is_file():
            raise ModelUnavailable(f"detector file {path} does not exist")
        if checkpoint_format(path) == "yolov5":
            backend: Backend = LegacyYoloV5.from_weights(path, device, half=config.half)
        else:
            backend = UltralyticsBackend.from_weights(path, device, half=config.half)
        detector = cls(backend, config, f"{path.stem}:{sha256_of(path)[:12]}:{config.conf}")
        if runtime is not None:
            backend.accelerate(path, runtime)
        return detector

    @property
    def runtime(self) -> StageRuntime:
        """What the network runs on (`runtimes.StageRuntime`; torch unless accelerated)."""
        return getattr(self.backend, "runtime", None) or StageRuntime(
            "detector", "torch", "fp32", "torch/fp32"
        )

    @property
    def names(self) -> tuple[str, ...]:
        """Class names of the model, indexed by class id."""
        return self.backend.names

    def class_ids(self, classes: Sequence[str]) -> list[int]:
        """Class ids of class names. Raises `BadInput` naming the unknown and known names."""
        if isinstance(classes, str):
            classes = [classes]
        index = {name: i for i, name in enumerate(self.names)}
        unknown = [c for c in classes if c not in index]
        if unknown:
            raise BadInput(
                f"unknown class name(s) {unknown}; this detector knows: {', '.join(self.names)}"
            )
        return sorted({index[c] for c in classes})

    def detect(
        self,
        frames: Sequence[np.ndarray],
        *,
        conf: float | None = None,
        classes: Sequence[str] | None = None,
        whole_frame: bool | None = None,
        crops: bool = True,
    ) -> list[Detections]:
        """Detect objects in a batch of frames.

        Args:
            frames: uint8 (H_i, W_i, 3) RGB each (sizes may differ; (H, W) grey is accepted).
            conf: minimum score; the config's ``conf`` when None.
            classes: keep only these class names (None: all). The whole-frame row is
                governed by ``whole_frame`` alone.
            whole_frame: add a last row per frame for the whole image (class id -1, class
                name "image", confidence 1.0, box = the frame); the config's when None.
            crops: put uint8 (h, w, 3) RGB crops (copies) in ``data["crop"]``.

        Returns:
            One `Detections` per frame: detections best first, then the whole-frame row.
            ``data["class_name"]`` object (N,) always; ``data["crop"]`` object (N,) if crops.

        Raises:
            BadInput: a frame that is not uint8 (H, W, 3), conf outside [0, 1], unknown class.
        """
        cfg = self.config
        conf = cfg.conf if conf is None else float(conf)
        if not 0.0 <= conf <= 1.0:
            raise BadInput(f"conf must be in [0, 1], got {conf}")
        whole_frame = cfg.whole_frame if whole_frame is None else whole_frame
        class_ids = None if classes is None else self.class_ids(classes)
        frames = [check_rgb(f, f"frame {i}", grey=True) for i, f in enumerate(frames)]
        if not frames:
            return []
        if class_ids == []:  # an empty filter keeps no boxes: skip the model
            preds = [_no_prediction() for _ in frames]
        else:
            preds = self.backend.predict(
                frames,
                conf=conf,
                iou=cfg.iou,
                imgsz=cfg.imgsz,
                max_det=cfg.max_det,
                class_ids=class_ids,
            )
        return [
            self._to_detections(frame, pred, whole_frame=whole_frame, crops=crops)
            for frame, pred in zip(frames, preds, strict=True)
        ]

    def _to_detections(
        self, frame: np.ndarray, pred: Prediction, *, whole_frame: bool, crops: bool
    ) -> Detections:
        """Clip, drop tiny boxes, name classes, cut crops, append the whole-frame row."""
        h, w = frame.shape[:2]
        xyxy, scores, ids = pred
        xyxy = xyxy.reshape(-1, 4).copy()
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, w)
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, h)
        size = self.config.min_crop_px
        keep = ((xyxy[:, 2] - xyxy[:, 0]) >= size) & ((xyxy[:, 3] - xyxy[:, 1]) >= size)
        xyxy, scores, ids = xyxy[keep], scores[keep], ids[keep]
        names = [self.names[i] for i in ids]
        if whole_frame:
            xyxy = np.concatenate([xyxy, np.array([[0, 0, w, h]], dtype=np.float32)])
            scores = np.concatenate([scores, np.ones(1, dtype=np.float32)])
            ids = np.concatenate([ids, np.array([WHOLE_FRAME_CLASS_ID], dtype=np.int64)])
            names.append(WHOLE_FRAME_CLASS_NAME)
        data = {"class_name": object_array(names)}
        if crops:
            data["crop"] = object_array([crop_box(frame, box) for box in xyxy])
        return Detections(xyxy=xyxy, confidence=scores, class_id=ids, data=data)


def crop_box(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Cut ``box`` (x1, y1, x2, y2, pixels, x2/y2 exclusive) out of ``frame``: a uint8 copy.

    The box is widened to whole pixels (floor of x1/y1, ceil of x2/y2) and kept at least one
    pixel in each direction.
    """
    h, w = frame.shape[:2]
    x1 = int(np.clip(np.floor(box[0]), 0, w - 1))
    y1 = int(np.clip(np.floor(box[1]), 0, h - 1))
    x2 = int(np.clip(np.ceil(box[2]), x1 + 1, w))
    y2 = int(np.clip(np.ceil(box[3]), y1 + 1, h))
    return frame[y1:y2, x1:x2].copy()


def _no_prediction() -> Prediction:
    return (
        np.empty((0, 4), dtype=np.float32),
        np.empty(0, dtype=np.float32),
        np.empty(0, dtype=np.int64),
    )
