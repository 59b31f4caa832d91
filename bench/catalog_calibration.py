"""A catalog's own calibration on a dev set, and what it changes on the set's query photos.

    python -m bench.catalog_calibration ../shared/data/grocery --kind animals \\
        --pairs out/pairs-grocery-animals.json --apply out/grocery-animals.json
    python -m bench.catalog_calibration ../shared/data/grocery --kind animals \\
        --refit out/pairs-grocery-animals.json --apply out/grocery-animals.json   # no models

Scores the set's catalog against itself (`matching.calibration.pairs.collect_pairs`: each
sampled catalog image as a query with its item left out, and with it in), fits the catalog's
calibration over the kind's (`fit_adjustment`), prints it (threshold, pairs, worst
look-alikes) and, with ``--apply DUMP`` (a ``bench.accuracy --json`` dump of the same set and
kind), the dump's figures with the kind's calibration and with the catalog's: recall@1/5,
confirm precision and recall, open-set false confirms (with their Wilson intervals, z=1) and
ECE, next to the ECE a perfectly calibrated score would measure on as few photos
(`bench.metrics.ece_noise_floor`). ``--pairs`` writes the pair records; ``--refit`` reads them
instead of running the models (seconds: try other ``--max-stranger`` or ``--stranger-share``
values). Ranked lists are never cut: recall@K changes only where the adjustment reorders
nothing (a monotone map of each catalog's logit), i.e. not at all.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from bench.calibrate import rescore
from bench.metrics import ece_noise_floor, summarize, top_answers
from core import cli
from core.kinds import KINDS
from core.stats import wilson_interval
from matching.calibration.fit import fit_adjustment
from matching.calibration.pair_record import records_from_json, records_to_json
from matching.calibration.pairs import CatalogImage, collect_pairs
from matching.calibration.record import CatalogCalibration, FitOptions
from matching.score import load_calibrations


def folder_images(pipeline, folder: Path, kind: str) -> list[CatalogImage]:
    """The images of a folder catalog (described with the disk cache of `folder_catalog`)."""
    from core.images import read_image
    from matching.folder_catalog import describe_folder, scan_catalog

    images = scan_catalog(folder)
    refs = describe_folder(pipeline, images, kind=kind)
    return [
        CatalogImage(
            image.item_id,
            image.image_id,
            refs[image.image_id].vectors,
            list(refs[image.image_id].tags),
            refs[image.image_id].features,
            (lambda path=image.path: read_image(path)),
        )
        for image in images
        if image.image_id in refs
    ]


def folder_digest(folder: Path, kind: str) -> str:
    """A content digest of a folder catalog (its kind and files)."""
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    return hashlib.sha256(json.dumps([kind, names]).encode()).hexdigest()[:16]


def figures(records: list[dict]) -> dict[str, float]:
    """`summarize` plus Wilson intervals (z=1) of confirm precision and open-set confirms."""
    m = summarize(records)
    right = round(m["confirm_precision"] * m["confirmed"]) if m["confirmed"] else 0
    m["precision_lo"], m["precision_hi"] = wilson_interval(right, int(m["confirmed"]), 1.0)
    opened = round(m["open_set_false_confirm"] * m["open"]) if m["open"] else 0
    m["open_lo"], m["open_hi"] = wilson_interval(opened, int(m["open"]), 1.0)
    scores, right = top_answers(records)
    m["ece_floor"] = ece_noise_floor(scores)
    # the log-loss of the top answers: a proper score of the probabilities (ECE's bins are
    # noisy on a few hundred photos)
    p = np.clip(scores, 1e-6, 1 - 1e-6)
    m["log_loss"] = float(-np.mean(np.where(right, np.log(p), np.log1p(-p)))) if len(p) else 0.0
    return m


def _row(name: str, m: dict[str, float]) -> str:
    return (
        f"{name:<14} r@1={m['recall@1']:.3f} r@5={m['recall@5']:.3f} "
        f"confirmed={int(m['confirmed'])} precision={m['confirm_precision']:.3f} "
        f"[{m['precision_lo']:.3f}, {m['precision_hi']:.3f}] "
        f"confirm_recall={m['confirm_recall']:.3f} open_fc={m['open_set_false_confirm']:.3f} "
        f"[{m['open_lo']:.3f}, {m['open_hi']:.3f}] (of {int(m['open'])}) ece={m['ece']:.3f} "
        f"(a calibrated score would measure {m['ece_floor']:.3f} here) "
        f"queries={int(m['queries'])}"
    )


def print_calibration(cal: CatalogCalibration) -> None:
    """The fitted calibration in a few lines."""
    print(
        f"catalog calibration: {cal.status} scale={cal.scale} offset={cal.offset} "
        f"threshold={cal.threshold} genuine={cal.genuine} impostors={cal.impostors} "
        f"{cal.reason}"
    )
    if cal.metrics:
        print("  on its own pairs: " + " ".join(f"{k}={v}" for k, v in cal.metrics.items()))
    for pair in cal.look_alikes[:5]:
        print(
            f"  look-alike: {pair['item']} vs {pair['looks_like']} score={pair['score']} "
            f"similarity={pair['similarity']} inliers={pair['inliers']}"
        )


@cli.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.catalog_calibration",
        description=__doc__.split("\n")[0],
        epilog=cli.epilog(),
    )
    parser.add_argument("dataset", type=Path, help="a set in the data layout (catalog/, queries/)")
    parser.add_argument("--kind", choices=KINDS, default="products")
    parser.add_argument("--max-queries", type=int, default=FitOptions.max_queries)
    parser.add_argument("--max-stranger", type=float, default=FitOptions.max_stranger)
    parser.add_argument("--bound-z", type=float, default=FitOptions.bound_z)
    parser.add_argument("--stranger-share", type=float, default=FitOptions.stranger_share)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pairs", type=Path, default=None, help="write the pair records here")
    parser.add_argument("--refit", type=Path, default=None, help="read pair records (no models)")
    parser.add_argument("--apply", type=Path, default=None, help="a bench.accuracy --json dump")
    parser.add_argument("--csv", type=Path, default=None, help="append the --apply rows here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    options = FitOptions(
        max_queries=args.max_queries,
        max_stranger=args.max_stranger,
        bound_z=args.bound_z,
        stranger_share=args.stranger_share,
        seed=args.seed,
    )
    from core.settings import get_settings

    settings = get_settings()
    base = load_calibrations(settings.calibration_file)[args.kind]
    digest = folder_digest(args.dataset / "catalog", args.kind)
    if args.refit:
        records = records_from_json(json.loads(args.refit.read_text())["records"])
    else:
        from matching.engine import load_pipeline

        pipeline = load_pipeline(settings)
        images = folder_images(pipeline, args.dataset / "catalog", args.kind)
        records = collect_pairs(pipeline, images, args.kind, options, progress=True)
        if args.pairs:
            args.pairs.parent.mkdir(parents=True, exist_ok=True)
            body = {"dataset": str(args.dataset), "records": records_to_json(records)}
            args.pairs.write_text(json.dumps(body))
    cal = fit_adjustment(records, base, args.kind, digest, options)
    print(f"{args.dataset.name} as {args.kind}: {len(records)} pair records")
    print_calibration(cal)
    if args.apply:
        dump = json.loads(args.apply.read_text())["records"]
        rows = {"kind_default": figures(rescore(dump, base))}
        if cal.status == "fitted":
            rows["catalog"] = figures(rescore(dump, cal.apply(base)))
        for name, m in rows.items():
            print(_row(name, m))
        if args.csv:
            new = not args.csv.is_file()
            with args.csv.open("a", newline="") as f:
                writer = csv.writer(f)
                if new:
                    writer.writerow(
                        ["set", "kind", "calibration", "threshold", *rows["kind_default"]]
                    )  # noqa: E501
                for name, m in rows.items():
                    t = base.threshold if name == "kind_default" else cal.threshold
                    writer.writerow([args.dataset.name, args.kind, name, t, *m.values()])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
