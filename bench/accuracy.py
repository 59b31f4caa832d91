"""Accuracy of the full pipeline on a set in the data layout.

    python -m bench.accuracy ../shared/data/grocery [--limit 600] [--json out.json]
    python -m bench.accuracy ../shared/data/grocery --rescore out.json   # no models: re-score

Runs detect -> embed -> search -> verify on every query photo (or a seeded, stratified sample
with ``--limit``), ranks each photo's items by their best score over all its crops, and prints
recall@1/5/20, confirmation precision and recall, the open-set false-confirm rate and the
calibration error (ECE over 10 bins of the photos' top candidates, `bench.metrics`), overall
and per group (where the set has ``classes.csv``), and writes the reliability diagram as PNG
(``--plot``). ``--split fit|holdout`` keeps the half of the photos `bench.calibrate` fits on,
or the other. ``--rescore`` reads a previous ``--json`` dump and scores it again with the
current calibration (exactly what a new run would give, in seconds). The last line is always::

    recall@1=R1 recall@5=R5 confirm_precision=P confirm_recall=C open_set_false_confirm=F queries=N
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import time
from dataclasses import asdict, replace
from pathlib import Path

from tqdm import tqdm

from bench.calibrate import half_of, rescore
from bench.machine import describe
from bench.metrics import by_group, final_line, reliability, summarize, top_answers
from bench.reliability import write_reliability
from core import cli
from core.dataset import NONE, load_groups, load_queries, sample_queries
from core.errors import SightingError
from core.images import read_image
from core.kinds import KINDS
from core.settings import get_settings
from embedding.trainset import holdout_identities, scan_set
from matching.engine import load_pipeline
from matching.folder_catalog import load_folder_catalog, scan_catalog
from matching.local_rank import RANKS, LocalOptions
from matching.pipeline import PipelineConfig
from matching.report import benchmark_candidates
from matching.score import load_calibrations

COLUMNS = (
    "recall@1",
    "recall@5",
    "recall@20",
    "confirm_precision",
    "confirm_recall",
    "open_set_false_confirm",
    "ece",
)


def print_table(rows: dict[str, dict[str, float]]) -> None:
    """One line per group: the metrics of `COLUMNS` and the query counts."""
    head = f"{'group':<14}" + "".join(f"{c:>24}" for c in COLUMNS) + f"{'queries':>9}"
    print(head)
    for name, m in rows.items():
        cells = "".join(f"{m.get(c, float('nan')):>24.3f}" for c in COLUMNS)
        print(f"{name:<14}{cells}{int(m['queries']):>9}")


@cli.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.accuracy", description=__doc__.split("\n")[1], epilog=cli.EXIT_STATUS
    )
    parser.add_argument("dataset", type=Path, help="a set in the data layout (catalog/, queries/)")
    parser.add_argument("--limit", type=int, default=None, help="seeded stratified sample size")
    parser.add_argument("--seed", type=int, default=0, help="sample seed")
    parser.add_argument("--json", type=Path, default=None, help="write every query's result here")
    parser.add_argument(
        "--kind",
        choices=KINDS,
        default="products",
        help="the catalog kind: its model and calibration (vehicles, wildlife, other: the "
        "ImageNet features, conservative default calibration)",
    )
    parser.add_argument("--no-verify", action="store_true", help="embedding search only")
    parser.add_argument(
        "--split",
        choices=["all", "fit", "holdout"],
        default="all",
        help="all photos, or the half bench.calibrate fits on, or the held-out half",
    )
    parser.add_argument(
        "--unseen-identities",
        type=float,
        default=None,
        metavar="FRACTION",
        help="only queries of the items `embedding.train --holdout-identities FRACTION` "
        "(seed --holdout-seed) held out from training: recall on identities never trained on",
    )
    parser.add_argument("--holdout-seed", type=int, default=0, help="with --unseen-identities")
    parser.add_argument(
        "--open-set",
        action="store_true",
        help="only the photos of things not in the catalog (queries/_none; all, or --limit of "
        "them): how often a stranger is confirmed, for bench.calibrate's threshold",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        default=None,
        help="reliability diagram PNG (default: out/<dataset>-<kind>-reliability.png)",
    )
    parser.add_argument(
        "--rescore",
        type=Path,
        default=None,
        metavar="DUMP",
        help="re-score a previous --json dump with the current calibration (no models run)",
    )
    parser.add_argument(
        "--rank",
        choices=RANKS,
        default=None,
        help="ranking: embedding (similarity; keypoints verify its shortlist) or local "
        "(keypoints on the object rank the top --shortlist); default: the kind's "
        "(SIGHTING_LOCAL_RANK_KINDS)",
    )
    parser.add_argument(
        "--shortlist",
        type=int,
        default=None,
        help="rank=local: top N items by embedding that keypoints rank "
        "(default SIGHTING_LOCAL_SHORTLIST)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=0.0,
        help="rank=local: keypoint seconds per photo (default 0: no limit, so that the "
        "figures do not depend on the machine's load; the service's is SIGHTING_LOCAL_BUDGET_S)",
    )
    parser.add_argument(
        "--background-weight",
        type=float,
        default=None,
        help="rank=local: what a keypoint match outside the object's box counts (default "
        f"{LocalOptions().background_weight})",
    )
    parser.add_argument(
        "--top-k",
        type=int,
        default=20,
        metavar="N",
        help="candidates kept per crop in the --json dump (default 20; recall@20 needs 20)",
    )
    parser.add_argument(
        "--verify",
        type=int,
        default=None,
        metavar="N",
        help="rank=local: candidates per crop that LightGlue + RANSAC check after the "
        f"descriptor pass (default {LocalOptions().verify})",
    )
    parser.add_argument(
        "--catalog-size",
        type=int,
        default=None,
        metavar="N",
        help="a catalog of N items: the sampled queries' items and seeded others (default: all)",
    )
    parser.add_argument(
        "--first",
        type=int,
        default=None,
        metavar="N",
        help="run only the first N photos of the sample (the catalog still follows the whole "
        "sample, so a shorter run compares photo by photo with a full one)",
    )
    args = parser.parse_args(argv)
    if args.shortlist is not None and not 1 <= args.shortlist <= 5000:
        parser.error("--shortlist must be in [1, 5000]")
    if args.budget < 0:
        parser.error("--budget must be >= 0")
    if args.background_weight is not None and not 0 <= args.background_weight <= 1:
        parser.error("--background-weight must be in [0, 1]")
    if not 20 <= args.top_k <= 5000:
        parser.error("--top-k must be in [20, 5000]")
    if args.verify is not None and not 0 <= args.verify <= 5000:
        parser.error("--verify must be in [0, 5000]")
    logging.basicConfig(level=logging.WARNING)
    plot = args.plot or Path("out") / f"{args.dataset.name}-{args.kind}-reliability.png"

    settings = get_settings()
    calibration = load_calibrations(settings.calibration_file)[args.kind]
    if args.rescore:
        if not args.rescore.is_file():
            parser.error(f"no dump {args.rescore}")
        records = rescore(json.loads(args.rescore.read_text())["records"], calibration)
        records = [r for r in records if args.split == "all" or half_of(r["path"]) == args.split]
        unseen = unseen_items(args)
        records = [r for r in records if unseen is None or r["true"] in unseen]
        print(f"\n{args.dataset.name}: {len(records)} queries re-scored from {args.rescore}")
    else:
        records = run_queries(args, settings, calibration)
    overall = summarize(records)
    print(
        f"calibration ({args.kind}): {calibration.fitted_on}; threshold={calibration.threshold}; "
        f"photos: {args.split}"
    )
    rows = {"all": overall}
    if load_groups(args.dataset):
        rows |= by_group(records)
    print_table(rows)
    table = reliability(*top_answers(records))
    title = f"{args.dataset.name} ({args.kind}), {len(records)} photos, {args.split}"
    print(f"reliability diagram: {write_reliability(plot, table, title, overall['ece'])}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"dataset": str(args.dataset), "records": records}))
    print(final_line(overall))
    return 0


def unseen_items(args: argparse.Namespace) -> frozenset[str] | None:
    """The items `embedding.train` held out with ``--unseen-identities`` (None: no filter)."""
    if args.unseen_identities is None:
        return None
    items = scan_set(args.dataset).items  # the items as embedding.train lists them
    return holdout_identities(items, args.unseen_identities, args.holdout_seed)


def run_queries(args: argparse.Namespace, settings, calibration) -> list[dict]:
    """Run the pipeline on the sample (its ``--split`` half) and print the run's header."""
    queries = load_queries(args.dataset)  # a set in another layout fails before models load
    scan_catalog(args.dataset / "catalog")
    groups = load_groups(args.dataset)
    if args.open_set:
        queries = [q for q in queries if q.item_id is None]
    queries = sample_queries(queries, args.limit, args.seed)
    queries = [q for q in queries if args.split == "all" or half_of(str(q.path)) == args.split]
    unseen = unseen_items(args)
    if unseen is not None:
        queries = [q for q in queries if q.item_id in unseen]
    items = catalog_items(args, queries)
    pipeline = load_pipeline(settings)
    catalog = load_folder_catalog(pipeline, args.dataset / "catalog", kind=args.kind, items=items)
    if args.first is not None:
        queries = queries[: args.first]
    options: dict = {
        "top_k": args.top_k,
        "verify": not args.no_verify,
        "local_budget_s": args.budget,
    }
    if args.rank is not None:
        options["rank"] = args.rank
    if args.shortlist is not None:
        options["local_shortlist"] = args.shortlist
    local = {
        name: value
        for name, value in (("background_weight", args.background_weight), ("verify", args.verify))
        if value is not None
    }
    if local:
        options["local"] = replace(LocalOptions(), **local)
    config = PipelineConfig.from_settings(settings, **options)

    records, failed, start = [], 0, time.perf_counter()
    for query in tqdm(queries, desc="queries", unit="photo"):
        began = time.perf_counter()
        ranking = None
        try:
            result = pipeline.match_frames([read_image(query.path)], catalog, config)[0]
            crops, ranking = benchmark_candidates(result.matches), result.ranking
        except SightingError as exc:
            logging.warning("query %s failed: %s", query.path, exc)
            failed += 1
            crops = []
        group = NONE if query.item_id is None else groups.get(query.item_id, "")
        records.append(
            {
                "path": str(query.path),
                "true": query.item_id,
                "group": group,
                "crops": crops,
                "seconds": round(time.perf_counter() - began, 3),
                "ranking": None if ranking is None else asdict(ranking),
            }
        )
        if args.json and args.first is not None:  # a time-boxed run keeps what it has done
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"dataset": str(args.dataset), "records": records}))
    elapsed = time.perf_counter() - start
    rankings = [r["ranking"] for r in records if r["ranking"]]
    print(
        f"\n{args.dataset.name}: {len(catalog.index.items)} items, "
        f"{len(catalog.index)} vectors; {len(records)} queries ({failed} failed) in "
        f"{elapsed:.0f} s ({1000 * elapsed / max(1, len(records)):.0f} ms/query); "
        f"sample: {'all' if args.limit is None else f'{args.limit}, seed {args.seed}'}"
    )
    method = config.rank_for(catalog.kind)
    print(
        describe(settings) + f"; rank={method} shortlist="
        f"{config.local_shortlist if method == 'local' else config.shortlist} "
        f"verify={config.verify} budget_s={config.local_budget_s} "
        f"background_weight={config.local.background_weight}; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    if method == "local" and rankings:
        print(
            f"local ranking: {sum(r['checked'] for r in rankings)} of "
            f"{sum(r['candidates'] for r in rankings)} candidates compared, "
            f"{sum(r['partial'] for r in rankings)} photos partial"
        )
    return records


def catalog_items(args: argparse.Namespace, queries) -> frozenset[str] | None:
    """The items of a ``--catalog-size`` catalog: the queries' own, then seeded others."""
    if args.catalog_size is None:
        return None
    every = sorted({image.item_id for image in scan_catalog(args.dataset / "catalog")})
    own = {q.item_id for q in queries if q.item_id is not None} & set(every)
    others = [i for i in every if i not in own]
    random.Random(args.seed).shuffle(others)
    return frozenset(own | set(others[: max(0, args.catalog_size - len(own))]))


if __name__ == "__main__":
    raise SystemExit(main())
