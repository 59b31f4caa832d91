"""Operators' command for the catalog store (the one the settings name: local or S3).

python -m catalog check        # store reachable; on S3, conditional writes honoured
python -m catalog list         # every catalog: id, owner, kind, items, images, version
python -m catalog gc [--grace-s 3600]
                               # delete data no manifest names (left by crashed writes)
python -m catalog put-video FILE videos/KEY
                               # store recorded footage for POST /v1/catalogs/<id>/videos
python -m catalog videos       # the stored videos: key, size
python -m catalog reindex ID [ID ...] | --all
                               # describe every image again with the configured models
python -m catalog reindex --backend milvus [--uri URI] ID [ID ...] | --all
                               # write the stored vectors into Milvus (no model runs)
python -m catalog calibrate ID [ID ...] | --all [--max-queries 200]
                               # fit each catalog's own score calibration on its images
python -m catalog export ID DIR
                               # the catalog in the data layout (to train an embedder on it)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from catalog.export import export_catalog
from catalog.repository import CatalogRepository
from catalog.s3_store import S3Store
from catalog.stores import open_store
from catalog.videos import VIDEO_PREFIX, put_video
from core import cli
from core.errors import SightingError
from core.settings import Settings, get_settings


def reindex_catalogs(
    settings: Settings, repository: CatalogRepository, catalog_ids: list[str] | None
) -> None:
    """Re-index the given catalogs (None: all) with the models ``settings`` name."""
    from catalog.reindex import reindex_catalog  # the models only for this command
    from matching.engine import load_pipeline

    pipeline = load_pipeline(settings)
    for catalog_id in repository.list_catalog_ids() if catalog_ids is None else catalog_ids:
        # the old feature blobs go once every worker has synced (they read them until then)
        m = reindex_catalog(repository, pipeline, catalog_id, grace_s=settings.sync_interval_s + 1)
        print(
            f"{catalog_id}  re-indexed {m.image_count} images  embedder={m.embedder_fingerprint}"
            f"  verifier={m.verifier_fingerprint}  version={m.version}"
        )


def reindex_milvus(
    settings: Settings, repository: CatalogRepository, catalog_ids: list[str] | None, uri: str
) -> None:
    """Rebuild the given catalogs' (None: all) vectors in Milvus from the store; then give
    each collection the index its size calls for, and (with --all) drop catalogs the store
    no longer has."""
    from dataclasses import replace

    from catalog.reindex import reindex_vectors
    from matching.index import IndexConfig
    from matching.milvus_index import META, engine_for

    config = replace(IndexConfig.from_settings(settings), backend="milvus")
    if uri:
        config = replace(config, milvus_uri=uri)
    engine = engine_for(config)
    stored = repository.list_catalog_ids()
    for catalog_id in stored if catalog_ids is None else catalog_ids:
        report = reindex_vectors(repository, config, catalog_id)
        print(f"{catalog_id}  {report.added} images in Milvus  version={report.version}")
    if catalog_ids is None:
        engine.ensure_meta()
        known = {
            row["catalog"]
            for row in engine.call(
                "query",
                "query",
                META,
                filter='catalog != ""',
                output_fields=["catalog"],
                limit=16384,
            )
        }
        for gone in sorted(known - set(stored)):
            engine.forget(gone)
            print(f"{gone}  not in the store: its vectors left Milvus")
    for name in engine.call("list", "list_collections"):
        if name.startswith("sighting_") and name != META:
            print(f"{name}  {engine.count(name)} vectors  index={engine.tune_index(name)}")


def calibrate_catalogs(
    settings: Settings,
    repository: CatalogRepository,
    catalog_ids: list[str] | None,
    max_queries: int,
) -> None:
    """Fit the given catalogs' (None: all) own calibrations and print what each rests on."""
    from catalog.calibration import refit_catalog_calibration
    from matching.calibration.record import FitOptions
    from matching.engine import load_pipeline

    pipeline = load_pipeline(settings)
    options = FitOptions(max_queries=max_queries)
    for catalog_id in repository.list_catalog_ids() if catalog_ids is None else catalog_ids:
        result = refit_catalog_calibration(repository, pipeline, catalog_id, options, progress=True)
        cal = result.calibration
        state = "up to date" if result.skipped else "stored" if result.stored else "stale"
        print(
            f"{catalog_id}  {cal.status}  threshold={cal.threshold}  genuine={cal.genuine}  "
            f"impostors={cal.impostors}  ({state})" + (f"  {cal.reason}" if cal.reason else "")
        )
        for pair in cal.look_alikes[:3]:
            print(f"    look-alike: {pair['item']} vs {pair['looks_like']}  score={pair['score']}")


@cli.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m catalog", description=__doc__.split("\n")[0], epilog=cli.EXIT_STATUS
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="check that the store answers (and honours conditional writes)")
    sub.add_parser("list", help="list every catalog in the store")
    gc = sub.add_parser("gc", help="delete image/feature data that no manifest names")
    gc.add_argument(
        "--grace-s",
        type=float,
        default=3600.0,
        help="only data older than this (an upload in flight is not an orphan)",
    )
    put = sub.add_parser(
        "put-video",
        help="store a video file under videos/ (checked to decode first)",
        description="Store a video file (read whole into memory; for files of several GB "
        "copy into the local store's folder or use your S3 tools) under a key starting "
        "with videos/, for the videos endpoint to name.",
    )
    put.add_argument("file", type=Path, help="a video file OpenCV can decode (MP4)")
    put.add_argument("key", help="store key, e.g. videos/cam3/2026-11-24.mp4")
    sub.add_parser("videos", help="list the stored videos (key, bytes)")
    reindex = sub.add_parser(
        "reindex",
        help="describe every image again with the configured models (after a model change)",
        description="Re-index catalogs with the models the settings name (a catalog built "
        "with other models answers 409 until then). The catalog stays usable on its old "
        "models until the swap; workers pick up the new features within "
        "SIGHTING_SYNC_INTERVAL_S.",
    )
    reindex.add_argument("catalog_ids", nargs="*", metavar="ID", help="catalogs to re-index")
    reindex.add_argument("--all", action="store_true", help="every catalog in the store")
    reindex.add_argument(
        "--backend",
        choices=["models", "milvus"],
        default="models",
        help="models: describe the images again (default); milvus: write the stored vectors "
        "into Milvus (SIGHTING_MILVUS_URI or --uri), no model runs; the way to move "
        "catalogs to Milvus or rebuild it from the store",
    )
    reindex.add_argument("--uri", default="", help="Milvus URI (default: SIGHTING_MILVUS_URI)")
    calibrate = sub.add_parser(
        "calibrate",
        help="fit each catalog's own score calibration on its images (its look-alikes)",
        description="Score each catalog's images against each other (each as a query with "
        "its own item left out, and with it in) and store the catalog's own calibration; "
        "answers then carry calibration=catalog. A catalog that changes meanwhile keeps the "
        "kind's default (marked kind_default) until it is fitted again.",
    )
    calibrate.add_argument("catalog_ids", nargs="*", metavar="ID", help="catalogs to calibrate")
    calibrate.add_argument("--all", action="store_true", help="every catalog in the store")
    calibrate.add_argument(
        "--max-queries", type=int, default=200, help="catalog images used as queries (cost)"
    )
    export = sub.add_parser(
        "export",
        help="write a catalog's images in the data layout (for python -m embedding.train)",
        description="Write each item's first image to DIR/catalog/<item>/ and its other "
        "images to DIR/queries/<item>/ (the layout python -m embedding.train reads).",
    )
    export.add_argument("catalog_id", metavar="ID")
    export.add_argument("folder", type=Path, metavar="DIR", help="an empty or new folder")
    args = parser.parse_args(argv)
    if args.command in ("reindex", "calibrate") and bool(args.catalog_ids) == args.all:
        parser.error(f"{args.command} needs catalog ids or --all (not both)")

    settings = get_settings()
    store = open_store(settings)
    repository = CatalogRepository(store)
    try:
        if args.command == "check":
            store.check()
            if isinstance(store, S3Store):
                store.probe_conditional_writes()
            print(f"ok: {store!r}")
        elif args.command == "list":
            for m in repository.list_catalogs():
                print(
                    f"{m.catalog_id}  owner={m.owner}  kind={m.kind}  items={len(m.items)}  "
                    f"images={m.image_count}  version={m.version}  name={m.name!r}"
                )
        elif args.command == "put-video":
            size = put_video(store, args.file, args.key)
            print(f"stored {args.key} ({size} bytes)")
        elif args.command == "reindex" and args.backend == "milvus":
            reindex_milvus(settings, repository, args.catalog_ids or None, args.uri)
        elif args.command == "reindex":
            reindex_catalogs(settings, repository, args.catalog_ids or None)
        elif args.command == "calibrate":
            calibrate_catalogs(settings, repository, args.catalog_ids or None, args.max_queries)
        elif args.command == "export":
            counts = export_catalog(repository, args.catalog_id, args.folder)
            print(
                f"{args.catalog_id}: {counts['items']} items, {counts['catalog']} catalog and "
                f"{counts['queries']} query photos written to {args.folder}"
            )
        elif args.command == "videos":
            for info in store.list_info(VIDEO_PREFIX):
                print(f"{info.key}  {info.size}")
        else:
            total = 0
            for catalog_id in repository.list_catalog_ids():
                deleted = repository.gc_orphans(catalog_id, grace_s=args.grace_s)
                total += len(deleted)
                for key in deleted:
                    print(f"deleted {key}")
            print(f"{total} orphaned objects deleted")
    except SightingError as exc:
        return cli.report(exc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
