"""NMI / ARI of the analytics clustering on the dev sets with known labels, beside plain
KMeans on the raw descriptors (the seeds' way).

    SIGHTING_THREADS=1 python -m bench.analytics_accuracy --sets grocery,dogs --limit 800

Photos: ``SET/queries/<item>/`` (``_none`` left out), a seeded sample of ``--limit``, embedded
with the kind's model (products for grocery, animals for dogs; ``--model`` for another; only
the sample is embedded, through a folder of links under .cache/analytics; the vectors are
cached there, so a rerun embeds nothing). Labels: the item (fine) and, for grocery, the coarse
class of ``classes.csv``. Rows: the default run (k chosen the ``readable`` way), ``--choose-by
coarse``, the silhouette of k-means over the whole grid (the way before the readable rule), the
default run with k = the number of labels, and scikit-learn KMeans (k = the number of labels,
k-means++, 3 restarts) on the raw vectors (the seeds' way). One CSV row each
(``set,labels,method,k,nmi,ari``); ``--save-json`` writes the table for the documentation; the
last line is ``key=value``: per set and labels the default's k, NMI and ARI and the seeds' NMI
and ARI, then the load average.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import numpy as np

from core import cli

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MODELS = {"grocery": "products", "dogs": "animals"}
WAYS = (
    ("default (k chosen: readable)", {}),
    ("coarse (--choose-by coarse)", {"choose_by": "coarse"}),
    ("silhouette of k-means over the whole grid", {"choose_by": "silhouette"}),
)
SEEDS = "sklearn KMeans raw (seeds)"


@cli.command
def main(argv: list[str] | None = None) -> None:
    """Print one CSV row per set, labels and method, then a ``key=value`` summary."""
    p = argparse.ArgumentParser(epilog=cli.EXIT_STATUS, description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", default="grocery,dogs")
    p.add_argument("--limit", type=int, default=800, help="photos per set (seeded sample)")
    p.add_argument(
        "--model",
        help="embed every set with this model instead of the kind's (e.g. mobilenet_v2: "
        "generic ImageNet features, as a collection owner without a trained model has)",
    )
    p.add_argument(
        "--no-grid",
        action="store_true",
        help="leave out the k-means whole-grid row (the slow one: minutes on 1,000s of photos)",
    )
    p.add_argument("--save-json", type=Path, help="also write the table as a result file")
    args = p.parse_args(argv)
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from analytics.data import Descriptors
    from analytics.pipeline import AnalyticsConfig, run
    from analytics.sources import embed_folder
    from core.runtime import configure_threads
    from core.settings import Settings, get_settings

    configure_threads(get_settings().threads)
    settings = Settings(weights_dir=DATA.parent / "weights", device="cpu", detector="yolov5n")
    print("set,labels,method,k,nmi,ari")
    table, summary = [], {}
    chosen = WAYS[:2] if args.no_grid else WAYS
    for name in args.sets.split(","):
        model = args.model or MODELS[name]
        data = embed_folder(_sample(DATA / name / "queries", args.limit), settings, model)
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
            cells = {}
            ways = (*chosen, ("default, k = labels", {"k": k}))
            for method, options in ways:
                m = run(data, AnalyticsConfig(map_method="pca", **options), truth).metrics
                print(f"{name},{lab},{method},{m['clusters']},{m['nmi']},{m['ari']}", flush=True)
                cells[method] = (m["clusters"], m["nmi"], m["ari"])
            pred = KMeans(k, n_init=3, random_state=0).fit_predict(data.vectors)
            nmi = round(float(normalized_mutual_info_score(y, pred)), 4)
            ari = round(float(adjusted_rand_score(y, pred)), 4)
            print(f"{name},{lab},{SEEDS},{k},{nmi:.4f},{ari:.4f}", flush=True)
            cells[SEEDS] = (k, nmi, ari)
            row = [f"{name}, {k} {'items' if lab == 'item' else 'coarse classes'}"]
            row += [_cell(cells[w], w != "default, k = labels") for w, _ in ways]
            table.append([*row, _cell(cells[SEEDS], False)])
            key = f"{name}_{lab}"
            dk, dn, da = cells[WAYS[0][0]]
            summary |= {f"{key}_k": dk, f"{key}_nmi": dn, f"{key}_ari": da}
            summary |= {f"{key}_seeds_nmi": nmi, f"{key}_seeds_ari": ari}
    load1 = round(os.getloadavg()[0], 2)
    if args.save_json:
        from bench.machine import save_json

        save_json(
            args.save_json,
            settings,
            title="Analytics: clustering quality on the dev sets (NMI / ARI)",
            columns=[
                "set, labels",
                *(w for w, _ in chosen),
                "default, k = labels",
                "scikit-learn KMeans on the raw vectors, k = labels (the seeds' way)",
            ],
            rows=table,
            settings={
                "SIGHTING_THREADS": get_settings().threads,
                "photos": f"{args.limit} query photos of each set (seeded), _none left out, "
                f"embedded with {args.model or 'the kind' + chr(39) + 's model'}",
                "load average (1 min) at the end": load1,
            },
            notes="NMI / ARI against the labels; (k N) is the k chosen. Accuracy does not "
            "depend on the load; the map is the PCA one (it does not change the clusters).",
        )
    print(" ".join(f"{k}={v}" for k, v in summary.items()) + f" load1={load1}")


def _cell(value: tuple, with_k: bool) -> str:
    k, nmi, ari = value
    return f"{nmi:.3f} / {ari:.3f}" + (f" (k {k})" if with_k else "")


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
