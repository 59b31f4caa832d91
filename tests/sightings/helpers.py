"""Small real inputs for the sightings tests: a catalog in a store, a matched frame."""

from __future__ import annotations

import io

import numpy as np

from catalog.repository import CatalogRepository, Fingerprints, NewImage
from detection.detections import Detections
from matching.result import FrameResult, Match
from sightings.keep import KeepContext
from sightings.model import SightingSource

FP = Fingerprints(embedder="emb:1", verifier="kp:1")


def jpeg(seed: int = 0, size: int = 32) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def catalog(repo: CatalogRepository, items=("a", "b", "c"), owner: str = "t1") -> str:
    cid = repo.create_catalog("shelf", "products", owner).catalog_id
    for i, item in enumerate(items):
        blobs = {"emb.npz": f"v{item}".encode()}
        repo.add_images(cid, item, {"n": i}, [NewImage(jpeg(i), "image/jpeg", 32, 32, blobs)], FP)
    return cid


def match(item: str, score: float, sim: float = 0.8, inliers: int = 10) -> Match:
    return Match(item, f"img-{item}", sim, inliers, 0.3, True, score >= 0.9, score)


def frame_result(rows: list[list[Match]], tracks: list[int] | None = None) -> FrameResult:
    n = len(rows)
    rng = np.random.default_rng(n)
    crops = np.empty(n, dtype=object)
    for i in range(n):
        crops[i] = rng.integers(0, 255, (20 + i, 16, 3), dtype=np.uint8)
    det = Detections(
        xyxy=np.array([[i, i, i + 16, i + 20] for i in range(n)], dtype=np.float32).reshape(-1, 4),
        confidence=np.full(n, 0.9, dtype=np.float32),
        class_id=np.zeros(n, dtype=np.int64),
        data={"crop": crops, "class_name": np.array(["bottle"] * n, dtype=object)},
        tracker_id=None if tracks is None else np.array(tracks),
    )
    return FrameResult(det, rows)


def context(cid: str, version: int = 4, tenant: str = "t1", **kw) -> KeepContext:
    source = kw.pop("source", SightingSource(kind="detect", file_name="shelf.jpg"))
    return KeepContext(cid, tenant, version, source, embedder=FP.embedder, **kw)


FRAME = np.zeros((48, 64, 3), dtype=np.uint8)
