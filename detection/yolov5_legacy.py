"""Inference for ORIGINAL ultralytics/yolov5 checkpoints (v5.x-v7.x, e.g. ``yolov5n.pt``), in
the P5 layout (3 output levels, strides 8/16/32, 640 input) and the P6 layout (4 levels, strides
8/16/32/64, 1280 input: ``yolov5n6.pt``... and MegaDetector v5, classes animal/person/vehicle).

Those files are full-model pickles that name classes of the yolov5 repository
(``models.yolo.Model``, ``models.common.C3``...), which ultralytics (v8+) refuses to load. This
module re-implements just the ``forward()`` of those classes and unpickles the file with a
restricted unpickler that maps ``models.*`` names to them, allows torch layers and plain data,
and refuses everything else. Pre- and post-processing follow yolov5's ``detect.py``:
letterbox (stride multiple, grey 114 padding), anchor-based decode, NMS on obj x cls.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
import torchvision
from torch.nn.utils.fusion import fuse_conv_bn_eval

from core.errors import ModelUnavailable
from core.pickles import pickle_module
from detection.checkpoint import resolve_safe_global
from runtimes import RuntimeRequest, StageRuntime, accelerate

# --------------------------------------------------------------------------------------------
# The yolov5 classes, forward() only; their attributes come from the pickle.
# --------------------------------------------------------------------------------------------


class Conv(nn.Module):
    """act(bn(conv(x))); act(conv(x)) once fused. (B, C1, H, W) -> (B, C2, H/s, W/s)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "bn"):
            return self.act(self.bn(self.conv(x)))
        return self.act(self.conv(x))


class DWConv(Conv):
    """Depth-wise `Conv` (same forward; groups live in the Conv2d)."""


class Focus(nn.Module):
    """Space-to-depth then `Conv` (YOLOv5 <= v5): (B, C, H, W) -> conv of (B, 4C, H/2, W/2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(
            torch.cat(
                [x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1
            )
        )


class Bottleneck(nn.Module):
    """x + cv2(cv1(x)) when ``add`` (shortcut and same channels), else cv2(cv1(x))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class BottleneckCSP(nn.Module):
    """CSP bottleneck (YOLOv5 <= v5): cv4(act(bn(cat(cv3(m(cv1(x))), cv2(x)))))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y1 = self.cv3(self.m(self.cv1(x)))
        y2 = self.cv2(x)
        return self.cv4(self.act(self.bn(torch.cat((y1, y2), 1))))


class C3(nn.Module):
    """CSP bottleneck with 3 convs: cv3(cat(m(cv1(x)), cv2(x)))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class SPP(nn.Module):
    """Spatial pyramid pooling: cv2(cat(x', maxpool_k(x') for k)), x' = cv1(x)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        return self.cv2(torch.cat([x] + [m(x) for m in self.m], 1))


class SPPF(nn.Module):
    """Fast SPP: three chained max-pools of cv1(x), concatenated, then cv2."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


class Concat(nn.Module):
    """Concatenate a list of tensors along ``self.d`` (channels)."""

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(x, self.d)


class Detect(nn.Module):
    """Anchor-based head: per level a 1x1 conv to ``na * (5 + nc)`` channels, then decode.

    ``anchors`` (nl, na, 2) is stored in stride units, so the pixel anchors are
    ``anchors[i] * stride[i]``. Per level: ``s = sigmoid(out)``,
    ``xy = (2 s - 0.5 + grid) * stride``, ``wh = (2 s)^2 * anchor``.
    """

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        """(B, C_i, H_i, W_i) per level -> float (B, sum_i na*H_i*W_i, 5 + nc): xywh, obj, cls."""
        z = []
        for i in range(self.nl):
            x = self.m[i](xs[i])
            bs, _, ny, nx = x.shape
            y = x.view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).sigmoid()
            stride = float(self.stride[i])
            yv, xv = torch.meshgrid(
                torch.arange(ny, device=x.device, dtype=y.dtype),
                torch.arange(nx, device=x.device, dtype=y.dtype),
                indexing="ij",
            )
            grid = torch.stack((xv, yv), 2).view(1, 1, ny, nx, 2)
            anchor_grid = (self.anchors[i] * stride).view(1, self.na, 1, 1, 2).to(y.dtype)
            xy = (y[..., 0:2] * 2 - 0.5 + grid) * stride
            wh = (y[..., 2:4] * 2) ** 2 * anchor_grid
            z.append(torch.cat((xy, wh, y[..., 4:]), -1).reshape(bs, -1, self.no))
        return torch.cat(z, 1)


class Model(nn.Module):
    """The yolov5 network: ``self.model`` (Sequential) routed by each layer's ``f``/``i``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float (B, 3, H, W) RGB in [0, 1], H and W multiples of 32 -> (B, A, 5 + nc)."""
        saved: list[torch.Tensor | None] = []
        for m in self.model:
            if m.f != -1:
                if isinstance(m.f, int):
                    x = saved[m.f]
                else:
                    x = [x if j == -1 else saved[j] for j in m.f]
            x = m(x)
            saved.append(x if m.i in self.save else None)
        return x


#: ``models.common.*`` / ``models.yolo.*`` names the restricted unpickler maps to the above.
LEGACY_CLASSES: dict[str, type[nn.Module]] = {
    "Conv": Conv,
    "DWConv": DWConv,
    "Focus": Focus,
    "Bottleneck": Bottleneck,
    "BottleneckCSP": BottleneckCSP,
    "C3": C3,
    "SPP": SPP,
    "SPPF": SPPF,
    "Concat": Concat,
    "Detect": Detect,
    "Model": Model,
    "DetectionModel": Model,  # v7.0 name
}


class RefusedGlobal(pickle.UnpicklingError):
    """The checkpoint references a global the restricted unpickler does not allow."""


def _allowed_global(module: str, name: str) -> object:
    """Maps yolov5 class names to `LEGACY_CLASSES`; allows torch layers and plain data only."""
    if module in ("models.common", "models.yolo"):
        if name in LEGACY_CLASSES:
            return LEGACY_CLASSES[name]
        raise RefusedGlobal(
            f"{module}.{name} is a yolov5 layer this loader does not implement "
            f"(supported: {', '.join(sorted(LEGACY_CLASSES))})"
        )
    obj = resolve_safe_global(module, name)
    if obj is None:
        raise RefusedGlobal(f"{module}.{name} is not allowed in a model checkpoint")
    return obj


#: A pickle module for ``torch.load(..., pickle_module=...)`` that uses the restricted unpickler.
restricted_pickle = pickle_module(_allowed_global, "sighting_restricted_pickle")


# --------------------------------------------------------------------------------------------
# Pre- and post-processing (yolov5 detect.py)
# --------------------------------------------------------------------------------------------


def letterbox_shape(hw: tuple[int, int], imgsz: int, stride: int) -> tuple[int, int]:
    """(H, W) of a frame of size ``hw`` after yolov5's letterbox(auto=True): fit ``imgsz``,
    keep the aspect ratio, pad each side up to a multiple of ``stride``."""
    h, w = hw
    r = min(imgsz / h, imgsz / w)
    nh, nw = max(1, round(h * r)), max(1, round(w * r))
    return -(-nh // stride) * stride, -(-nw // stride) * stride


def letterbox_batch(
    frames: Sequence[np.ndarray], imgsz: int, stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """Resize each frame to fit ``imgsz`` (keep aspect), pad to one shape of stride multiples.

    One frame gets yolov5's ``letterbox(auto=True)`` (minimal padding); a batch is padded to
    the largest such shape, centred, grey 114.

    Args:
        frames: uint8 (H_i, W_i, 3) RGB each.
        imgsz: longest side after resizing.
        stride: the network's largest stride (32).

    Returns:
        uint8 (B, H, W, 3) batch and float64 (B, 3) ``(gain, pad_x, pad_y)`` per frame:
        ``original = (letterboxed - pad) / gain``.
    """
    sizes = []
    for frame in frames:
        h, w = frame.shape[:2]
        r = min(imgsz / h, imgsz / w)
        sizes.append((r, max(1, round(w * r)), max(1, round(h * r))))
    out_w = max(-(-nw // stride) * stride for _, nw, _ in sizes)
    out_h = max(-(-nh // stride) * stride for _, _, nh in sizes)
    batch = np.full((len(frames), out_h, out_w, 3), 114, dtype=np.uint8)
    meta = np.zeros((len(frames), 3), dtype=np.float64)
    for i, (frame, (r, nw, nh)) in enumerate(zip(frames, sizes, strict=True)):
        h, w = frame.shape[:2]
        img = frame if (w, h) == (nw, nh) else cv2.resize(frame, (nw, nh), cv2.INTER_LINEAR)
        dw, dh = (out_w - nw) / 2, (out_h - nh) / 2
        left, top = round(dw - 0.1), round(dh - 0.1)
        batch[i, top : top + nh, left : left + nw] = img
        meta[i] = (r, left, top)
    return batch, meta


def non_max_suppression(
    pred: torch.Tensor,
    *,
    conf: float,
    iou: float,
    max_det: int,
    class_ids: Sequence[int] | None = None,
    max_nms: int = 30000,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """yolov5's NMS for one image, single label per box, classes kept apart.

    Args:
        pred: float (A, 5 + nc) decoded rows ``cx, cy, w, h, obj, cls_0..``.
        conf: minimum ``obj * cls`` score (and minimum ``obj``).
        iou: IoU above which a lower-scored box of the same class is dropped.
        max_det: most boxes kept.
        class_ids: keep only these classes (applied before NMS, as yolov5 does).
        max_nms: most candidates entering NMS.

    Returns:
        boxes float (n, 4) xyxy, scores float (n,), classes int64 (n,), best first.
    """
    x = pred[pred[:, 4] > conf]
    scores, cls = (x[:, 5:] * x[:, 4:5]).max(1)
    keep = scores > conf
    if class_ids is not None:
        keep &= torch.isin(cls, torch.as_tensor(list(class_ids), device=cls.device))
    x, scores, cls = x[keep], scores[keep], cls[keep]
    if len(x) > max_nms:
        top = scores.argsort(descending=True)[:max_nms]
        x, scores, cls = x[top], scores[top], cls[top]
    boxes = torch.cat((x[:, :2] - x[:, 2:4] / 2, x[:, :2] + x[:, 2:4] / 2), 1)
    kept = torchvision.ops.batched_nms(boxes, scores, cls, iou)[:max_det]
    return boxes[kept], scores[kept], cls[kept]


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


class LegacyYoloV5:
    """An original-format YOLOv5 detector. Build with `from_weights`."""

    def __init__(
        self, model: Model, names: tuple[str, ...], device: torch.device, half: bool = False
    ) -> None:
        self.model = model
        self.names = names
        self.device = device
        self.dtype = torch.float16 if half else torch.float32
        self.stride = max(32, int(max(float(s) for s in model.model[-1].stride)))
        #: the input size the model was trained at: 1280 for the P6 layout (4 output levels,
        #: strides 8-64, e.g. MegaDetector v5), 640 for P5 (3 levels, strides 8-32)
        self.native_imgsz = 1280 if self.stride >= 64 else 640
        #: the network's forward: the torch model, or its exported copy (`accelerate`)
        self.forward = model
        self.runtime: StageRuntime | None = None
        #: the file the model was loaded from (`from_weights`)
        self.source: Path | None = None

    def accelerate(self, path: Path, request: RuntimeRequest) -> StageRuntime:
        """Run the network on ``request``'s runtime (exported once from ``path``; dynamic
        batch, height and width), or on torch with the reason when it cannot."""
        if self.dtype != torch.float32:  # fp16 on CUDA stays torch's
            request = replace(request, runtime="torch")
        sample = torch.zeros(1, 3, self.stride * 2, self.stride * 3)
        self.forward, self.runtime = accelerate(
            self.model,
            stage="detector",
            stem=path.stem,
            sources=[path],
            sample=sample,
            shape=("b", 3, "h", "w"),
            request=request,
            device=self.device,
        )
        return self.runtime

    @classmethod
    def from_weights(
        cls, path: Path, device: torch.device, *, half: bool = False, fuse: bool = True
    ) -> LegacyYoloV5:
        """Load an original YOLOv5 checkpoint with the restricted unpickler.

        Args:
            path: a ``.pt`` written by ultralytics/yolov5 (``{"model": Model, ...}``).
            device: where to run.
            half: float16 weights and inputs (CUDA only).
            fuse: fold BatchNorm into the convolutions, as yolov5's ``attempt_load`` does.

        Raises:
            ModelUnavailable: missing/corrupt file, a disallowed global, or no class names.
        """
        try:
            ckpt = torch.load(
                path, map_location="cpu", weights_only=False, pickle_module=restricted_pickle
            )
        except RefusedGlobal as exc:
            raise ModelUnavailable(f"model file {path} refused: {exc}") from None
        except FileNotFoundError:
            raise ModelUnavailable(f"model file {path} does not exist") from None
        except Exception as exc:  # torch raises many types on corrupt archives
            raise ModelUnavailable(f"model file {path} is corrupt or unreadable: {exc}") from None
        model = (ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else None
        if not isinstance(model, Model) or not isinstance(model.model[-1], Detect):
            raise ModelUnavailable(
                f"model file {path} holds no YOLOv5 detection model (expected a dict with "
                "'model': models.yolo.Model ending in Detect)"
            )
        names = getattr(model, "names", None)
        if isinstance(names, dict):
            names = [names[k] for k in sorted(names)]
        nc = int(getattr(model, "nc", model.model[-1].nc))
        if not names or len(names) != nc or model.model[-1].nc != nc:
            raise ModelUnavailable(
                f"model file {path}: class names ({len(names or [])}) do not match nc ({nc})"
            )
        model = model.float()
        for m in model.modules():
            if isinstance(m, nn.Upsample):
                m.recompute_scale_factor = None  # torch >= 1.11 compatibility, as yolov5 does
            if fuse and isinstance(m, Conv) and hasattr(m, "bn"):
                m.conv = fuse_conv_bn_eval(m.conv, m.bn)
                del m.bn
        detect = model.model[-1]
        detect.stride = torch.as_tensor(detect.stride, dtype=torch.float32).cpu()
        half = half and device.type == "cuda"
        model = model.to(device).eval().requires_grad_(False)
        if half:
            model = model.half()
        loaded = cls(model, tuple(str(n) for n in names), device, half)
        loaded.source = Path(path)
        return loaded

    @torch.inference_mode()
    def predict(
        self,
        frames: Sequence[np.ndarray],
        *,
        conf: float,
        iou: float,
        imgsz: int,
        max_det: int,
        class_ids: Sequence[int] | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Detect objects in a batch of frames.

        Args:
            frames: uint8 (H_i, W_i, 3) RGB each, sizes may differ.
            conf, iou, max_det, class_ids: see `non_max_suppression`.
            imgsz: longest side the frames are resized to (rounded up to the stride).

        Returns:
            Per frame: boxes float32 (n, 4) xyxy in frame pixels (unclipped), scores
            float32 (n,), class ids int64 (n,).
        """
        if not frames:
            return []
        imgsz = -(-imgsz // self.stride) * self.stride
        # Frames with the same letterboxed shape run together, so a frame's result never
        # depends on the other frames of the batch (yolov5 detect.py's minimal padding).
        groups: dict[tuple[int, int], list[int]] = {}
        for i, frame in enumerate(frames):
            groups.setdefault(letterbox_shape(frame.shape[:2], imgsz, self.stride), []).append(i)
        out: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for indices in groups.values():
            batch, meta = letterbox_batch([frames[i] for i in indices], imgsz, self.stride)
            x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2)
            pred = self.forward(x.to(self.dtype) / 255.0).float()
            for i, p, (gain, pad_x, pad_y) in zip(indices, pred, meta, strict=True):
                boxes, scores, cls = non_max_suppression(
                    p, conf=conf, iou=iou, max_det=max_det, class_ids=class_ids
                )
                boxes = boxes.cpu().numpy().astype(np.float64)
                boxes[:, [0, 2]] = (boxes[:, [0, 2]] - pad_x) / gain
                boxes[:, [1, 3]] = (boxes[:, [1, 3]] - pad_y) / gain
                out[i] = (
                    boxes.astype(np.float32),
                    scores.cpu().numpy().astype(np.float32),
                    cls.cpu().numpy().astype(np.int64),
                )
        return [out[i] for i in range(len(frames))]
