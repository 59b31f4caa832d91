"""Training photos: read once, shrunk to what the model sees, augmented afresh.

``uint8 (H, W, 3)`` RGB arrays throughout (`core.images.read_image`).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from core.errors import SightingError
from core.images import long_side_size, read_image


def read_photos(paths: Sequence[Path], desc: str) -> Iterator[tuple[int, np.ndarray]]:
    """``(index in paths, image)`` of each readable photo, with a progress bar; unreadable
    photos are skipped with a warning (one bad file must not end an hour of training)."""
    for i, path in enumerate(tqdm(paths, desc=desc, unit="photo", file=sys.stderr)):
        try:
            image = read_image(path)
        except (SightingError, OSError) as exc:
            print(f"warning: skipping unreadable {path}: {exc}", file=sys.stderr)
            continue
        yield i, image


def shrink(image: np.ndarray, side: int) -> np.ndarray:
    """``uint8 (H, W, 3) -> uint8 (h, w, 3)`` with the longer side at most ``side`` (a training
    photo needs no more pixels than the model sees; augmenting a 4000 px photo is slow)."""
    h, w = image.shape[:2]
    if max(h, w) <= side:
        return image
    new_h, new_w = long_side_size(h, w, side)
    return np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR))


def load_photos(paths: Sequence[Path], side: int) -> tuple[list[np.ndarray], list[int]]:
    """Decode and `shrink` each readable photo once: ``uint8 (h, w, 3)`` images and their
    indices in ``paths``."""
    images, kept = [], []
    for i, image in read_photos(paths, "reading"):
        images.append(shrink(image, side))
        kept.append(i)
    return images, kept


def augment(image: np.ndarray, rng: np.random.Generator, flip: bool) -> np.ndarray:
    """``uint8 (H, W, 3) -> uint8 (h, w, 3)``: random crop of 55-100 % of the area (aspect
    3/4..4/3), optional horizontal flip, brightness/contrast/saturation jitter of +-30 %."""
    h, w = image.shape[:2]
    area = rng.uniform(0.55, 1.0) * h * w
    aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    ch = max(1, min(h, round(math.sqrt(area / aspect))))
    cw = max(1, min(w, round(math.sqrt(area * aspect))))
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    out = image[y : y + ch, x : x + cw].astype(np.float32)
    if flip and rng.random() < 0.5:
        out = out[:, ::-1]
    out = out * rng.uniform(0.7, 1.3)
    mean = out.mean()
    out = (out - mean) * rng.uniform(0.7, 1.3) + mean
    gray = out.mean(axis=2, keepdims=True)
    out = (out - gray) * rng.uniform(0.7, 1.3) + gray
    return np.ascontiguousarray(np.clip(out, 0, 255).astype(np.uint8))
