"""The vector index: exact inner-product search over catalog image vectors, results per item.

Every vector is one catalog image and belongs to one item; an item may have several images.
`VectorIndex.search` returns, for each query, the top-k *distinct items* ranked by their best
image's similarity (and which image that was), so an item with many photos never crowds the
shortlist. Backed by FAISS ``IndexIDMap2(IndexFlatIP(d))`` (exact; with L2-normalised vectors
the score is the cosine similarity), searched on the GPU when FAISS sees one.

`CatalogIndex` is the interface the pipeline and the catalog views use; `new_index` makes one
of the backend that `IndexConfig` (``SIGHTING_INDEX_BACKEND``) names: `VectorIndex` in the
worker (``faiss``, the default) or `matching.milvus_index.MilvusIndex` (``milvus``: the
vectors live in Milvus, the worker holds none).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import faiss
import numpy as np

from core.errors import BadInput, Conflict

_FORMAT = 1  # version of the `to_bytes` layout


@dataclass(frozen=True)
class ItemHits:
    """Item-level search results of Q queries with up to k items each.

    Attributes:
        item_ids: Q lists; list q holds the distinct items of query q, best first; it is
            shorter than k when the index has fewer than k items (empty for an empty index).
        image_ids: Q lists parallel to ``item_ids``: the image of each item that scored best.
        scores: float32 (Q, k); ``scores[q, j]`` is the similarity of ``item_ids[q][j]`` and
            ``-inf`` where there is no j-th item (see ``valid``).
    """

    item_ids: list[list[str]]
    image_ids: list[list[str]]
    scores: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        """bool (Q, k): True where ``scores`` holds a real hit."""
        return np.isfinite(self.scores)

    def __len__(self) -> int:
        """Number of queries Q."""
        return len(self.item_ids)

    def query(self, q: int) -> list[tuple[str, str, float]]:
        """Hits of query ``q`` as ``(item_id, image_id, score)``, best first."""
        return [
            (item, image, float(score))
            for item, image, score in zip(
                self.item_ids[q], self.image_ids[q], self.scores[q], strict=False
            )
        ]


def check_vectors(dim: int, vectors: np.ndarray, name: str) -> np.ndarray:
    """Validate ``(N, dim)`` finite numbers; returns contiguous float32 (N, dim).

    Raises:
        BadInput: another shape, not numbers, or NaN / infinite values.
    """
    arr = np.asarray(vectors)
    if arr.ndim != 2 or arr.shape[1] != dim or not np.issubdtype(arr.dtype, np.number):
        raise BadInput(f"{name} must be a numeric (N, {dim}) array, got {arr.dtype} {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise BadInput(f"{name} contain NaN or infinite values")
    return arr


def check_add(
    dim: int, vectors: np.ndarray, item_ids: Sequence[str], image_ids: Sequence[str]
) -> tuple[np.ndarray, list[str], list[str]]:
    """Validate the arguments of `CatalogIndex.add` (shape, one id each, no repeated image id).

    Raises:
        BadInput: wrong shape, non-finite values, id lists of another length, empty ids.
        Conflict: an image id repeated in ``image_ids``.
    """
    vectors = check_vectors(dim, vectors, "vectors")
    n = vectors.shape[0]
    item_ids, image_ids = list(item_ids), list(image_ids)
    if len(item_ids) != n or len(image_ids) != n:
        raise BadInput(
            f"add needs one item id and one image id per vector: {n} vectors, "
            f"{len(item_ids)} item ids, {len(image_ids)} image ids"
        )
    for value in (*item_ids, *image_ids):
        if not isinstance(value, str) or not value:
            raise BadInput(f"item and image ids must be non-empty strings, got {value!r}")
    if len(set(image_ids)) != n:
        dup = sorted({i for i in image_ids if image_ids.count(i) > 1})
        raise Conflict(f"image ids repeated in one add: {dup[:5]}")
    return vectors, item_ids, image_ids


@runtime_checkable
class CatalogIndex(Protocol):
    """What the matcher and the catalog views need of one catalog's vector index.

    Every vector is one catalog image (a vector id) of one item; ids are strings.
    Implementations: `VectorIndex` (FAISS in the worker), `matching.milvus_index.MilvusIndex`.
    """

    dim: int

    def __len__(self) -> int: ...

    @property
    def items(self) -> list[str]: ...

    def images_of(self, item_id: str) -> list[str]: ...

    def __contains__(self, image_id: object) -> bool: ...

    def add(
        self, vectors: np.ndarray, item_ids: Sequence[str], image_ids: Sequence[str]
    ) -> None: ...

    def remove_images(self, image_ids: Sequence[str]) -> int: ...

    def remove_item(self, item_id: str) -> int: ...

    def search(self, queries: np.ndarray, k: int) -> ItemHits: ...

    def clear(self) -> None: ...


@dataclass(frozen=True)
class IndexConfig:
    """Which index backend catalog views use (``SIGHTING_INDEX_BACKEND`` and the Milvus ones).

    Attributes:
        backend: ``"faiss"`` (each worker indexes the catalogs it serves) or ``"milvus"``.
        milvus_uri: a Milvus Lite folder (``/path/milvus.db``, one process) or a server
            (``http://host:19530``).
        milvus_token: ``user:password`` or an API key for a server ('' = none).
        milvus_timeout_s: a Milvus call slower than this answers 503 (engine unavailable).
        milvus_flat_max: vectors in a collection up to which it keeps an exact FLAT index;
            above it `python -m catalog reindex --backend milvus` builds HNSW.
        milvus_ef: HNSW search breadth (at least the k asked).
    """

    backend: str = "faiss"
    milvus_uri: str = ""
    milvus_token: str = ""
    milvus_timeout_s: float = 10.0
    milvus_flat_max: int = 200_000
    milvus_ef: int = 256

    @classmethod
    def from_settings(cls, settings: Any) -> IndexConfig:
        """The config that a `core.settings.Settings` names."""
        uri = settings.milvus_uri or str(settings.data_dir / "milvus.db")
        return cls(
            backend=settings.index_backend,
            milvus_uri=uri,
            milvus_token=settings.milvus_token or "",
            milvus_timeout_s=settings.milvus_timeout_s,
            milvus_flat_max=settings.milvus_flat_max,
            milvus_ef=settings.milvus_ef,
        )


def default_index_config() -> IndexConfig:
    """The config of the process's settings (environment and `.env`)."""
    from core.settings import get_settings

    return IndexConfig.from_settings(get_settings())


def new_index(
    config: IndexConfig | None,
    dim: int,
    *,
    catalog_id: str = "",
    tenant: str = "",
    embedder: str | None = None,
) -> CatalogIndex:
    """An empty index of one catalog on the configured backend (None: the settings').

    With ``milvus`` the catalog's vectors already in the engine (under ``catalog_id``) are
    the index's: it is a handle on them, not a copy; `catalog.vector_sync` keeps them in step
    with the store.

    Raises:
        IndexUnavailable: the Milvus engine cannot be reached.
        Conflict: the engine holds this embedder's vectors with another dimension.
    """
    config = config or default_index_config()
    if config.backend == "faiss":
        return VectorIndex(dim)
    if config.backend == "milvus":
        from matching.milvus_index import MilvusIndex, engine_for

        return MilvusIndex(
            engine_for(config), catalog_id or "default", dim, tenant=tenant, embedder=embedder
        )
    raise BadInput(f"unknown index backend {config.backend!r} (faiss or milvus)")


class VectorIndex:
    """Exact inner-product index of catalog image vectors, searched per item.

    Thread-safe: one writer and any number of searchers may share an instance (an RLock
    serialises the calls).

    Args:
        dim: length D of every vector.
    """

    def __init__(self, dim: int) -> None:
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise BadInput(f"VectorIndex dimension must be a positive int, got {dim!r}")
        self.dim = dim
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._gpu_index = None  # search copy on the GPU, rebuilt after writes
        self._gpu_stale = True
        self._next_id = 0
        self._image_of: dict[int, str] = {}  # faiss id -> image id
        self._item_of: dict[int, str] = {}  # faiss id -> item id
        self._id_of_image: dict[str, int] = {}  # image id -> faiss id
        self._ids_of_item: dict[str, set[int]] = {}  # item id -> faiss ids
        self._lock = threading.RLock()

    # --- reading ------------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of vectors (catalog images)."""
        return len(self._image_of)

    @property
    def items(self) -> list[str]:
        """Ids of the items with at least one vector, sorted."""
        with self._lock:
            return sorted(self._ids_of_item)

    def images_of(self, item_id: str) -> list[str]:
        """Image ids of one item, sorted (empty for an unknown item)."""
        with self._lock:
            return sorted(self._image_of[i] for i in self._ids_of_item.get(item_id, ()))

    def __contains__(self, image_id: object) -> bool:
        """Whether an image id is in the index."""
        return image_id in self._id_of_image

    # --- writing ------------------------------------------------------------------------
    def add(self, vectors: np.ndarray, item_ids: Sequence[str], image_ids: Sequence[str]) -> None:
        """Add one vector per catalog image.

        Args:
            vectors: float32 (N, D), normally L2-normalised.
            item_ids: N item ids (repeats allowed: several images per item).
            image_ids: N image ids, unique in the index.

        Raises:
            BadInput: wrong shape, non-finite values, or id lists of another length than N.
            Conflict: an image id already in the index, or repeated in ``image_ids``.
        """
        vectors, item_ids, image_ids = check_add(self.dim, vectors, item_ids, image_ids)
        n = vectors.shape[0]
        with self._lock:
            existing = [i for i in image_ids if i in self._id_of_image]
            if existing:
                raise Conflict(f"image ids already in the index: {existing[:5]}")
            if n == 0:
                return
            ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
            self._index.add_with_ids(vectors, ids)
            self._next_id += n
            for fid, item, image in zip(ids.tolist(), item_ids, image_ids, strict=True):
                self._image_of[fid] = image
                self._item_of[fid] = item
                self._id_of_image[image] = fid
                self._ids_of_item.setdefault(item, set()).add(fid)
            self._gpu_stale = True

    def remove_images(self, image_ids: Sequence[str]) -> int:
        """Remove images by id; unknown ids are ignored. Returns the number removed."""
        with self._lock:
            fids = [
                self._id_of_image[i] for i in dict.fromkeys(image_ids) if i in self._id_of_image
            ]
            return self._remove(fids)

    def remove_item(self, item_id: str) -> int:
        """Remove every image of one item. Returns the number of vectors removed (0: unknown)."""
        with self._lock:
            return self._remove(sorted(self._ids_of_item.get(item_id, ())))

    def _remove(self, fids: list[int]) -> int:
        if not fids:
            return 0
        removed = self._index.remove_ids(np.asarray(fids, dtype=np.int64))
        for fid in fids:
            image, item = self._image_of.pop(fid), self._item_of.pop(fid)
            del self._id_of_image[image]
            members = self._ids_of_item[item]
            members.discard(fid)
            if not members:
                del self._ids_of_item[item]
        self._gpu_stale = True
        return int(removed)

    def clear(self) -> None:
        """Remove every vector."""
        with self._lock:
            self._remove(sorted(self._image_of))

    # --- searching ----------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> ItemHits:
        """Top-k distinct items per query, each ranked by its best image's similarity.

        Args:
            queries: float32 (Q, D).
            k: items wanted per query (>= 1).

        Returns:
            `ItemHits` with Q lists of at most k items and scores float32 (Q, k), -inf padded.

        Raises:
            BadInput: wrong shape, non-finite values, or k < 1.
        """
        return self._search(queries, k, ())

    def without(self, image_ids: Sequence[str]) -> IndexWithout:
        """This index searched as if ``image_ids`` (vector ids; unknown ones ignored) were
        not in it, without a copy: `IndexWithout`."""
        with self._lock:
            fids = [
                self._id_of_image[i] for i in dict.fromkeys(image_ids) if i in self._id_of_image
            ]
        return IndexWithout(self, np.asarray(fids, dtype=np.int64))

    def _search(
        self, queries: np.ndarray, k: int, left_out: np.ndarray | Sequence[int]
    ) -> ItemHits:
        """`search`, with the vectors of faiss ids ``left_out`` skipped by FAISS itself
        (``IDSelectorNot(IDSelectorBatch)``, on the CPU index: FAISS's GPU indexes take no
        selector)."""
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise BadInput(f"k must be a positive int, got {k!r}")
        queries = self._check_vectors(queries, "queries")
        nq = queries.shape[0]
        scores = np.full((nq, k), -np.inf, dtype=np.float32)
        items: list[list[str]] = [[] for _ in range(nq)]
        images: list[list[str]] = [[] for _ in range(nq)]
        with self._lock:
            left_out = [
                f for f in np.asarray(left_out, dtype=np.int64).tolist() if f in self._image_of
            ]
            total = len(self) - len(left_out)
            if total <= 0 or nq == 0:
                return ItemHits(items, images, scores)
            params = None
            if left_out:
                # both selectors stay referenced here while FAISS reads them
                batch = faiss.IDSelectorBatch(np.asarray(left_out, dtype=np.int64))
                selector = faiss.IDSelectorNot(batch)
                params = faiss.SearchParameters(sel=selector)
            index = self._index if params is not None else self._search_index()
            pending = np.arange(nq)
            # Probe a few vectors per wanted item; grow until k distinct items or all seen.
            probe = min(total, 4 * k)
            while pending.size:
                sims, fids = index.search(queries[pending], probe, params=params)
                unfinished = []
                for row, q in enumerate(pending.tolist()):
                    seen: dict[str, tuple[str, float]] = {}
                    for fid, sim in zip(fids[row].tolist(), sims[row].tolist(), strict=True):
                        if fid < 0:
                            continue
                        item = self._item_of[fid]
                        if item not in seen:
                            seen[item] = (self._image_of[fid], sim)
                            if len(seen) == k:
                                break
                    if len(seen) < k and probe < total:
                        unfinished.append(q)
                        continue
                    items[q] = list(seen)
                    images[q] = [image for image, _ in seen.values()]
                    scores[q, : len(seen)] = [sim for _, sim in seen.values()]
                pending = np.asarray(unfinished, dtype=np.int64)
                probe = min(total, probe * 4)
        return ItemHits(items, images, scores)

    def _search_index(self) -> faiss.Index:
        """The CPU index, or its GPU copy when FAISS sees a GPU (rebuilt after writes)."""
        if faiss.get_num_gpus() == 0:
            return self._index
        if self._gpu_index is None or self._gpu_stale:
            if not hasattr(self, "_gpu_resources"):
                self._gpu_resources = faiss.StandardGpuResources()
            self._gpu_index = faiss.index_cpu_to_gpu(self._gpu_resources, 0, self._index)
            self._gpu_stale = False
        return self._gpu_index

    def _check_vectors(self, vectors: np.ndarray, name: str) -> np.ndarray:
        return check_vectors(self.dim, vectors, name)

    # --- serialisation ------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The whole index (FAISS index + id mappings) as one ``.npz`` blob; see `from_bytes`."""
        with self._lock:
            fids = np.asarray(sorted(self._image_of), dtype=np.int64)
            buf = io.BytesIO()
            np.savez(
                buf,
                format=np.int64(_FORMAT),
                dim=np.int64(self.dim),
                next_id=np.int64(self._next_id),
                faiss=faiss.serialize_index(self._index),
                fids=fids,
                item_ids=np.asarray([self._item_of[f] for f in fids.tolist()], dtype=np.str_),
                image_ids=np.asarray([self._image_of[f] for f in fids.tolist()], dtype=np.str_),
            )
            return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> VectorIndex:
        """Rebuild an index written by `to_bytes` (same vectors, ids and next id).

        Raises:
            BadInput: the bytes are not a serialised `VectorIndex` of a known format.
        """
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                parts = {key: npz[key] for key in npz.files}
            if int(parts["format"]) != _FORMAT:
                raise BadInput(f"VectorIndex format {int(parts['format'])} is not {_FORMAT}")
            index = faiss.deserialize_index(parts["faiss"])
            fids = parts["fids"].astype(np.int64)
            item_ids, image_ids = parts["item_ids"].tolist(), parts["image_ids"].tolist()
            dim, next_id = int(parts["dim"]), int(parts["next_id"])
        except BadInput:
            raise
        except Exception as exc:  # zipfile, numpy and faiss raise many types on garbage
            raise BadInput(f"not a serialised VectorIndex: {exc}") from None
        if (
            not isinstance(index, faiss.IndexIDMap2)
            or index.d != dim
            or index.ntotal != len(fids)
            or not (len(item_ids) == len(image_ids) == len(fids))
        ):
            raise BadInput(
                f"inconsistent VectorIndex blob: {type(index).__name__}, dim {dim} vs {index.d}, "
                f"{index.ntotal} vectors vs {len(fids)} ids"
            )
        out = cls(dim)
        out._index = index
        out._next_id = next_id
        for fid, item, image in zip(fids.tolist(), item_ids, image_ids, strict=True):
            out._image_of[fid] = image
            out._item_of[fid] = item
            out._id_of_image[image] = fid
            out._ids_of_item.setdefault(item, set()).add(fid)
        return out


class IndexWithout:
    """A `VectorIndex` searched with some of its vectors left out (`VectorIndex.without`):
    what the index answers for a catalog without them (a catalog calibrated on itself asks
    it with an item, or an image, taken out: `matching.calibration.pairs`). FAISS skips them
    in the search itself; nothing is copied, and the index stays usable meanwhile.

    Attributes:
        dim: the vectors' length.
    """

    def __init__(self, index: VectorIndex, left_out: np.ndarray) -> None:
        self._index = index
        self._left_out = left_out
        self.dim = index.dim

    def __len__(self) -> int:
        """Vectors searched (the index's, less those left out that are still in it)."""
        with self._index._lock:
            gone = sum(f in self._index._image_of for f in self._left_out.tolist())
            return len(self._index) - gone

    def search(self, queries: np.ndarray, k: int) -> ItemHits:
        """Top-k distinct items per query, as `VectorIndex.search` without the left out."""
        return self._index._search(queries, k, self._left_out)
