"""A catalog read from a folder in the data layout (``CATALOG/<item_id>/<image>``).

Used by the command line and the benchmarks: every image is described once with the
pipeline (progress bar), and the description is cached on disk under ``.cache/references``
keyed by the image's content and the models' fingerprints, so a second run starts at once.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import zipfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.errors import BadInput, SightingError
from core.images import list_images, read_image
from core.settings import REPO_ROOT
from matching.catalog_view import CatalogView
from matching.features import LocalFeatures
from matching.index import new_index
from matching.pipeline import Pipeline, Reference
from matching.references import from_blobs, to_blobs

log = logging.getLogger(__name__)

CACHE_DIR = REPO_ROOT / ".cache" / "references"


@dataclass(frozen=True)
class FolderImage:
    """One catalog image on disk."""

    item_id: str
    image_id: str  # ``<item_id>/<file name>``, unique in the catalog
    path: Path


def scan_catalog(folder: Path) -> list[FolderImage]:
    """Every image of a folder catalog, sorted by item then file.

    Raises:
        BadInput: the folder does not exist or holds no item folder with images.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInput(f"catalog folder {folder} does not exist")
    images = [
        FolderImage(item.name, f"{item.name}/{path.name}", path)
        for item in sorted(p for p in folder.iterdir() if p.is_dir() and p.name != "_none")
        for path in list_images(item)
    ]
    if not images:
        raise BadInput(f"{folder} holds no <item_id>/<image> files")
    return images


#: Version of the cache files' layout (part of the cache key: old files are never read).
CACHE_FORMAT = "blobs-1"


def _cache_key(pipeline: Pipeline, kind: str) -> str:
    parts = [CACHE_FORMAT, pipeline.detector.fingerprint, pipeline.embedder_for(kind).fingerprint]
    parts.append(pipeline.verifier.fingerprint if pipeline.verifier else "none")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def _save(path: Path, ref: Reference) -> None:
    """One file per image: the reference's blobs (`matching.references`) side by side."""
    buf = io.BytesIO()
    np.savez(buf, **{name: np.frombuffer(b, np.uint8) for name, b in to_blobs(ref).items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    # a temp file of this process's own, then an atomic rename: concurrent runs that index
    # the same folder (two benchmarks) each write whole files and never each other's temp
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getvalue())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(path: Path) -> Reference:
    with np.load(path) as data:
        return from_blobs({name: data[name].tobytes() for name in data.files})


def describe_folder(
    pipeline: Pipeline,
    images: list[FolderImage],
    *,
    kind: str = "products",
    cache: bool = True,
    progress: bool = True,
) -> dict[str, Reference]:
    """Describe every image (cached on disk); unreadable images are skipped with a warning."""
    cache_dir = CACHE_DIR / _cache_key(pipeline, kind)
    refs: dict[str, Reference] = {}
    for image in tqdm(images, desc="indexing catalog", unit="img", disable=not progress):
        digest = hashlib.sha1(image.path.read_bytes()).hexdigest()
        cached = cache_dir / f"{digest}.npz"
        if cache and cached.is_file():
            try:
                refs[image.image_id] = _load(cached)
                continue
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
                log.warning("recomputing %s: its cache file is unreadable (%s)", image.path, exc)
        try:
            ref = pipeline.describe_reference(read_image(image.path), kind)
        except SightingError as exc:
            log.warning("skipping %s: %s", image.path, exc)
            continue
        if cache:
            _save(cached, ref)
        refs[image.image_id] = ref
    return refs


def load_folder_catalog(
    pipeline: Pipeline,
    folder: str | Path,
    *,
    kind: str = "products",
    cache: bool = True,
    progress: bool = True,
    items: Collection[str] | None = None,
) -> CatalogView:
    """Index a folder catalog for matching.

    Args:
        pipeline: the models that describe the images.
        folder: ``<item_id>/<image>`` folders.
        kind: ``"products"`` or ``"animals"``.
        items: only these items' images (None: all; benchmarks' smaller catalogs).

    Returns:
        A `CatalogView` whose keypoints are all in memory.
    """
    folder = Path(folder)
    images = scan_catalog(folder)
    if items is not None:
        images = [image for image in images if image.item_id in items]
    refs = describe_folder(pipeline, images, kind=kind, cache=cache, progress=progress)
    embedder = pipeline.embedder_for(kind)
    features: dict[str, LocalFeatures] = {}
    view = CatalogView.empty(
        folder.name,
        kind,
        embedder.dim,
        features.__getitem__,
        cache_size=0,  # every keypoint is in ``features`` already
        embedder=embedder.fingerprint,
        index=new_index(  # SIGHTING_INDEX_BACKEND's: in memory, or Milvus
            None,
            embedder.dim,
            catalog_id=f"folder-{folder.name}-{kind}",
            tenant="folder",
            embedder=embedder.fingerprint,
        ),
    )
    view.index.clear()  # a folder catalog is built anew each run (Milvus keeps old rows)
    for image in images:
        ref = refs.get(image.image_id)
        if ref is None:
            continue
        view.add_image(image.item_id, image.image_id, ref.vectors, ref.tags, ref.box)
        view.images_of.setdefault(image.item_id, []).append(image.image_id)
        if ref.features is not None:
            features[image.image_id] = ref.features
    return view
