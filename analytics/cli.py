"""``python -m analytics INPUT [INPUT ...] --out DIR [--labels CSV]``: clusters, outliers,
look-alikes and a map of a collection.

INPUT is a folder of images (embedded with ``--model``, vectors cached), a descriptor file
(``.pickle``/``.pkl``: a dict path -> vector or a pandas DataFrame, read with a restricted
unpickler, from trusted sources only; ``.npy`` with a ``.paths.txt`` beside it; ``.parquet``)
or a catalog id of the store (``SIGHTING_DATA_DIR`` / S3 settings). Several INPUTs are
descriptor sets of the same images: each is scaled, weighted (``--weights``) and concatenated.
The last line is ``images=N clusters=K outliers=M nmi=X ari=Y seconds=S``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tqdm import tqdm

from analytics.inputs import combine, load_descriptor_file, match_labels, read_labels
from analytics.outputs.write import write_outputs
from analytics.pipeline import AnalyticsConfig, run
from analytics.quality import add_quality
from analytics.sources import catalog_descriptors, embed_folder, file_reader
from analytics.steps.cluster import CHOICES
from analytics.steps.map2d import MAPS
from analytics.steps.outliers import METHODS
from analytics.steps.scale import SCALINGS
from core import cli
from core.errors import BadInput, SightingError


def build_parser() -> argparse.ArgumentParser:
    """The command's options (defaults: `AnalyticsConfig`)."""
    d = AnalyticsConfig()
    p = argparse.ArgumentParser(
        epilog=cli.EXIT_STATUS,
        prog="python -m analytics",
        description=__doc__.split("\n\n")[0].strip(),
    )
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="folder, descriptor file or catalog id"
    )
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--labels", type=Path, help="CSV path,label: NMI and ARI of the clustering")
    p.add_argument("--paths", type=Path, help=".npy input: its paths file (one a line)")
    p.add_argument("--image-root", type=Path, help="folder that relative image paths are under")
    p.add_argument("--model", default="products", help="embedder for a folder (registry name)")
    p.add_argument("--weights", help="comma-separated weight of each INPUT (several INPUTs)")
    p.add_argument("--scaling", choices=SCALINGS, default=d.scaling)
    p.add_argument("--pca", type=int, default=d.pca_dims, help="dimensions kept by PCA")
    p.add_argument("--method", choices=("kmeans", "hdbscan"), default=d.method)
    p.add_argument("--k", type=int, default=d.k, help="clusters (0 = choose)")
    p.add_argument(
        "--choose-by",
        choices=CHOICES,
        default=d.choose_by,
        help="how k is chosen when --k is 0: readable (default: the k whose silhouette stands "
        "furthest above that of clusterless references, from sqrt(images)/2 clusters up), "
        "coarse (the same, its first clear peak: fewer, broader clusters), silhouette, ch, db "
        "(k-means over a fixed grid, the older ways); the other k worth a look are printed",
    )
    p.add_argument("--max-k", type=int, default=d.max_k)
    p.add_argument("--outliers", choices=METHODS, default=d.outlier_method)
    p.add_argument("--outlier-z", type=float, default=d.outlier_z)
    p.add_argument("--map", choices=MAPS, default=d.map_method)
    p.add_argument("--map-sample", type=int, default=d.map_sample)
    p.add_argument("--duplicate-similarity", type=float, default=d.duplicate_similarity)
    p.add_argument("--sample", type=int, default=d.sample, help="sample for k, metrics, LOF")
    p.add_argument("--parquet", action="store_true", help="also write clusters.parquet")
    p.add_argument("--no-sheets", action="store_true", help="no contact sheets")
    p.add_argument(
        "--no-quality",
        action="store_true",
        help="no pixel quality flags (the quality column; they read every image once more)",
    )
    p.add_argument("--seed", type=int, default=d.seed)
    return p


class _Bars:
    """One tqdm bar per step."""

    def __init__(self) -> None:
        self.bars: dict[str, tqdm] = {}

    def __call__(self, name: str, done: int, total: int) -> None:
        bar = self.bars.get(name)
        if bar is None:
            bar = self.bars[name] = tqdm(total=total, desc=f"{name:>9}", file=sys.stderr)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()


def _load(args, settings, bars: _Bars):
    sets, reader = [], None
    for spec in args.inputs:
        path = Path(spec)
        if path.is_dir():
            data = embed_folder(
                path, settings, args.model, progress=lambda d, t: bars("embed", d, t)
            )
            reader = reader or file_reader(path)
        elif path.suffix:
            data = load_descriptor_file(path, args.paths)
            reader = reader or file_reader(args.image_root)
        else:  # a catalog id
            from catalog.stores import open_store

            data, reader = catalog_descriptors(open_store(settings), spec)
        sets.append(data)
    weights = [float(w) for w in args.weights.split(",")] if args.weights else None
    return combine(sets, weights), reader


@cli.command
def main(argv: list[str] | None = None) -> int:
    """Run the analytics; returns the exit status (1 with a message on bad input)."""
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    from core.runtime import configure_threads
    from core.settings import get_settings

    configure_threads(get_settings().threads)
    bars = _Bars()
    try:
        data, reader = _load(args, get_settings(), bars)
        labels = None
        if args.labels:
            roots = [Path(s) for s in args.inputs if Path(s).is_dir()]
            roots += [Path(args.image_root)] if args.image_root else []
            match = match_labels(read_labels(args.labels), data.paths, roots)
            print(match.summary(), file=sys.stderr)
            if not match.matched:
                raise BadInput(
                    f"{args.labels}: no row's path matched an image of the run "
                    f"(e.g. {data.paths[0]!r}); NMI/ARI need labels of these images"
                )
            labels = match.labels
        config = AnalyticsConfig(
            scaling=args.scaling if len(args.inputs) == 1 else "none",
            pca_dims=args.pca,
            method=args.method,
            k=args.k,
            choose_by=args.choose_by,
            max_k=args.max_k,
            outlier_method=args.outliers,
            outlier_z=args.outlier_z,
            map_method=args.map,
            map_sample=args.map_sample,
            duplicate_similarity=args.duplicate_similarity,
            sample=args.sample,
            seed=args.seed,
        )
        result = run(data, config, labels, bars)
        if reader is not None and not args.no_quality:
            add_quality(result, reader, lambda d, t: bars("quality", d, t))
        bars("write", 0, 1)
        write_outputs(
            result, args.out, reader, parquet=args.parquet or None, sheets=not args.no_sheets
        )
        bars("write", 1, 1)
    except SightingError as exc:
        return cli.report(exc)
    m = result.metrics
    if m.get("k_chosen_by", "given") != "given":
        others = ", ".join(str(k) for k in m.get("k_others", [])) or "none"
        print(
            f"k {m['clusters']} ({m['k_chosen_by']}); other k worth a look: {others}",
            file=sys.stderr,
        )
    line = f"images={m['images']} clusters={m['clusters']} outliers={m['outliers']}"
    if "nmi" in m:
        line += f" nmi={m['nmi']:.4f} ari={m['ari']:.4f}"
    print(line + f" seconds={time.perf_counter() - start:.1f}")
    return 0
