"""Where descriptors come from besides files: a folder of images (embedded with a named model,
vectors cached) and a catalog in the store (its stored embeddings, no model run). Each also
gives an image reader for the contact sheets and the HTML map."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from analytics.data import Descriptors
from core.errors import BadInput, NotFound, SightingError
from core.settings import REPO_ROOT, Settings

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
CACHE_DIR = REPO_ROOT / ".cache" / "analytics"


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted; hidden folders skipped)."""
    return sorted(
        p
        for p in Path(folder).rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def file_reader(root: Path | None = None, side: int = 256) -> Callable[[str], np.ndarray | None]:
    """path -> uint8 (h, w, 3) (longer side <= ``side``), relative paths under ``root``;
    None for a file that is missing or unreadable."""
    from core.images import read_image
    from embedding.photos import shrink

    def read(path: str) -> np.ndarray | None:
        p = Path(path)
        if not p.is_absolute() and root is not None:
            p = Path(root) / p
        try:
            return shrink(read_image(p), side)
        except (SightingError, OSError):
            return None

    return read


def embed_folder(
    folder: Path,
    settings: Settings,
    model: str = "products",
    cache_dir: Path = CACHE_DIR,
    progress: Callable[[int, int], None] | None = None,
) -> Descriptors:
    """Embed every image of ``folder`` (the whole image) with the embedder ``model``.

    Vectors are cached per model fingerprint in ``cache_dir`` (one ``.npz`` per folder and
    model), keyed by each file's relative path, size and modification time, so a second run
    embeds only new or changed files. Paths are relative to ``folder``; the first folder level
    is taken as the item (``item/photo.jpg``, the layout of ../shared/data).

    Raises:
        NotFound: the folder does not exist.
        BadInput: it holds no readable image.
        ModelUnavailable: the model cannot be loaded.
    """
    from core.runtime import prepare_environment

    prepare_environment()
    from core.images import read_image
    from embedding import load_embedder

    folder = Path(folder)
    if not folder.is_dir():
        raise NotFound(f"no folder {folder}")
    files = list_images(folder)
    if not files:
        raise BadInput(f"{folder} holds no image ({', '.join(IMAGE_SUFFIXES)})")
    embedder = load_embedder(settings.model_copy(update={"embedder": model}))
    rel = [f.relative_to(folder).as_posix() for f in files]
    stamps = [
        f"{p}|{f.stat().st_size}|{f.stat().st_mtime_ns}" for p, f in zip(rel, files, strict=True)
    ]
    key = hashlib.sha1(f"{folder.resolve()}|{embedder.fingerprint}".encode()).hexdigest()[:20]
    cache = Path(cache_dir) / f"{key}.npz"
    known: dict[str, np.ndarray] = {}
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            known = dict(zip(z["stamps"].tolist(), z["vectors"], strict=True))
    vectors: list[np.ndarray | None] = [known.get(s) for s in stamps]
    todo = [i for i, v in enumerate(vectors) if v is None]
    kept = [i for i, v in enumerate(vectors) if v is not None]
    batch = 32
    for s in range(0, len(todo), batch):
        part = todo[s : s + batch]
        images, ok = [], []
        for i in part:
            try:
                images.append(read_image(files[i]))
                ok.append(i)
            except (SightingError, OSError):
                continue  # unreadable: left out (listed nowhere else; the count shows)
        if images:
            for i, v in zip(ok, embedder.embed(images), strict=True):
                vectors[i] = v
                kept.append(i)
        if progress is not None:
            progress(min(s + batch, len(todo)), len(todo))
    kept.sort()
    if not kept:
        raise BadInput(f"{folder}: no image could be read")
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        stamps=np.array([stamps[i] for i in kept]),
        vectors=np.stack([vectors[i] for i in kept]).astype(np.float32),
    )
    tmp.replace(cache)
    paths = [rel[i] for i in kept]
    items = [p.split("/")[0] if "/" in p else "" for p in paths]
    return Descriptors(
        paths,
        np.stack([vectors[i] for i in kept]).astype(np.float32),
        items if all(items) else None,
        f"{folder} ({embedder.fingerprint})",
    )


def catalog_descriptors(store, catalog_id: str, owner: str | None = None):
    """A catalog's stored whole-image embeddings, one per image (no model run).

    Args:
        store: the catalog `Store`.
        catalog_id: the catalog.
        owner: when given, the tenant that must own the catalog (else `NotFound`).

    Returns:
        (`Descriptors` with paths ``item/image_id`` and items, an image reader for them).

    Raises:
        NotFound: no such catalog (or another owner's).
        BadInput: the catalog has fewer than 2 embedded images.
    """
    from catalog.repository import CatalogRepository
    from core.images import decode_image
    from embedding.photos import shrink
    from matching.references import EMBEDDING, read_vectors

    repo = CatalogRepository(store)
    manifest = repo.get_manifest(catalog_id)
    if owner is not None and manifest.owner != owner:
        raise NotFound(f"no catalog {catalog_id!r}")
    paths, items, rows, image_ids = [], [], [], {}
    for item in manifest.items.values():
        for image_id, record in item.images.items():
            blob = record.feature_keys.get(EMBEDDING)
            if blob is None:
                continue
            vectors, tags = read_vectors(repo.get_feature(blob))
            row = vectors[tags.index("")] if "" in tags else vectors[0]
            path = f"{item.item_id}/{image_id}"
            paths.append(path)
            items.append(item.item_id)
            rows.append(row)
            image_ids[path] = image_id
    if len(paths) < 2:
        raise BadInput(
            f"catalog {catalog_id!r} has {len(paths)} embedded image(s); analytics needs 2 or more"
        )

    def read(path: str) -> np.ndarray | None:
        image_id = image_ids.get(path)
        if image_id is None:
            return None
        try:
            _, data = repo.get_image(catalog_id, image_id)
            return shrink(decode_image(data), 256)
        except SightingError:
            return None

    data = Descriptors(paths, np.stack(rows).astype(np.float32), items, f"catalog {catalog_id}")
    return data, read
