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
import time
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
from matching.pipeline import Pipeline, PipelineConfig
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


def run_query(pipeline: Pipeline, catalog, path: Path, config: PipelineConfig) -> list[list[dict]]:
    """Every crop's candidates of one photo, as plain dicts."""
    result = pipeline.match_frames([read_image(path)], catalog, config)[0]
    return benchmark_candidates(result.matches)


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
    args = parser.parse_args(argv)
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
    pipeline = load_pipeline(settings)
    catalog = load_folder_catalog(pipeline, args.dataset / "catalog", kind=args.kind)
    groups = load_groups(args.dataset)
    if args.open_set:
        queries = [q for q in queries if q.item_id is None]
    queries = sample_queries(queries, args.limit, args.seed)
    queries = [q for q in queries if args.split == "all" or half_of(str(q.path)) == args.split]
    unseen = unseen_items(args)
    if unseen is not None:
        queries = [q for q in queries if q.item_id in unseen]
    config = PipelineConfig.from_settings(settings, top_k=20, verify=not args.no_verify)

    records, failed, start = [], 0, time.perf_counter()
    for query in tqdm(queries, desc="queries", unit="photo"):
        try:
            crops = run_query(pipeline, catalog, query.path, config)
        except SightingError as exc:
            logging.warning("query %s failed: %s", query.path, exc)
            failed += 1
            crops = []
        group = NONE if query.item_id is None else groups.get(query.item_id, "")
        records.append(
            {"path": str(query.path), "true": query.item_id, "group": group, "crops": crops}
        )
    elapsed = time.perf_counter() - start
    print(
        f"\n{args.dataset.name}: {len(catalog.index.items)} items, "
        f"{len(catalog.index)} vectors; {len(records)} queries ({failed} failed) in "
        f"{elapsed:.0f} s ({1000 * elapsed / max(1, len(records)):.0f} ms/query); "
        f"sample: {'all' if args.limit is None else f'{args.limit}, seed {args.seed}'}"
    )
    print(describe(settings) + f"; shortlist={config.shortlist} verify={config.verify}")
    return records


if __name__ == "__main__":
    raise SystemExit(main())
