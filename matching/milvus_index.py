"""Catalog vectors in Milvus: the `CatalogIndex` of ``SIGHTING_INDEX_BACKEND=milvus``.

Layout (docs/milvus.md):

- one collection per embedder fingerprint and dimension (``sighting_<hash>_d<dim>``): every
  catalog described by that model shares it;
- in it, one row per vector: ``pk`` = ``<catalog>/<vector id>``, ``tenant`` (the catalog's
  owner; the partition key), ``catalog`` (filtered on by every read: a tenant never sees
  another's vectors, a catalog never another's), ``item``, ``vid`` (the vector id, e.g. an
  image id plus its crop tag), ``image`` (the catalog image it describes), ``blob`` (the store
  key of the embedding blob it was read from) and ``vec``;
- a small ``sighting_catalogs`` collection: per catalog, the manifest version its vectors
  reflect (`catalog.vector_sync` writes it after each sync; workers compare it with theirs).

Every read and search is made at ``Strong`` consistency: a vector whose insert returned is
found by the next search from any client, and a deleted one is never returned (Milvus applies
deletes at the search's timestamp, before any compaction). On top of that, a view that knows
its catalog's live images (`MilvusIndex.live`) drops any other hit, so a vector whose delete
failed while the engine was away is never answered either.

Search ranks distinct items with Milvus's grouping search (``group_by_field="item"``): the
best image per item, top-k items, the same answer as `matching.index.VectorIndex.search`.
The worker holds no vectors: only this handle.

Errors: the engine unreachable or slower than ``SIGHTING_MILVUS_TIMEOUT_S`` raises
`core.errors.IndexUnavailable` (503 with Retry-After); a collection of this embedder with
another dimension raises `core.errors.Conflict` (409).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from core.errors import BadInput, Conflict, IndexUnavailable, SightingError
from matching.index import IndexConfig, ItemHits, check_add, check_vectors

log = logging.getLogger(__name__)

META = "sighting_catalogs"
_ID_LEN = 1024  # longest pk / id Milvus keeps (VARCHAR max_length)
_BATCH = 1000  # rows per insert / ids per delete or get
_QUERY_WINDOW = 16_384  # most rows one Milvus query returns
_HNSW = {"M": 16, "efConstruction": 200}
#: Seconds the seal, build and load of a collection's vector index may take (`tune_index`).
BUILD_TIMEOUT_S = 3600.0
#: Keepalive ping interval to a Lite file's in-process server (gRPC servers refuse pings more
#: often than every 5 minutes on a call that sends no data).
_LITE_KEEPALIVE_MS = 600_000
_engines: dict[IndexConfig, MilvusEngine] = {}
_engines_lock = threading.Lock()


def collection_name(embedder: str | None, dim: int) -> str:
    """The collection of one embedder's vectors: ``sighting_<sha1 of fingerprint>_d<dim>``."""
    digest = hashlib.sha1((embedder or "none").encode()).hexdigest()[:16]
    return f"sighting_{digest}_d{dim}"


def _lit(value: str) -> str:
    """A string literal of a Milvus filter expression."""
    return json.dumps(value)


def _in(values: Sequence[str]) -> str:
    return "[" + ",".join(_lit(v) for v in values) + "]"


def engine_for(config: IndexConfig) -> MilvusEngine:
    """The process's engine client for ``config`` (one per URI and settings)."""
    with _engines_lock:
        engine = _engines.get(config)
        if engine is None:
            engine = _engines[config] = MilvusEngine(config)
        return engine


class MilvusEngine:
    """One connection to Milvus (Lite file or server) and the collections made through it.

    Connects lazily (the first call), so a worker starts while the engine is down and
    answers 503 until it is up.
    """

    def __init__(self, config: IndexConfig) -> None:
        self.config = config
        self._client: Any = None
        self._lock = threading.RLock()
        self._ready: dict[str, str] = {}  # collection -> its vector index type

    # --- calls ------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from pymilvus import MilvusClient

                # a Lite file's engine is a gRPC server in this process; pymilvus pings it
                # every 10 s, which gRPC's server counts as abuse on a call that sends no data
                # for minutes (an index build) and cuts ("too many pings"): ping it rarely
                options = (
                    {"grpc.keepalive_time_ms": _LITE_KEEPALIVE_MS} if self.is_lite_file else {}
                )
                self._client = self._guard(
                    "connect",
                    lambda: MilvusClient(
                        uri=self.config.milvus_uri,
                        token=self.config.milvus_token,
                        timeout=self.config.milvus_timeout_s,
                        grpc_options=options,
                    ),
                )
            return self._client

    def call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """``client.<method>(*args, **kwargs)`` with the timeout; engine failures mapped."""
        kwargs.setdefault("timeout", self.config.milvus_timeout_s)
        try:
            client = self.client
            return self._guard(what, lambda: getattr(client, method)(*args, **kwargs))
        except IndexUnavailable as exc:
            # an engine that restarted holds our collections released: load, then once more
            if not (args and isinstance(args[0], str) and _not_loaded(exc.message)):
                raise
            client = self.client
            timeout = self.config.milvus_timeout_s
            self._guard("load", lambda: client.load_collection(args[0], timeout=timeout))
            return self._guard(what, lambda: getattr(client, method)(*args, **kwargs))

    def _guard(self, what: str, fn: Callable[[], Any]) -> Any:
        from pymilvus.exceptions import MilvusException

        try:
            return fn()
        except SightingError:
            raise
        except MilvusException as exc:
            message = str(getattr(exc, "message", exc))
            if "dim" in message and ("expect" in message or "mismatch" in message):
                raise Conflict(f"Milvus {what}: {message}") from None
            if _is_usage_error(message):
                raise  # our bug, not the engine's state: a 500 with its trace
            self._forget_client()
            raise IndexUnavailable(f"vector engine unavailable ({what}): {message}") from None
        except (ConnectionError, TimeoutError, OSError) as exc:
            self._forget_client()
            raise IndexUnavailable(f"vector engine unavailable ({what}): {exc}") from None
        except Exception as exc:  # grpc.RpcError and friends: the channel failed
            if type(exc).__module__.startswith("grpc"):
                self._forget_client()
                raise IndexUnavailable(f"vector engine unavailable ({what}): {exc}") from None
            raise

    def _forget_client(self) -> None:
        with self._lock:
            self._client = None
            self._ready.clear()

    # --- collections --------------------------------------------------------------------
    def ensure_collection(self, embedder: str | None, dim: int) -> str:
        """The name of the embedder's collection, created (FLAT, Strong) if missing.

        Raises:
            Conflict: it exists with vectors of another dimension.
        """
        name = collection_name(embedder, dim)
        if name in self._ready:
            return name
        with self._lock:
            if self.call("has_collection", "has_collection", name):
                found = self._dim_of(name)
                if found != dim:
                    raise Conflict(
                        f"Milvus collection {name} (embedder {embedder}) holds {found}-d "
                        f"vectors, this model makes {dim}-d ones: re-index the catalog",
                        details={"collection": name, "dim": found, "expected": dim},
                    )
            else:
                self._create(name, embedder, dim)
            self.call("load", "load_collection", name)
            self._ready[name] = self._index_type(name)
            self.ensure_meta()
        return name

    def _dim_of(self, name: str) -> int:
        desc = self.call("describe", "describe_collection", name)
        for field in desc["fields"]:
            if field["name"] == "vec":
                return int(field["params"]["dim"])
        raise Conflict(f"Milvus collection {name} has no vec field: not Sighting's")

    def _index_type(self, name: str) -> str:
        try:
            return str(self.call("describe_index", "describe_index", name, "vec")["index_type"])
        except IndexUnavailable:
            raise
        except Exception:  # no index yet
            return "FLAT"

    def _create(self, name: str, embedder: str | None, dim: int) -> None:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("pk", DataType.VARCHAR, max_length=_ID_LEN, is_primary=True)
        schema.add_field("tenant", DataType.VARCHAR, max_length=256, is_partition_key=True)
        for field in ("catalog", "item", "vid", "image", "blob"):
            schema.add_field(field, DataType.VARCHAR, max_length=_ID_LEN)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
        index = self.client.prepare_index_params()
        index.add_index("vec", index_type="FLAT", metric_type="IP")
        index.add_index("catalog", index_type="INVERTED")
        try:
            self.call(
                "create_collection",
                "create_collection",
                name,
                schema=schema,
                index_params=index,
                consistency_level="Strong",
            )
            log.info("Milvus collection %s created for embedder %s (%d-d)", name, embedder, dim)
        except Conflict:
            raise
        except Exception:  # another worker created it meanwhile
            if not self.call("has_collection", "has_collection", name):
                raise

    def ensure_meta(self) -> None:
        """Create the ``sighting_catalogs`` collection (catalog -> synced version) if missing."""
        if META in self._ready:
            return
        from pymilvus import DataType, MilvusClient

        if not self.call("has_collection", "has_collection", META):
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("catalog", DataType.VARCHAR, max_length=_ID_LEN, is_primary=True)
            schema.add_field("collection", DataType.VARCHAR, max_length=256)
            schema.add_field("version", DataType.INT64)
            schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)  # Milvus needs one vector
            index = self.client.prepare_index_params()
            index.add_index("v", index_type="FLAT", metric_type="L2")
            try:
                self.call(
                    "create_collection",
                    "create_collection",
                    META,
                    schema=schema,
                    index_params=index,
                    consistency_level="Strong",
                )
            except Exception:
                if not self.call("has_collection", "has_collection", META):
                    raise
        self.call("load", "load_collection", META)
        self._ready[META] = "FLAT"

    @property
    def is_lite_file(self) -> bool:
        """Whether the URI is a Milvus Lite file in this process (not a server)."""
        return not self.config.milvus_uri.startswith(("http://", "https://", "tcp://"))

    def flush(self, name: str, *, timeout_s: float | None = None) -> None:
        """Seal the collection's fresh rows into indexed segments (Milvus Lite searches its
        unsealed rows far slower; a server flushes by itself, so it is left alone there)."""
        if self.is_lite_file:
            self.call("flush", "flush", name, timeout=timeout_s or self.config.milvus_timeout_s)

    def index_type(self, name: str) -> str:
        """The vector index type of a collection as this process last saw it."""
        return self._ready.get(name) or self._index_type(name)

    def count(self, name: str) -> int:
        """Rows of a collection."""
        rows = self.call(
            "count", "query", name, output_fields=["count(*)"], consistency_level="Strong"
        )
        return int(rows[0]["count(*)"])

    def tune_index(
        self, name: str, *, force: str | None = None, timeout_s: float = BUILD_TIMEOUT_S
    ) -> str:
        """Give a collection the vector index its size calls for; returns the type.

        FLAT (exact) up to ``milvus_flat_max`` vectors, HNSW (M 16, efConstruction 200) above.
        Searches wait while the index is rebuilt: run it from ``python -m catalog reindex``.
        The seal, the build and the load may each take ``timeout_s`` (not the per-request
        ``milvus_timeout_s``): building HNSW over 100k vectors is minutes of CPU (Milvus Lite
        builds it inside one call; a server inside ``load_collection``).
        """
        self.flush(name, timeout_s=timeout_s)
        want = force or ("HNSW" if self.count(name) > self.config.milvus_flat_max else "FLAT")
        have = self._index_type(name)
        if have != want:
            self.call("release", "release_collection", name)
            self.call("drop_index", "drop_index", name, "vec")
            try:
                self._create_index(name, want, timeout_s)
            except Exception:  # leave the collection searchable (exact) rather than released
                log.exception("Milvus collection %s: %s index failed, back to FLAT", name, want)
                with contextlib.suppress(Exception):  # the failed call may have made it
                    self.call("release", "release_collection", name)
                    self.call("drop_index", "drop_index", name, "vec")
                self._create_index(name, "FLAT", timeout_s)
                self._ready[name] = "FLAT"
                raise
            log.info("Milvus collection %s: %s index (was %s)", name, want, have)
        self._ready[name] = want
        return want

    def _create_index(self, name: str, kind: str, timeout_s: float) -> None:
        index = self.client.prepare_index_params()
        params = _HNSW if kind == "HNSW" else {}
        index.add_index("vec", index_type=kind, metric_type="IP", params=params)
        self.call("create_index", "create_index", name, index, timeout=timeout_s)
        self.call("load", "load_collection", name, timeout=timeout_s)

    # --- the synced-version table ---------------------------------------------------------
    def synced(self, catalog_id: str) -> tuple[str, int] | None:
        """(collection, manifest version) the engine holds for a catalog, or None."""
        self.ensure_meta()
        rows = self.call(
            "get", "get", META, ids=[catalog_id], output_fields=["collection", "version"]
        )
        if not rows:
            return None
        return str(rows[0]["collection"]), int(rows[0]["version"])

    def mark_synced(self, catalog_id: str, collection: str, version: int) -> None:
        """Record that the engine holds ``catalog_id`` at ``version`` in ``collection``."""
        self.ensure_meta()
        row = {"catalog": catalog_id, "collection": collection, "version": int(version)}
        self.call("mark", "upsert", META, [{**row, "v": [0.0, 0.0]}])

    def delete_catalog_rows(self, name: str, catalog_id: str) -> None:
        """Delete a catalog's rows from one collection (if it exists)."""
        if self.call("has_collection", "has_collection", name):
            self.call("delete", "delete", name, filter=f"catalog == {_lit(catalog_id)}")

    def forget(self, catalog_id: str) -> None:
        """Delete a catalog's vectors from every Sighting collection and its synced version."""
        self.ensure_meta()
        for name in self.call("list", "list_collections"):
            if name.startswith("sighting_") and name != META:
                self.call("delete", "delete", name, filter=f"catalog == {_lit(catalog_id)}")
        self.call("delete", "delete", META, ids=[catalog_id])


def _not_loaded(message: str) -> bool:
    """Whether Milvus refused a call because the collection is not loaded (after a restart)."""
    lowered = message.lower()
    return "released" in lowered or "not loaded" in lowered or "call load" in lowered


def _is_usage_error(message: str) -> bool:
    """Whether Milvus refused a call for what it asked (a bug here), not for its own state."""
    lowered = message.lower()
    return any(
        s in lowered
        for s in ("invalid", "illegal", "not support", "unsupported", "cannot parse", "syntax")
    ) and not any(s in lowered for s in ("connect", "unavailable", "deadline", "timeout"))


class MilvusIndex:
    """One catalog's vectors in Milvus, behind the `matching.index.CatalogIndex` interface.

    Holds no vectors, only the catalog's name, its collection and (when a view set it) the
    ids of the catalog's live images. Thread-safe (each call is one or a few Milvus calls).

    Args:
        engine: the engine client (`engine_for`).
        catalog_id: the catalog whose rows this handle reads and writes.
        dim: vector length D.
        tenant: the catalog's owner (the partition key).
        embedder: fingerprint of the model that made the vectors (selects the collection).
    """

    def __init__(
        self,
        engine: MilvusEngine,
        catalog_id: str,
        dim: int,
        *,
        tenant: str = "",
        embedder: str | None = None,
    ) -> None:
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise BadInput(f"index dimension must be a positive int, got {dim!r}")
        if not catalog_id or len(catalog_id) > 256:
            raise BadInput(f"catalog id must be 1-256 characters, got {catalog_id!r}")
        self.engine = engine
        self.catalog_id = catalog_id
        self.dim = dim
        self.tenant = tenant or "default"
        self.embedder = embedder
        self.collection = engine.ensure_collection(embedder, dim)
        # catalog images the store names (set by catalog.vector_sync); None: trust the engine
        self.live: frozenset[str] | None = None

    @property
    def _where(self) -> str:
        return f"tenant == {_lit(self.tenant)} and catalog == {_lit(self.catalog_id)}"

    def _pk(self, vector_id: str) -> str:
        return f"{self.catalog_id}/{vector_id}"

    def rebind(self, embedder: str | None) -> None:
        """Move this handle to another embedder's collection (the catalog was re-indexed);
        the catalog's rows in the old collection are deleted."""
        name = self.engine.ensure_collection(embedder, self.dim)
        if name != self.collection:
            self.engine.call("delete", "delete", self.collection, filter=self._where)
            self.collection, self.embedder = name, embedder

    # --- reading ------------------------------------------------------------------------
    def rows(self, fields: Sequence[str], where: str = "") -> Iterator[dict]:
        """Every row of the catalog (``fields`` of each), read in batches."""
        expr = self._where + (f" and {where}" if where else "")
        if len(self) < _QUERY_WINDOW:  # one query (Milvus Lite has no server-side iterator)
            yield from self.engine.call(
                "query",
                "query",
                self.collection,
                filter=expr,
                output_fields=list(fields),
                limit=_QUERY_WINDOW,
                consistency_level="Strong",
            )
            return
        iterator = self.engine.call(
            "query",
            "query_iterator",
            self.collection,
            batch_size=10_000,
            filter=expr,
            output_fields=list(fields),
            consistency_level="Strong",
        )
        try:
            while True:
                batch = self.engine._guard("query", iterator.next)
                if not batch:
                    return
                yield from batch
        finally:
            iterator.close()

    def __len__(self) -> int:
        """Number of vectors of the catalog."""
        rows = self.engine.call(
            "count",
            "query",
            self.collection,
            filter=self._where,
            output_fields=["count(*)"],
            consistency_level="Strong",
        )
        return int(rows[0]["count(*)"])

    @property
    def items(self) -> list[str]:
        """Ids of the items with at least one vector, sorted."""
        return sorted({row["item"] for row in self.rows(["item"])})

    def images_of(self, item_id: str) -> list[str]:
        """Vector ids of one item, sorted (empty for an unknown item)."""
        return sorted(row["vid"] for row in self.rows(["vid"], f"item == {_lit(item_id)}"))

    def __contains__(self, image_id: object) -> bool:
        """Whether a vector id is in the catalog."""
        if not isinstance(image_id, str):
            return False
        return bool(self._existing([image_id]))

    def _existing(self, vector_ids: Sequence[str]) -> list[str]:
        found: list[str] = []
        for start in range(0, len(vector_ids), _BATCH):
            chunk = [self._pk(v) for v in vector_ids[start : start + _BATCH]]
            rows = self.engine.call("get", "get", self.collection, ids=chunk, output_fields=["vid"])
            found.extend(row["vid"] for row in rows)
        return found

    # --- writing ------------------------------------------------------------------------
    def add(
        self,
        vectors: np.ndarray,
        item_ids: Sequence[str],
        image_ids: Sequence[str],
        *,
        images: Sequence[str] | None = None,
        blob: str = "",
        replace: bool = False,
    ) -> None:
        """Add one vector per id (see `matching.index.VectorIndex.add`).

        Args:
            images: the catalog image each vector describes (default: its vector id).
            blob: store key of the embedding blob the vectors come from.
            replace: overwrite rows of the same ids (an idempotent sync) instead of 409.

        Raises:
            BadInput: wrong shape, non-finite values, bad ids.
            Conflict: an id already in the catalog (unless ``replace``) or repeated.
        """
        vectors, item_ids, image_ids = check_add(self.dim, vectors, item_ids, image_ids)
        images = list(images) if images is not None else image_ids
        if len(images) != len(image_ids):
            raise BadInput(f"{len(images)} image ids for {len(image_ids)} vectors")
        long = [v for v in (*image_ids, *item_ids) if len(self._pk(v)) > _ID_LEN]
        if long:
            raise BadInput(f"ids longer than Milvus keeps ({_ID_LEN}): {long[:3]}")
        if not replace:
            existing = self._existing(image_ids)
            if existing:
                raise Conflict(f"image ids already in the index: {existing[:5]}")
        rows = [
            {
                "pk": self._pk(vid),
                "tenant": self.tenant,
                "catalog": self.catalog_id,
                "item": item,
                "vid": vid,
                "image": image,
                "blob": blob,
                "vec": vec,
            }
            for vid, item, image, vec in zip(image_ids, item_ids, images, vectors, strict=True)
        ]
        for start in range(0, len(rows), _BATCH):
            batch = rows[start : start + _BATCH]
            self.engine.call("insert", "upsert" if replace else "insert", self.collection, batch)

    def remove_images(self, image_ids: Sequence[str]) -> int:
        """Remove vectors by id; unknown ids are ignored. Returns the number removed."""
        found = self._existing(list(dict.fromkeys(image_ids)))
        self._delete(found)
        return len(found)

    def remove_item(self, item_id: str) -> int:
        """Remove every vector of one item. Returns the number removed (0: unknown)."""
        return self.remove_images(self.images_of(item_id))

    def clear(self) -> None:
        """Delete every vector of the catalog."""
        self.engine.call("delete", "delete", self.collection, filter=self._where)

    def remove_catalog_images(self, images: Sequence[str]) -> None:
        """Remove every vector of these catalog images (all their tags)."""
        images = list(images)
        for start in range(0, len(images), _BATCH):
            expr = f"{self._where} and image in {_in(images[start : start + _BATCH])}"
            self.engine.call("delete", "delete", self.collection, filter=expr)

    def _delete(self, vector_ids: Sequence[str]) -> None:
        for start in range(0, len(vector_ids), _BATCH):
            chunk = [self._pk(v) for v in vector_ids[start : start + _BATCH]]
            self.engine.call("delete", "delete", self.collection, ids=chunk)

    # --- searching ----------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> ItemHits:
        """Top-k distinct items per query, each ranked by its best image's similarity.

        Same contract as `matching.index.VectorIndex.search`; see `_complete` for when a
        query is asked again.
        """
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise BadInput(f"k must be a positive int, got {k!r}")
        queries = check_vectors(self.dim, queries, "queries")
        nq = queries.shape[0]
        scores = np.full((nq, k), -np.inf, dtype=np.float32)
        items: list[list[str]] = [[] for _ in range(nq)]
        images: list[list[str]] = [[] for _ in range(nq)]
        if nq == 0:
            return ItemHits(items, images, scores)
        results = self._search(queries, k, "")
        for q, first in enumerate(results):
            kept = self._complete(queries[q : q + 1], k, first)
            items[q] = [item for item, _, _, _ in kept]
            images[q] = [vid for _, vid, _, _ in kept]
            scores[q, : len(kept)] = [score for _, _, _, score in kept]
        return ItemHits(items, images, scores)

    def _complete(
        self, query: np.ndarray, k: int, hits: list[tuple[str, str, str, float]]
    ) -> list[tuple[str, str, str, float]]:
        """The top-k items of one query from its first grouped answer.

        A grouping search may answer fewer than k groups when one item's images crowd the
        candidates it fetched (Milvus Lite fetches 10 k), and the view may know images the
        engine still holds to be gone (``live``): ask again for the rest, without the items
        found and the dead images, until k items or an empty answer. With an exact index
        this is the exact top-k (each found item's best image was the first of its group).
        """
        live = self.live
        kept: list[tuple[str, str, str, float]] = []
        found: set[str] = set()
        dead: list[str] = []
        while True:
            for hit in hits:
                if live is not None and hit[2] not in live:
                    dead.append(hit[2])
                elif hit[0] not in found and len(kept) < k:
                    kept.append(hit)
                    found.add(hit[0])
            if len(kept) >= k or not hits:
                break
            where = [f"item not in {_in(sorted(found))}"] if found else []
            where += [f"image not in {_in(dead)}"] if dead else []
            hits = self._search(query, k - len(kept), " and ".join(where))[0]
        kept.sort(key=lambda h: -h[3])
        return kept

    def _search(
        self, queries: np.ndarray, k: int, where: str
    ) -> list[list[tuple[str, str, str, float]]]:
        """(item, vector id, image, score) per hit, best first, one per item."""
        expr = self._where + (f" and {where}" if where else "")
        index_type = self.engine.index_type(self.collection)
        params: dict[str, Any] = {"metric_type": "IP"}
        if index_type.startswith("HNSW"):
            params["params"] = {"ef": max(self.engine.config.milvus_ef, k)}
        results = self.engine.call(
            "search",
            "search",
            self.collection,
            data=queries,
            limit=k,
            filter=expr,
            output_fields=["item", "vid", "image"],
            search_params=params,
            group_by_field="item",
            group_size=1,
            consistency_level="Strong",
        )
        out = []
        for hits in results:
            row = [
                (
                    h["entity"]["item"],
                    h["entity"]["vid"],
                    h["entity"]["image"],
                    float(h["distance"]),
                )
                for h in hits
            ]
            row.sort(key=lambda h: -h[3])  # grouping answers best first; make sure
            out.append(row)
        return out
