"""`LocalFeatures`: the keypoints of one image, computed once and cached for catalog images.

Sparse extractors (ALIKED, DISK) give keypoints ``(K, 2)``, descriptors ``(K, D)`` and scores
``(K,)``. LoFTR is detector-free: it matches two images directly, so the cacheable "features"
of a catalog image are its preprocessed (resized, grayscale) image, kept in ``image`` with no
keypoints. Either way the catalog side is computed once, serialised with `to_bytes` and read
back with `from_bytes`.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import numpy as np

from core.errors import BadInput

#: Version of the `to_bytes` layout; bump when it changes so old caches are recomputed.
FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class LocalFeatures:
    """Local features of one image.

    Attributes:
        keypoints: float32 (K, 2), x, y in pixels of the ORIGINAL image (pixel centres at
            integer coordinates).
        descriptors: float32 (K, D).
        scores: float32 (K,), detection scores.
        image_size: (H, W) of the original image.
        image: optional uint8 (h, w) grayscale image resized for a detector-free matcher
            (LoFTR); then K == 0 and ``h / H``, ``w / W`` give the scale.
    """

    keypoints: np.ndarray
    descriptors: np.ndarray
    scores: np.ndarray
    image_size: tuple[int, int]
    image: np.ndarray | None = None

    def __post_init__(self) -> None:
        kpts = np.ascontiguousarray(self.keypoints, dtype=np.float32)
        desc = np.ascontiguousarray(self.descriptors, dtype=np.float32)
        scores = np.ascontiguousarray(self.scores, dtype=np.float32)
        if kpts.ndim != 2 or kpts.shape[1] != 2:
            raise BadInput(f"keypoints must be (K, 2), got {kpts.shape}")
        k = kpts.shape[0]
        if desc.ndim != 2 or desc.shape[0] != k:
            raise BadInput(f"descriptors must be (K={k}, D), got {desc.shape}")
        if scores.shape != (k,):
            raise BadInput(f"scores must be (K={k},), got {scores.shape}")
        if len(self.image_size) != 2:
            raise BadInput(f"image_size must be (H, W), got {self.image_size}")
        size = (int(self.image_size[0]), int(self.image_size[1]))
        if min(size) <= 0:
            raise BadInput(f"image_size must be positive, got {size}")
        image = self.image
        if image is not None:
            image = np.ascontiguousarray(image)
            if image.dtype != np.uint8 or image.ndim != 2 or min(image.shape) <= 0:
                raise BadInput(
                    f"image must be uint8 (h, w) grayscale, got {image.dtype} {image.shape}"
                )
        object.__setattr__(self, "keypoints", kpts)
        object.__setattr__(self, "descriptors", desc)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "image_size", size)
        object.__setattr__(self, "image", image)

    @classmethod
    def empty(cls, dim: int, image_size: tuple[int, int] = (1, 1)) -> LocalFeatures:
        """No keypoints: keypoints (0, 2), descriptors (0, dim), scores (0,)."""
        return cls(
            np.zeros((0, 2), np.float32),
            np.zeros((0, dim), np.float32),
            np.zeros((0,), np.float32),
            image_size,
        )

    @classmethod
    def dense(cls, image: np.ndarray, image_size: tuple[int, int]) -> LocalFeatures:
        """Features of a detector-free matcher: the preprocessed image uint8 (h, w), no keypoints.

        Args:
            image: uint8 (h, w) grayscale, already resized for the matcher.
            image_size: (H, W) of the original image.
        """
        return cls(
            np.zeros((0, 2), np.float32),
            np.zeros((0, 0), np.float32),
            np.zeros((0,), np.float32),
            image_size,
            image=image,
        )

    def __len__(self) -> int:
        """Number of keypoints K (0 for dense features)."""
        return int(self.keypoints.shape[0])

    @property
    def dim(self) -> int:
        """Descriptor dimension D."""
        return int(self.descriptors.shape[1])

    @property
    def is_dense(self) -> bool:
        """Whether these are a detector-free matcher's image rather than keypoints."""
        return self.image is not None

    def to_bytes(self) -> bytes:
        """Serialise as a compressed npz; descriptors are stored as float16.

        Returns:
            bytes, readable by `from_bytes`.
        """
        arrays = {
            "version": np.array(FORMAT_VERSION, np.int32),
            "keypoints": self.keypoints,
            "descriptors": self.descriptors.astype(np.float16),
            "scores": self.scores,
            "image_size": np.array(self.image_size, np.int64),
        }
        if self.image is not None:
            arrays["image"] = self.image
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> LocalFeatures:
        """Read features written by `to_bytes`.

        Raises:
            BadInput: the bytes are not features of this format (corrupt or an old version).
        """
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                version = int(npz["version"])
                if version != FORMAT_VERSION:
                    raise BadInput(f"features format {version}, expected {FORMAT_VERSION}")
                return cls(
                    npz["keypoints"],
                    npz["descriptors"].astype(np.float32),
                    npz["scores"],
                    tuple(int(v) for v in npz["image_size"]),
                    image=npz["image"] if "image" in npz.files else None,
                )
        except BadInput:
            raise
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise BadInput(f"corrupt features: {exc}") from None
