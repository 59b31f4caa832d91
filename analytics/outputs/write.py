"""Write every output of a run into one folder (tables first, then pictures)."""

from __future__ import annotations

from pathlib import Path

from analytics.data import AnalyticsResult
from analytics.outputs.html_map import write_html_map
from analytics.outputs.pictures import ImageReader, draw_map_png, write_sheets
from analytics.outputs.table import write_tables


def write_outputs(
    result: AnalyticsResult,
    out: Path,
    read: ImageReader | None = None,
    *,
    parquet: bool | None = None,
    sheets: bool = True,
) -> list[Path]:
    """clusters.csv (+ parquet), duplicates.csv, confused_items.csv, metrics.json, map.png,
    map.html and (with a reader) sheets/cluster_<c>.jpg + sheets/outliers.jpg."""
    out = Path(out)
    files = write_tables(result, out, parquet)
    files.append(draw_map_png(result, out / "map.png"))
    files.append(write_html_map(result, read, out / "map.html"))
    if read is not None and sheets:
        files += write_sheets(result, read, out)
    return files
