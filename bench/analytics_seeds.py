"""The seeds' way against ours, on one synthetic collection: a speed ratio in one run.

    SIGHTING_THREADS=1 python -m bench.analytics_seeds --n 416314 --dim 256 --cap 600

The seeds clustered their 416,314 vehicle descriptors with scikit-learn on every point:
KMeans, LOF for outliers, UMAP for the 2-D map (umap-learn: `pip install -r
requirements-bench.txt`). Each of those steps runs here in a child process on the same seeded
vectors as `bench.analytics_scale` (`synthetic`), killed after ``--cap`` seconds (reported as
``> cap``: "as far as it gets"); then our default run (`analytics.pipeline.run`) on the same
vectors. Prints one CSV row per step (``who,step,seconds,peak_mb``) and the ratio of the totals
(a lower bound where a seeds' step hit the cap).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from core import cli

STEPS = ("kmeans", "lof", "umap")


def seeds_step(step: str, n: int, dim: int, k: int, threads: int) -> None:
    """Run one of the seeds' steps on all points and print ``{"seconds": s}`` as JSON."""
    from bench.analytics_scale import synthetic

    x, _ = synthetic(n, dim, 12, 0.01)
    start = time.perf_counter()
    if step == "kmeans":
        from sklearn.cluster import KMeans

        KMeans(n_clusters=k, n_init=1, random_state=0).fit(x)
    elif step == "lof":
        from sklearn.neighbors import LocalOutlierFactor

        LocalOutlierFactor(n_neighbors=20, n_jobs=threads).fit_predict(x)
    elif step == "umap":
        import umap

        umap.UMAP(n_components=2, random_state=0, n_jobs=threads).fit_transform(x)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": round(seconds, 1), "peak_mb": round(peak)}))


def run_capped(step: str, args: argparse.Namespace, threads: int) -> tuple[float | None, str]:
    """One seeds' step in a child process: (seconds or None past the cap, peak MB or '-')."""
    env = os.environ | {"OMP_NUM_THREADS": str(threads), "NUMBA_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "bench.analytics_seeds", "--step", step]
    cmd += ["--n", str(args.n), "--dim", str(args.dim), "--k", str(args.k)]
    try:
        done = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=args.cap, check=True
        )
    except subprocess.TimeoutExpired:
        return None, "-"
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return float(out["seconds"]), str(out["peak_mb"])


@cli.command
def main(argv: list[str] | None = None) -> None:
    """Time the seeds' steps (capped) and our run on the same vectors; print the ratio."""
    p = argparse.ArgumentParser(epilog=cli.EXIT_STATUS, description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=416_314)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--k", type=int, default=12, help="the seeds' KMeans k (the true clusters)")
    p.add_argument("--cap", type=float, default=600.0, help="seconds before a step is stopped")
    p.add_argument("--step", choices=STEPS, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    from core.runtime import configure_threads
    from core.settings import get_settings

    threads = get_settings().threads or (os.cpu_count() or 1)
    if args.step:
        seeds_step(args.step, args.n, args.dim, args.k, threads)
        return
    configure_threads(threads)
    from analytics.data import Descriptors
    from analytics.pipeline import run
    from bench.analytics_scale import synthetic
    from bench.machine import describe

    print(describe(get_settings()))
    print(f"n={args.n} dim={args.dim} threads={threads} cap={args.cap:.0f}s")
    print("who,step,seconds,peak_mb")
    seeds_total, capped = 0.0, False
    for step in STEPS:
        seconds, peak = run_capped(step, args, threads)
        capped |= seconds is None
        seeds_total += args.cap if seconds is None else seconds
        shown = f"> {args.cap:.0f}" if seconds is None else f"{seconds:.1f}"
        print(f"seeds,{step},{shown},{peak}", flush=True)
    x, _ = synthetic(args.n, args.dim, 12, 0.01)
    data = Descriptors([f"img{i}" for i in range(args.n)], x)
    start = time.perf_counter()
    result = run(data)
    ours = time.perf_counter() - start
    for step, seconds in result.timings.items():
        print(f"sighting,{step},{seconds},-")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"sighting,total,{ours:.1f},{peak:.0f}")
    bound = ">= " if capped else ""
    print(
        f"seeds_seconds={bound}{seeds_total:.0f} sighting_seconds={ours:.0f} "
        f"ratio={bound}{seeds_total / max(ours, 1e-9):.1f}x"
    )


if __name__ == "__main__":
    main()
