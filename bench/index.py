"""Vector index at scale: FAISS in the worker vs Milvus (Lite, or a server by --uri).

    python -m bench.index --n 100000 --dim 256 --backend faiss
    python -m bench.index --n 100000 --dim 256 --backend milvus [--uri http://host:19530]

A synthetic catalog of N unit vectors (one image per item, so item and vector rankings
agree), Q queries that are noisy copies of catalog vectors. Measures the build (every vector
added, and for Milvus the collection's index made: FLAT up to SIGHTING_MILVUS_FLAT_MAX
vectors, HNSW above, or --index), the latency of one query's top-100 items (p50, p95 over Q
single-query searches, the way the service asks), recall@10 of those items against exact
search (numpy), and this process's resident memory after the build (for Milvus Lite in a
file, the engine runs inside this process and is counted; with --uri only the client is).
Last line (issue 27's keys first, in its order): ``backend=.. n=.. build_s=.. search_p50_ms=..
search_p95_ms=.. recall@10=.. rss_mb=.. insert_s=.. index_s=.. load1=..`` (build = insert +
index). Timings are
wall-clock on whatever else runs: the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core import cli
from core.settings import get_settings
from matching.index import CatalogIndex, IndexConfig, VectorIndex

K_SEARCH = 100
K_RECALL = 10
BATCH = 10_000


def synthetic(n: int, dim: int, queries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """N catalog unit vectors float32 (N, D) and Q queries near Q of them (cosine ~0.9)."""
    rng = np.random.default_rng(seed)
    base = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):
        chunk = rng.standard_normal((min(100_000, n - start), dim), dtype=np.float32)
        base[start : start + len(chunk)] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    picks = rng.choice(n, size=queries, replace=False)
    noisy = base[picks] + rng.standard_normal((queries, dim), dtype=np.float32) * (
        0.5 / np.sqrt(dim)
    )
    return base, noisy / np.linalg.norm(noisy, axis=1, keepdims=True)


def exact_top(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Row indices of each query's k most similar catalog vectors (exact), (Q, k)."""
    sims = np.concatenate(
        [queries @ base[start : start + 200_000].T for start in range(0, len(base), 200_000)],
        axis=1,
    )
    top = np.argpartition(-sims, k, axis=1)[:, :k]
    order = np.take_along_axis(sims, top, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(top, order, axis=1)


def rss_mb() -> float:
    """This process's resident memory now (MiB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def build(
    args: argparse.Namespace, base: np.ndarray, phases: dict[str, float]
) -> tuple[CatalogIndex, str]:
    """The index filled with ``base`` (ids ``v<row>``); returns it and a description.

    ``phases`` gets the seconds of each step: ``insert_s`` (every vector written) and, for
    Milvus, ``index_s`` (the rows sealed, then the vector index built and loaded).
    """
    ids = [f"v{i}" for i in range(len(base))]
    started = time.perf_counter()
    if args.backend == "faiss":
        index: CatalogIndex = VectorIndex(args.dim)
        for start in tqdm(range(0, len(base), BATCH), desc="faiss add", unit="batch"):
            stop = start + BATCH
            index.add(base[start:stop], ids[start:stop], ids[start:stop])
        phases["insert_s"] = time.perf_counter() - started
        phases["index_s"] = 0.0
        return index, "FAISS IndexFlatIP in this process"
    from matching.milvus_index import MilvusIndex, collection_name, engine_for

    config = replace(IndexConfig.from_settings(get_settings()), backend="milvus")
    uri = args.uri or str(Path(tempfile.mkdtemp(prefix="bench-index-")) / "milvus.db")
    config = replace(config, milvus_uri=uri, milvus_timeout_s=args.timeout)
    engine = engine_for(config)
    embedder = f"bench-index-synthetic-{args.seed}"
    name = collection_name(embedder, args.dim)
    if engine.call("has", "has_collection", name):
        engine.call("drop", "drop_collection", name)  # a fresh collection each run
    engine._ready.pop(name, None)
    index = MilvusIndex(engine, f"bench-{args.n}", args.dim, tenant="bench", embedder=embedder)
    started = time.perf_counter()  # the collection's creation is not part of the build
    for start in tqdm(range(0, len(base), BATCH), desc="milvus insert", unit="batch"):
        stop = start + BATCH
        index.add(base[start:stop], ids[start:stop], ids[start:stop], replace=True)
    phases["insert_s"] = time.perf_counter() - started
    started = time.perf_counter()
    kind = engine.tune_index(
        name, force=None if args.index == "auto" else args.index, timeout_s=args.timeout
    )
    phases["index_s"] = time.perf_counter() - started
    where = "in this process (Lite file)" if not uri.startswith("http") else uri
    return index, f"Milvus {kind} {where}"


@cli.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.index", description=__doc__.split("\n")[0], epilog=cli.EXIT_STATUS
    )
    parser.add_argument("--n", type=int, default=100_000, help="catalog vectors")
    parser.add_argument("--dim", type=int, default=256, help="vector length")
    parser.add_argument("--backend", choices=["faiss", "milvus"], default="faiss")
    parser.add_argument(
        "--uri",
        default="",
        help="Milvus URI (a server http://host:19530, or a Lite .db path); "
        "default: a new Lite file in a temporary folder",
    )
    parser.add_argument(
        "--index",
        choices=["auto", "FLAT", "HNSW", "IVF_FLAT"],
        default="auto",
        help="Milvus vector index (auto: FLAT up to SIGHTING_MILVUS_FLAT_MAX vectors, HNSW above)",
    )
    parser.add_argument("--queries", type=int, default=200, help="timed single-query searches")
    parser.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        help="seconds one Milvus call may take (the index build is one call)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.n < K_SEARCH or args.dim < 1 or args.queries < 1:
        parser.error(f"--n must be >= {K_SEARCH}, --dim and --queries >= 1")

    rss_before = rss_mb()  # before the synthetic data: rss_mb is what the index keeps
    base, queries = synthetic(args.n, args.dim, args.queries, args.seed)
    truth = exact_top(base, queries, K_RECALL)
    phases: dict[str, float] = {}
    started = time.perf_counter()
    index, what = build(args, base, phases)
    build_s = time.perf_counter() - started
    del base  # what stays resident is the index's, not the bench's copy
    rss = rss_mb()
    if rss < rss_before:
        rss = rss_before
    index.search(queries[:1], K_SEARCH)  # warm-up
    times, found = [], []
    for q in tqdm(range(len(queries)), desc="search", unit="query"):
        t0 = time.perf_counter()
        hits = index.search(queries[q : q + 1], K_SEARCH)
        times.append((time.perf_counter() - t0) * 1000)
        found.append(hits.item_ids[0][:K_RECALL])
    recall = float(
        np.mean(
            [
                len({int(i[1:]) for i in got} & set(want.tolist())) / K_RECALL
                for got, want in zip(found, truth, strict=True)
            ]
        )
    )
    p50, p95 = np.percentile(times, [50, 95])
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"\n{what}; {args.n} x {args.dim} vectors, {args.queries} single-query top-{K_SEARCH} "
        f"searches; cpus {os.cpu_count()}, load average {load}; process rss {rss:.0f} MiB "
        f"(rss_mb: its growth from before the data)"
    )
    print(
        f"backend={args.backend} n={args.n} build_s={build_s:.1f} "
        f"search_p50_ms={p50:.2f} search_p95_ms={p95:.2f} recall@10={recall:.3f} "
        f"rss_mb={rss - rss_before:.0f} insert_s={phases['insert_s']:.1f} "
        f"index_s={phases['index_s']:.1f} load1={os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
