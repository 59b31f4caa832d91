"""``clusters.csv`` (and ``clusters.parquet`` for large runs), ``metrics.json``,
``duplicates.csv``, ``confused_items.csv``: the one serialiser of an `AnalyticsResult`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from analytics.data import AnalyticsResult

PARQUET_FROM = 100_000  # images from which clusters.parquet is written too


def write_tables(result: AnalyticsResult, out: Path, parquet: bool | None = None) -> list[Path]:
    """Write the tables into ``out``; returns the files written.

    ``clusters.csv`` columns: ``path, cluster, outlier, outlier_score, x, y`` (+ ``item``
    when known, + ``quality``, the pixel flags, when the run had the images). ``parquet``
    None = from `PARQUET_FROM` images on.
    """
    out.mkdir(parents=True, exist_ok=True)
    written = []
    csv_path = out / "clusters.csv"
    header = ["path", "cluster", "outlier", "outlier_score", "x", "y"]
    if result.items is not None:
        header.append("item")
    if result.quality is not None:
        header.append("quality")
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i, path in enumerate(result.paths):
            row = [
                path,
                int(result.cluster[i]),
                int(bool(result.outlier[i])),
                f"{float(result.outlier_score[i]):.4f}",
                f"{float(result.xy[i, 0]):.5f}",
                f"{float(result.xy[i, 1]):.5f}",
            ]
            if result.items is not None:
                row.append(result.items[i])
            if result.quality is not None:
                row.append(result.quality[i])
            w.writerow(row)
    written.append(csv_path)
    if parquet or (parquet is None and len(result.paths) >= PARQUET_FROM):
        import pandas as pd

        frame = pd.DataFrame(
            {
                "path": result.paths,
                "cluster": result.cluster,
                "outlier": result.outlier,
                "outlier_score": result.outlier_score,
                "x": result.xy[:, 0],
                "y": result.xy[:, 1],
            }
        )
        if result.items is not None:
            frame["item"] = result.items
        if result.quality is not None:
            frame["quality"] = result.quality
        frame.to_parquet(out / "clusters.parquet", index=False)
        written.append(out / "clusters.parquet")
    with open(out / "duplicates.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path_a", "path_b", "similarity"])
        w.writerows(result.duplicates)
    written.append(out / "duplicates.csv")
    if result.items is not None:
        with open(out / "confused_items.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["item_a", "item_b", "images", "max_similarity"])
            w.writerows(result.confused)
        written.append(out / "confused_items.csv")
    metrics = dict(result.metrics) | {"seconds": result.timings}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    written.append(out / "metrics.json")
    return written
