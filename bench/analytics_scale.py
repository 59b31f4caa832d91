"""Time and peak memory of each analytics step on a seeded synthetic collection with cluster
structure and planted outliers, and the outlier flag's precision / recall per method.

    SIGHTING_THREADS=1 python -m bench.analytics_scale --n 416314 --dim 256

Vectors: ``--clusters`` Gaussian clusters of random centres and spreads in ``--dim`` dims
(on a 32-dim subspace plus noise, as embeddings are), and ``--outliers`` (fraction) points
drawn far from every cluster. Prints one CSV row per step and the outlier table.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from core import cli


def synthetic(n: int, dim: int, clusters: int, outlier_fraction: float, seed: int = 0):
    """float32 (n, dim) vectors, int (n,) true cluster (-1 = planted outlier)."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(32, dim)).astype(np.float32) / np.sqrt(32)
    centres = rng.normal(size=(clusters, 32)).astype(np.float32) * 3
    spread = rng.uniform(0.5, 1.2, size=clusters).astype(np.float32)
    n_out = int(n * outlier_fraction)
    truth = rng.integers(0, clusters, size=n)
    truth[rng.choice(n, n_out, replace=False)] = -1
    x = np.empty((n, dim), np.float32)
    for s in range(0, n, 65536):
        t = truth[s : s + 65536]
        z = (
            centres[np.maximum(t, 0)]
            + rng.normal(size=(len(t), 32)).astype(np.float32) * spread[np.maximum(t, 0), None]
        )
        far = t < 0
        z[far] = rng.normal(size=(int(far.sum()), 32)).astype(np.float32) * 6
        x[s : s + 65536] = z @ basis + rng.normal(size=(len(t), dim)).astype(np.float32) * 0.05
    return x, truth


@cli.command
def main(argv: list[str] | None = None) -> None:
    """Run the pipeline on the synthetic set and print timings and outlier figures."""
    p = argparse.ArgumentParser(epilog=cli.EXIT_STATUS, description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=416_314)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--clusters", type=int, default=12)
    p.add_argument("--outliers", type=float, default=0.01)
    p.add_argument("--methods", default="centre,lof,iforest")
    args = p.parse_args(argv)
    from analytics.data import Descriptors
    from analytics.pipeline import AnalyticsConfig, run
    from core.runtime import configure_threads
    from core.settings import get_settings

    configure_threads(get_settings().threads)

    t0 = time.perf_counter()
    x, truth = synthetic(args.n, args.dim, args.clusters, args.outliers)
    print(f"generated {x.shape} in {time.perf_counter() - t0:.1f} s")
    data = Descriptors([f"img{i}" for i in range(args.n)], x)
    labels = {f"img{i}": str(t) for i, t in enumerate(truth) if t >= 0}
    print("method,step,seconds")
    for method in args.methods.split(","):
        start = time.perf_counter()
        result = run(data, AnalyticsConfig(outlier_method=method), labels)
        total = time.perf_counter() - start
        for step, sec in result.timings.items():
            print(f"{method},{step},{sec}")
        planted = truth < 0
        tp = int((result.outlier & planted).sum())
        prec = tp / max(1, int(result.outlier.sum()))
        rec = tp / max(1, int(planted.sum()))
        print(
            f"{method},total,{total:.1f}  k={result.metrics['clusters']} "
            f"nmi={result.metrics.get('nmi')} ari={result.metrics.get('ari')} "
            f"outliers: precision={prec:.3f} recall={rec:.3f} flagged={int(result.outlier.sum())} "
            f"planted={int(planted.sum())}"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory {peak:.0f} MB")


if __name__ == "__main__":
    main()
