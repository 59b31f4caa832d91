"""Time per photo of local ranking against catalogs of growing size (issue 28).

    python -m bench.local_rank ../shared/data/grocery --kind other --sizes 100 300 1000 --queries 5

The set's catalog is indexed once (the reference cache of `bench.accuracy`), then copied
item by item (``<item>#<n>``, the same vectors and keypoints) until it holds each ``--sizes``
images: the cost of a candidate does not depend on which image it is, so the copies time a
catalog of that size without indexing it. Each size runs the same ``--queries`` photos with
the embedding ranking, local ranking under the budget (``--budget``, default
``SIGHTING_LOCAL_BUDGET_S``) and local ranking without one. Accuracy is not measured here
(copies are look-alikes by construction): `bench.accuracy --rank local` measures it. The last
line is::

    size=N embedding_s=E local_s=L local_unbounded_s=U checked=C partial=P load=A
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from bench.machine import describe
from core import cli
from core.dataset import load_queries, sample_queries
from core.images import read_image
from core.kinds import KINDS
from core.settings import get_settings
from matching.catalog_view import CatalogView
from matching.engine import load_pipeline
from matching.folder_catalog import describe_folder, scan_catalog
from matching.local_rank import LocalOptions
from matching.pipeline import PipelineConfig


def grown(pipeline, refs: dict, images: list, kind: str, size: int) -> CatalogView:
    """A catalog of ``size`` images: the set's, then copies of them as new items."""
    features: dict = {}
    dim = pipeline.embedder_for(kind).dim
    view = CatalogView.empty("timing", kind, dim, features.__getitem__, cache_size=0)
    images = [image for image in images if image.image_id in refs]
    for n in range(size):
        image = images[n % len(images)]
        ref = refs[image.image_id]
        copy = n // len(images)
        item = image.item_id if copy == 0 else f"{image.item_id}#{copy}"
        image_id = image.image_id if copy == 0 else f"{image.image_id}#{copy}"
        view.add_image(item, image_id, ref.vectors, ref.tags, ref.box)
        view.images_of.setdefault(item, []).append(image_id)
        features[image_id] = ref.features
    return view


@cli.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.local_rank",
        description=__doc__.split("\n")[0],
        epilog=cli.EXIT_STATUS,
    )
    parser.add_argument("dataset", type=Path, help="a set in the data layout (catalog/, queries/)")
    parser.add_argument("--kind", choices=KINDS, default="other", help="the catalog kind")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--queries", type=int, default=5, help="photos timed per size")
    parser.add_argument("--budget", type=float, default=None, help="seconds (default: setting)")
    parser.add_argument("--seed", type=int, default=0, help="sample seed")
    parser.add_argument(
        "--verify",
        type=int,
        default=None,
        help="LightGlue pairs per crop after the descriptor pass "
        f"(default {LocalOptions().verify})",
    )
    args = parser.parse_args(argv)
    if min(args.sizes) < 1 or args.queries < 1:
        parser.error("--sizes and --queries must be >= 1")
    if args.verify is not None and args.verify < 0:
        parser.error("--verify must be >= 0")
    logging.basicConfig(level=logging.WARNING)
    settings = get_settings()
    known = [q for q in load_queries(args.dataset) if q.item_id is not None]
    queries = sample_queries(known, args.queries, args.seed)
    pipeline = load_pipeline(settings)
    images = scan_catalog(args.dataset / "catalog")
    refs = describe_folder(pipeline, images, kind=args.kind)
    photos = [read_image(q.path) for q in queries]
    config = PipelineConfig.from_settings(settings, top_k=20)
    if args.budget is not None:
        config = replace(config, local_budget_s=args.budget)
    if args.verify is not None:
        config = replace(config, local=replace(config.local, verify=args.verify))
    runs = {
        "embedding": replace(config, rank="embedding"),
        "local": replace(config, rank="local"),
        "local_unbounded": replace(config, rank="local", local_budget_s=0.0),
    }
    print(
        describe(settings) + f"; shortlist={config.local_shortlist} "
        f"budget_s={config.local_budget_s} verify={config.local.verify} queries={len(photos)}"
    )
    print(
        f"{'images':>7}"
        + "".join(f"{name + ' s/photo':>26}" for name in runs)
        + f"{'checked':>9}{'partial':>9}{'load':>7}"
    )
    line = ""
    for size in args.sizes:
        view = grown(pipeline, refs, images, args.kind, size)
        seconds, checked, partial = {}, 0, 0
        for name, run in runs.items():
            start = time.perf_counter()
            for photo in tqdm(photos, desc=f"{size} {name}", leave=False):
                result = pipeline.match_frames([photo], view, run)[0]
                if name == "local":
                    checked += result.ranking.checked
                    partial += result.ranking.partial
            seconds[name] = (time.perf_counter() - start) / len(photos)
        load = os.getloadavg()[0]
        print(
            f"{size:>7}"
            + "".join(f"{s:>26.2f}" for s in seconds.values())
            + f"{checked / len(photos):>9.0f}{partial:>9}{load:>7.1f}"
        )
        line = (
            f"size={size} embedding_s={seconds['embedding']:.2f} local_s={seconds['local']:.2f} "
            f"local_unbounded_s={seconds['local_unbounded']:.2f} "
            f"checked={checked / len(photos):.0f} partial={partial} load={load:.1f}"
        )
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
