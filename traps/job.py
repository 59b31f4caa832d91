"""The ``traps`` job kind: a card's photos under a store prefix -> the batch's files.

Submitted by ``POST /v1/traps/batches`` (`api.routes.traps`, which uploads the photos to
``uploads/<id>/`` or takes an operator's ``cards/...`` prefix); runs on the job consumer
(`jobs`). Its files are those of ``python -m traps``: results.csv, results.jsonl, animals.jpg,
empties.jpg and photos/<name>.jpg.

Resumable: after each photo the results so far are saved as the job's checkpoint (at most
every ``CHECKPOINT_S`` seconds, and after the last one); an attempt that follows a dead worker
reads it back and skips the photos it holds.
"""

from __future__ import annotations

import time
from typing import Any

from jobs import JobContext, job_kind

CHECKPOINT = "results.jsonl"
CHECKPOINT_S = 2.0
#: params a request may set (the route validates them), besides ``prefix`` and ``skipped``
OPTIONS = ("catalog", "labels", "prompts", "kind", "threshold", "top_k", "verify", "draw")

_models: dict[tuple, Any] = {}  # (labels, catalog, versions...) -> TrapModels, per consumer


def _trap_models(params: dict[str, Any], settings) -> Any:
    """The models for ``params``, kept per consumer process for the next job alike.

    Keyed by the label set (or prompts) and catalog with their manifest versions, so an
    edited catalog or label set is read and fitted again; the matching pipeline is the
    consumer's shared one (`matching.engine.shared_pipeline`), never loaded twice.
    """
    from catalog.repository import CatalogRepository
    from catalog.stores import open_store
    from matching.engine import shared_pipeline
    from traps.models import load_trap_models

    repository = CatalogRepository(open_store(settings))
    versions = tuple(
        (name, repository.get_manifest(params[name]).version if params.get(name) else None)
        for name in ("labels", "catalog")
    )
    prompts = tuple(params.get("prompts") or ())  # labels by text: on SIGHTING_CLIP's model
    key = (versions, prompts, params.get("kind", "animals"))
    if key not in _models:
        _models.clear()  # one fitted set per consumer
        _models[key] = load_trap_models(
            settings,
            labels=params.get("labels"),
            prompts=list(prompts) or None,
            clip=settings.clip or None,
            clip_arch=settings.clip_arch,
            catalog=params.get("catalog"),
            kind=params.get("kind", "animals"),
            folders=False,
            pipeline=shared_pipeline(settings) if params.get("catalog") else None,
        )
    return _models[key]


def _keep_hook(params: dict[str, Any], ctx: JobContext):
    """Keeps each photo's matched animals as sightings of the catalog (option ``keep``)."""
    from catalog.repository import CatalogRepository
    from sightings.keep import KeepContext, keep_frame
    from sightings.model import SightingSource
    from sightings.repository import SightingRepository

    catalog_id = str(params["catalog"])
    manifest = CatalogRepository(ctx.store).get_manifest(catalog_id)
    sightings = SightingRepository(ctx.store)

    def keep(record, result, image) -> None:
        source = SightingSource(
            "trap",
            file_name=record.file,
            exif_time=record.time,
            camera=record.camera,
            job_id=ctx.job_id,
        )
        ctx_keep = KeepContext(
            catalog_id,
            ctx.owner,
            manifest.version,
            source,
            embedder=manifest.embedder_fingerprint,
            retention=ctx.settings.sightings_retention,
        )
        keep_frame(sightings, result, image, ctx_keep)

    return keep


@job_kind("traps")
def traps_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Process the photos under ``params["prefix"]``.

    Returns:
        photos, processed, done_before, with_animal, errors, seconds.
    """
    from traps.batch import TrapConfig, run_batch
    from traps.pictures import write_pictures
    from traps.records import PhotoRecord, ResultsFile, latest
    from traps.sources import StorePrefixSource, photo_reader

    settings = ctx.settings
    source = StorePrefixSource(ctx.store, str(params["prefix"]))
    out = ctx.files_dir
    saved = ctx.load_state(CHECKPOINT)
    if saved:  # an earlier attempt's photos: skipped by run_batch
        (out / "results.jsonl").write_bytes(saved)
    results = ResultsFile(out / "results.jsonl")
    noted = {r["file"] for r in results.read()}
    for skipped in params.get("skipped", []):  # upload members that were not stored
        if skipped["file"] not in noted:
            results.append(PhotoRecord(file=skipped["file"], error=skipped["error"]))
    ctx.progress(0, 0, "loading models")
    models = _trap_models(params, settings)
    threshold = params.get("threshold", settings.det_conf)
    config = TrapConfig(
        threshold=threshold,
        floor=min(0.05, threshold),
        top_k=int(params.get("top_k", 3)),
        verify=bool(params.get("verify", True)),
        max_pixels=settings.max_image_pixels,
    )
    last = [0.0]

    def checkpoint(_record: dict) -> None:
        if time.monotonic() - last[0] >= CHECKPOINT_S:
            ctx.save_state(CHECKPOINT, results.path.read_bytes())
            last[0] = time.monotonic()

    def progress(done: int, total: int) -> None:
        ctx.progress(done, total, f"{done} of {total} photos")

    keep_hook = _keep_hook(params, ctx) if params.get("keep") and params.get("catalog") else None
    summary = run_batch(
        source, models, out, config, progress=progress, on_record=checkpoint, keep_hook=keep_hook
    )
    ctx.save_state(CHECKPOINT, results.path.read_bytes())
    ctx.progress(summary.total, summary.total, "drawing pictures")
    records = list(latest(results.read()))
    write_pictures(
        records,
        photo_reader(source, config.max_pixels),
        out,
        photos=bool(params.get("draw", True)),
    )
    return {
        "photos": len(records),
        "processed": summary.processed,
        "done_before": summary.done_before,
        "with_animal": summary.with_animal,
        "errors": summary.errors,
        "seconds": round(summary.seconds, 1),
    }
