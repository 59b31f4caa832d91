"""NMI / ARI of the analytics clustering on the dev sets with known labels, beside plain
KMeans on the raw descriptors (the seeds' way).

    SIGHTING_THREADS=1 python -m bench.analytics_accuracy --sets grocery,dogs --limit 800

Photos: ``SET/queries/<item>/`` (``_none`` left out), a seeded sample of ``--limit``, embedded
with the kind's model (products for grocery, animals for dogs; only the sample is embedded,
through a folder of links under .cache/analytics; vectors cached). Labels: the item (fine)
and, for grocery, the coarse class of ``classes.csv``. Rows: the default run (k chosen the
``readable`` way), the silhouette over the whole grid (the former default), the default run
with k = the number of labels, and scikit-learn KMeans (k = the number of labels) on the raw
vectors (the seeds' way).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from core import cli

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MODELS = {"grocery": "products", "dogs": "animals"}


@cli.command
def main(argv: list[str] | None = None) -> None:
    """Print one CSV row per set, labels and method."""
    p = argparse.ArgumentParser(epilog=cli.EXIT_STATUS, description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", default="grocery,dogs")
    p.add_argument("--limit", type=int, default=800, help="photos per set (seeded sample)")
    args = p.parse_args(argv)
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from analytics.data import Descriptors
    from analytics.pipeline import AnalyticsConfig, run
    from analytics.sources import embed_folder
    from core.settings import Settings

    settings = Settings(weights_dir=DATA.parent / "weights", device="cpu", detector="yolov5n")
    print("set,labels,method,k,nmi,ari")
    for name in args.sets.split(","):
        data = embed_folder(_sample(DATA / name / "queries", args.limit), settings, MODELS[name])
        data = Descriptors(data.paths, data.vectors, data.items)
        labelings = {"item": dict(zip(data.paths, data.items, strict=True))}
        classes = DATA / name / "classes.csv"
        if classes.is_file():
            with open(classes, newline="") as f:
                coarse = {r["item_id"]: r["coarse_class"] for r in csv.DictReader(f)}
            labelings["coarse"] = {p: coarse.get(it, it) for p, it in labelings["item"].items()}
        for lab, truth in labelings.items():
            y = [truth[p] for p in data.paths]
            k = len(set(y))
            for method, config in (
                ("default (k chosen: readable)", AnalyticsConfig()),
                ("silhouette over the whole grid", AnalyticsConfig(choose_by="silhouette")),
                ("default, k = labels", AnalyticsConfig(k=k)),
            ):
                r = run(data, config, truth)
                m = r.metrics
                print(f"{name},{lab},{method},{m['clusters']},{m['nmi']},{m['ari']}")
            pred = KMeans(k, n_init=3, random_state=0).fit_predict(data.vectors)
            nmi = normalized_mutual_info_score(y, pred)
            ari = adjusted_rand_score(y, pred)
            print(f"{name},{lab},sklearn KMeans raw (seeds),{k},{nmi:.4f},{ari:.4f}", flush=True)


def _sample(queries: Path, limit: int) -> Path:
    """A folder of links to a seeded sample of ``limit`` photos of ``queries`` (``_none`` left
    out), in their item folders: only the sample is embedded."""
    from analytics.sources import CACHE_DIR, list_images

    files = [f for f in list_images(queries) if f.relative_to(queries).parts[0] != "_none"]
    rng = np.random.default_rng(0)
    pick = sorted(rng.choice(len(files), size=min(limit, len(files)), replace=False).tolist())
    folder = CACHE_DIR / f"sample-{queries.parent.name}-{limit}"
    for i in pick:
        link = folder / files[i].relative_to(queries)
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(files[i])
    return folder


if __name__ == "__main__":
    main()
