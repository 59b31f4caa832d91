"""Batch speed of ``traps.run_batch``: photos per second and peak memory, on real photos.

    SIGHTING_THREADS=1 python -m bench.traps_speed [--photos 100] [--catalog-items 50]
    SIGHTING_THREADS=1 python -m bench.traps_speed --no-catalog

The folder: the first N photos of a fixed shuffle of dogs and grocery query photos (copied to
a temporary card). Labels by example: a label set of dog / milk / banana (5 photos each). With
a catalog (default): the first K dogs of ../shared/data/dogs/catalog as known individuals
(indexing is done before the clock starts). Run once per mode: the peak resident memory
(``ru_maxrss``) is the process's. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import tempfile
import time
from pathlib import Path

from core import cli
from core.images import list_images
from core.settings import REPO_ROOT, get_settings

DATA = REPO_ROOT.parent / "shared" / "data"


@cli.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        epilog=cli.EXIT_STATUS,
        prog="python -m bench.traps_speed",
        description="Photos per second and peak memory of a camera-trap batch.",
    )
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--catalog-items", type=int, default=50)
    parser.add_argument("--no-catalog", action="store_true", help="no known-individual matching")
    args = parser.parse_args(argv)
    from core.images import read_image
    from core.runtime import configure_threads
    from labels import ExampleLabeler, LabelSet, load_label_embedder
    from traps.batch import TrapModels, run_batch
    from traps.sources import FolderSource

    settings = get_settings()
    rng = random.Random(0)
    photos = [
        p
        for s in ("dogs", "grocery")
        for d in sorted((DATA / s / "queries").iterdir())
        for p in list_images(d)
    ]
    rng.shuffle(photos)
    tmp = Path(tempfile.mkdtemp(prefix="traps-speed-"))
    card = tmp / "card"
    card.mkdir()
    for i, p in enumerate(photos[: args.photos]):
        shutil.copy(p, card / f"IMG_{i:05d}{p.suffix}")
    none_dogs = list_images(DATA / "dogs" / "queries" / "_none")[::7][:5]
    label_set = LabelSet(
        "bench",
        {
            "dog": [read_image(p) for p in none_dogs],
            "milk": [
                read_image(p) for p in list_images(DATA / "grocery/queries/Arla-Standard-Milk")[:5]
            ],
            "banana": [read_image(p) for p in list_images(DATA / "grocery/queries/Banana")[:5]],
        },
    )
    labeler = ExampleLabeler.fit(load_label_embedder(settings), label_set)
    if args.no_catalog:
        from detection import load_detector

        models = TrapModels(load_detector(settings), labeler)
    else:
        from matching.engine import load_pipeline
        from matching.folder_catalog import load_folder_catalog

        pipeline = load_pipeline(settings)
        cat = tmp / "catalog"
        for d in sorted((DATA / "dogs" / "catalog").iterdir())[: args.catalog_items]:
            shutil.copytree(d, cat / d.name)
        catalog = load_folder_catalog(pipeline, cat, kind="animals", progress=False)
        models = TrapModels(pipeline.detector, labeler, pipeline, catalog)
    configure_threads(settings.threads)
    start = time.perf_counter()
    summary = run_batch(FolderSource(card), models, tmp / "out")
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "photos": summary.total,
                "catalog_items": 0 if args.no_catalog else args.catalog_items,
                "threads": settings.threads,
                "seconds": round(seconds, 1),
                "photos_per_s": round(summary.total / seconds, 3),
                "with_animal": summary.with_animal,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
