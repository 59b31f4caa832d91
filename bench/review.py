"""A simulated reviewer: how much the catalog's calibration learns from people's reviews.

    python -m bench.review ../shared/data/grocery --kind other --limit 450 [--seed 0]
        [--reviews 0,25,50,100,200] [--references] [--json out/review.json]

The dev set's catalog is stored in a fresh local catalog store and calibrated on itself, as
the service does after an upload (`catalog.calibration.refit_catalog_calibration`). Its query
photos (a seeded, stratified sample of ``--limit``) then arrive in a seeded order through the
service's code: each is matched (`matching.pipeline.Pipeline.match_frames` on the service's
`catalog.cache.CatalogCache` view) and the first ``max(--reviews)`` are kept as sightings
(`sightings.keep.keep_frame`: the photo's crop holding its top answer). After each batch, a
reviewer answers from the ground truth through `sightings.review.review_sighting`: ``same``
with the true item (whether or not it is among the candidates), ``none`` for a photo of
something not in the catalog; then the calibration refits on the reviewed sightings
(`sightings.pairs.reviewed_pairs`, the refit job's code) and the photos not yet seen (the
same ones at every checkpoint: the sample after the last reviewed photo) are scored with the
calibration the service would now use.

With ``--references`` each confirmed crop also becomes a reference image of its item
(``add_reference``), and the unseen photos are matched again at every checkpoint (the catalog
changed): slower, and it measures what the references add to recall@1.

One line per checkpoint, with Wilson intervals (z=1) of confirm precision, confirm recall and
open-set false confirms, and the ECE a perfectly calibrated score would measure on as many
photos (the noise floor); the last line is the largest checkpoint's::

    reviews=N recall@1=.. recall@5=.. confirm_precision=.. confirm_recall=..
        open_set_false_confirm=.. ece=.. queries=..
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench.calibrate import rescore
from bench.catalog_calibration import figures
from bench.machine import describe
from catalog.cache import CatalogCache, model_fingerprints
from catalog.calibration import own_pairs_key, refit_catalog_calibration, stored_calibration
from catalog.local_store import LocalStore
from catalog.repository import CatalogRepository, NewImage
from core import cli
from core.dataset import NONE, load_queries, sample_queries
from core.images import read_image
from core.kinds import KINDS
from core.settings import REPO_ROOT
from core.stats import wilson_interval
from detection.detections import Detections
from matching.calibration.record import FitOptions, resolve
from matching.folder_catalog import describe_folder, scan_catalog
from matching.pipeline import Pipeline, PipelineConfig
from matching.references import to_blobs
from matching.report import benchmark_candidates
from matching.result import FrameResult, Match
from sightings.keep import KeepContext, keep_frame
from sightings.model import SightingSource
from sightings.pairs import reviewed_pairs
from sightings.repository import SightingRepository
from sightings.review import ReviewRequest, review_sighting

TENANT = "bench"


def build_catalog(pipeline: Pipeline, repository: CatalogRepository, folder: Path, kind: str):
    """The folder catalog stored as the service stores uploads (descriptions disk-cached)."""
    images = scan_catalog(folder)
    refs = describe_folder(pipeline, images, kind=kind)
    cid = repository.create_catalog(folder.parent.name, kind, TENANT).catalog_id
    fingerprints = model_fingerprints(pipeline, kind)
    by_item: dict[str, list[NewImage]] = {}
    for image in images:
        ref = refs.get(image.image_id)
        if ref is None:
            continue
        data = image.path.read_bytes()
        h, w = read_image(image.path).shape[:2]
        content_type = "image/png" if image.path.suffix.lower() == ".png" else "image/jpeg"
        by_item.setdefault(image.item_id, []).append(
            NewImage(data, content_type, w, h, to_blobs(ref))
        )
    for item_id, new in tqdm(by_item.items(), desc="storing catalog", unit="item"):
        repository.add_images(cid, item_id, None, new, fingerprints)
    return cid


def cache_folder(pipeline: Pipeline, dataset: Path, kind: str) -> Path:
    """``.cache/review/<key>``: matches of this set's photos against its own catalog, and the
    catalog's own calibration pairs, for these models and this kind (a rerun scores no photo
    again; ``--references`` changes the catalog and never reads it after the first review)."""
    parts = [str(dataset.resolve()), kind, pipeline.detector.fingerprint]
    parts += [pipeline.embedder_for(kind).fingerprint]
    parts += [pipeline.verifier.fingerprint if pipeline.verifier else "none"]
    key = hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]
    return REPO_ROOT / ".cache" / "review" / key


def _match_dict(m: Match) -> dict:
    return {f: getattr(m, f) for f in Match.__dataclass_fields__}


def cached_match(
    pipeline: Pipeline, view, config: PipelineConfig, path: Path, cache_dir: Path | None
) -> FrameResult:
    """`Pipeline.match_frames` of one photo, or its cached boxes and matches (the crops are
    cut from the photo again: what `keep_frame` stores)."""
    image = read_image(path)
    file = None
    if cache_dir is not None:
        file = cache_dir / "photos" / (hashlib.sha1(str(path).encode()).hexdigest() + ".json")
        if file.is_file():
            raw = json.loads(file.read_text())
            crops = np.empty(len(raw["boxes"]), dtype=object)
            for i, (x1, y1, x2, y2) in enumerate(raw["boxes"]):
                crops[i] = image[
                    int(y1) : max(int(y1) + 1, int(y2)), int(x1) : max(int(x1) + 1, int(x2))
                ]
            det = Detections(
                xyxy=np.asarray(raw["boxes"], dtype=np.float32).reshape(-1, 4),
                confidence=np.asarray(raw["confidence"], dtype=np.float32),
                class_id=np.asarray(raw["class_id"], dtype=np.int64),
                data={"crop": crops, "class_name": np.asarray(raw["class_name"], dtype=object)},
            )
            matches = [[Match(**m) for m in row] for row in raw["matches"]]
            return FrameResult(det, matches)
    result = pipeline.match_frames([image], view, config)[0]
    if file is not None:
        det = result.detections
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(
            json.dumps(
                {
                    "boxes": det.xyxy.tolist(),
                    "confidence": det.confidence.tolist(),
                    "class_id": det.class_id.tolist(),
                    "class_name": [str(n) for n in det.class_name],
                    "matches": [[_match_dict(m) for m in row] for row in result.matches],
                }
            )
        )
    return result


def seed_own_pairs(repository, pipeline, cid: str, cache_dir: Path | None) -> None:
    """Put the cached own calibration pairs of this set beside the new catalog (the refit
    then uses them instead of scoring the catalog's images again)."""
    if cache_dir is None or not (cache_dir / "own-pairs.json").is_file():
        return
    from matching.calibration.record import calibration_digest

    manifest = repository.get_manifest(cid)
    side = json.loads((cache_dir / "own-pairs.json").read_text())
    side |= {
        "content_digest": manifest.content_digest(),
        "base_digest": calibration_digest(pipeline.calibration(manifest.kind)),
    }
    repository.store.put(own_pairs_key(cid), json.dumps(side).encode())


def save_own_pairs(repository, cid: str, cache_dir: Path | None) -> None:
    if cache_dir is None:
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    side = json.loads(repository.store.get(own_pairs_key(cid)))
    (cache_dir / "own-pairs.json").write_text(json.dumps({"records": side["records"]}))


def top_row(result: FrameResult) -> int | None:
    """The detection holding the photo's top answer (best score, then similarity)."""
    best, row = None, None
    for i, matches in enumerate(result.matches):
        if matches and (best is None or (matches[0].score, matches[0].similarity) > best):
            best, row = (matches[0].score, matches[0].similarity), i
    return row


def only_row(result: FrameResult, row: int) -> FrameResult:
    """The frame with one detection kept (the one a person is asked about)."""
    return FrameResult(result.detections[[row]], [result.matches[row]], result.timings)


def verdict_for(true_item: str | None) -> ReviewRequest:
    """The simulated reviewer's answer from the ground truth (module docstring)."""
    return ReviewRequest("none") if true_item is None else ReviewRequest("same", true_item)


def _line(n: int, m: dict) -> str:
    known = int(m["known"])
    recall_hits = round(m["confirm_recall"] * known) if known else 0
    rlo, rhi = wilson_interval(recall_hits, known, 1.0)
    return (
        f"reviews={n} recall@1={m['recall@1']:.3f} recall@5={m['recall@5']:.3f} "
        f"confirm_precision={m['confirm_precision']:.3f} confirm_recall={m['confirm_recall']:.3f} "
        f"open_set_false_confirm={m['open_set_false_confirm']:.3f} ece={m['ece']:.3f} "
        f"queries={int(m['queries'])}"
    ), (
        f"    confirmed={int(m['confirmed'])} precision [{m['precision_lo']:.3f}, "
        f"{m['precision_hi']:.3f}] confirm_recall [{rlo:.3f}, {rhi:.3f}] open-set "
        f"[{m['open_lo']:.3f}, {m['open_hi']:.3f}] of {int(m['open'])}; ECE noise floor "
        f"{m['ece_floor']:.3f}"
    )


@cli.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.review",
        description=__doc__.split("\n")[0],
        epilog=cli.epilog(),
    )
    parser.add_argument("dataset", type=Path, help="a set in the data layout (catalog/, queries/)")
    parser.add_argument("--kind", choices=KINDS, default="products")
    parser.add_argument("--reviews", default="0,25,50,100,200", help="checkpoints (reviews)")
    parser.add_argument("--limit", type=int, default=None, help="query photos (seeded sample)")
    parser.add_argument("--seed", type=int, default=0, help="sample and arrival order seed")
    parser.add_argument("--references", action="store_true", help="confirmed crops -> refs")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument(
        "--fit-queries",
        type=int,
        default=FitOptions.max_queries,
        help="catalog images the catalog's own calibration scores (the service: 200)",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="match every photo again (no .cache/review)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        checkpoints = sorted({int(v) for v in args.reviews.split(",") if v.strip()})
    except ValueError:
        parser.error("--reviews takes comma-separated integers")
    if not checkpoints or checkpoints[0] < 0:
        parser.error("--reviews takes integers >= 0")
    queries = load_queries(args.dataset)
    queries = sample_queries(queries, args.limit, args.seed)
    random.Random(args.seed).shuffle(queries)
    n_max = checkpoints[-1]
    if len(queries) <= n_max:
        parser.error(f"{len(queries)} photos: more than --reviews' largest ({n_max}) are needed")
    seen, unseen = queries[:n_max], queries[n_max:]

    from core.settings import get_settings
    from matching.engine import load_pipeline

    settings = get_settings()
    pipeline = load_pipeline(settings)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-review-") as root:
        store = LocalStore(Path(root))
        repository = CatalogRepository(store)
        sightings = SightingRepository(store)
        cid = build_catalog(pipeline, repository, args.dataset / "catalog", args.kind)
        cache = CatalogCache(repository, lambda kind: pipeline.embedder_for(kind).dim)
        cache_dir = None if args.no_cache else cache_folder(pipeline, args.dataset, args.kind)
        seed_own_pairs(repository, pipeline, cid, cache_dir)
        options = FitOptions(max_queries=args.fit_queries)
        refit_catalog_calibration(repository, pipeline, cid, options, progress=True)
        save_own_pairs(repository, cid, cache_dir)
        cache.refresh(cid)
        config = PipelineConfig.from_settings(settings, top_k=20)

        def match(query, cached: bool = True) -> FrameResult:
            folder = cache_dir if cached else None  # a changed catalog: matched again
            return cached_match(pipeline, cache.get(cid)[1], config, query.path, folder)

        def records_of(batch, desc: str, cached: bool = True) -> list[dict]:
            """Each photo as the sighting a person would be asked about: the detection that
            holds its top answer, with its ranked candidates (what the reviewed ones are)."""
            out = []
            for q in tqdm(batch, desc=desc, unit="photo"):
                result = match(q, cached)
                row = top_row(result)
                rows = [] if row is None else [result.matches[row]]
                crops = benchmark_candidates(rows)
                out.append({"path": str(q.path), "true": q.item_id, "crops": crops})
            return out

        base_records = records_of(unseen, "unseen photos")
        sids: list[tuple[str | None, str]] = []
        manifest, view = cache.get(cid)
        for q in tqdm(seen, desc="kept photos", unit="photo"):
            result = match(q)
            row = top_row(result)
            if row is None:
                continue
            ctx = KeepContext(
                cid,
                TENANT,
                manifest.version,
                SightingSource("bench", file_name=q.path.name),
                calibration=pipeline.calibration_for(view)[1],
                embedder=manifest.embedder_fingerprint,
                retention=10 * n_max + 10,
                keep_photo=False,
            )
            kept = keep_frame(sightings, only_row(result, row), None, ctx)
            sids.append((q.item_id, kept.sighting_ids[0]))

        rows, done = [], 0
        for n in checkpoints:
            for true_item, sid in sids[done:n]:
                request = verdict_for(true_item)
                if args.references and request.verdict == "same":
                    request = ReviewRequest("same", true_item, add_reference=True)
                fingerprints = model_fingerprints(pipeline, args.kind)

                def describe_crop(pixels):
                    return to_blobs(pipeline.describe_reference(pixels, args.kind))

                review_sighting(
                    sightings,
                    repository,
                    cid,
                    sid,
                    request,
                    TENANT,
                    describe=describe_crop,
                    fingerprints=fingerprints,
                )
            done = min(n, len(sids))
            manifest = repository.get_manifest(cid)
            pairs = reviewed_pairs(sightings, manifest)
            refit = refit_catalog_calibration(
                repository,
                pipeline,
                cid,
                options,
                reviewed=pairs.records,
                reviews_digest=pairs.digest,
                progress=args.references,
            )
            cache.refresh(cid)
            manifest = repository.get_manifest(cid)
            record = stored_calibration(repository, manifest)
            base = pipeline.calibration(args.kind)
            cal, source = resolve(record, manifest.content_digest(), base)
            records = base_records
            if args.references and done:
                records = records_of(unseen, f"unseen photos after {n} reviews", cached=False)
            m = figures(rescore(records, cal))
            fitted = refit.calibration
            m |= {
                "reviews": n,
                "reviewed_pairs": fitted.reviewed_pairs if fitted else 0,
                "threshold": cal.threshold,
                "calibration": source,
                "references": manifest.image_count,
            }
            rows.append(m)
            line, detail = _line(n, m)
            print(line)
            model = fitted.metrics.get("model", "own pairs") if fitted else "none"
            m["model"] = model
            m["cv_log_loss"] = fitted.metrics.get("cv_log_loss", {}) if fitted else {}
            print(
                detail + f"; log-loss {m['log_loss']:.3f}; threshold={cal.threshold:.2f} "
                f"({source}, {model}), reviewed pairs {m['reviewed_pairs']}, catalog images "
                f"{manifest.image_count}"
            )
    elapsed = time.perf_counter() - start
    nones = sum(q.item_id is None for q in queries)
    print(
        f"\n{args.dataset.name} as {args.kind}: {len(queries)} photos ({nones} of {NONE}), "
        f"{len(sids)} kept and reviewed in order, {len(unseen)} scored at each checkpoint; "
        f"seed {args.seed}; {elapsed:.0f} s"
    )
    print(describe(settings) + f"; references={args.references}; fit queries={args.fit_queries}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"dataset": str(args.dataset), "kind": args.kind, "seed": args.seed, "rows": rows}
            )
        )
    print(_line(rows[-1]["reviews"], rows[-1])[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
