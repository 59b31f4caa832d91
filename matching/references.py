"""The one serialiser of a `Reference` (what is stored for one catalog image).

A reference becomes named blobs: `EMBEDDING` (its vectors, their tags and the main object
box, an npz) and, when a verifier described it, `KEYPOINTS` (`LocalFeatures.to_bytes`). The
catalog store keeps each blob as one feature object of the image (``catalogs/<id>/features/``);
the folder catalog's disk cache keeps them together in one file. Both read them back here.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np

from matching.features import LocalFeatures
from matching.pipeline import Reference

EMBEDDING = "emb.npz"  # feature kind: the image's vectors, their tags, the main object box
KEYPOINTS = "kp.npz"  # feature kind: the image's LocalFeatures


def to_blobs(ref: Reference) -> dict[str, bytes]:
    """The feature blobs of one catalog image: `EMBEDDING`, and `KEYPOINTS` when it has any."""
    buf = io.BytesIO()
    np.savez(
        buf,
        vectors=ref.vectors.astype(np.float32),
        tags=np.array(ref.tags, dtype=str),
        box=np.asarray(ref.box, dtype=np.int64),
    )
    blobs = {EMBEDDING: buf.getvalue()}
    if ref.features is not None:
        blobs[KEYPOINTS] = ref.features.to_bytes()
    return blobs


def read_vectors(blob: bytes) -> tuple[np.ndarray, list[str]]:
    """Vectors float32 (V, D) and tags (V,) of an `EMBEDDING` blob."""
    with np.load(io.BytesIO(blob)) as data:
        return data["vectors"].astype(np.float32), [str(t) for t in data["tags"]]


def read_box(blob: bytes) -> np.ndarray | None:
    """The main object's box, int64 (4,) xyxy, of an `EMBEDDING` blob (None: not stored)."""
    with np.load(io.BytesIO(blob)) as data:
        return data["box"].astype(np.int64) if "box" in data.files else None


def from_blobs(blobs: Mapping[str, bytes]) -> Reference:
    """The `Reference` that `to_blobs` wrote.

    Raises:
        KeyError: no `EMBEDDING` blob, or one written before the box was stored.
        ValueError: a blob is not an npz.
        BadInput: the `KEYPOINTS` blob is not features of the current format.
    """
    with np.load(io.BytesIO(blobs[EMBEDDING])) as data:
        vectors = data["vectors"].astype(np.float32)
        tags = [str(t) for t in data["tags"]]
        box = data["box"].astype(np.int64)
    keypoints = blobs.get(KEYPOINTS)
    return Reference(
        vectors=vectors,
        tags=tags,
        box=box,
        features=LocalFeatures.from_bytes(keypoints) if keypoints is not None else None,
    )
