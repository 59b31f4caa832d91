"""Pictures of a run: the map as a PNG (clusters coloured, outliers marked) and contact sheets
(per cluster: the images nearest its centre and a random few; one of the top outliers)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from analytics.data import AnalyticsResult

ImageReader = Callable[[str], "np.ndarray | None"]  # path -> uint8 (H, W, 3) RGB, or None


def draw_map_png(result: AnalyticsResult, path: Path, max_points: int = 50_000) -> Path:
    """The map, at most ``max_points`` dots (a seeded sample), outliers as black crosses."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    n = len(result.paths)
    rows = np.arange(n)
    if n > max_points:
        rows = np.sort(np.random.default_rng(0).choice(n, max_points, replace=False))
    fig = Figure(figsize=(8, 8), dpi=100)
    ax = fig.add_subplot()
    xy, c, o = result.xy[rows], result.cluster[rows], result.outlier[rows]
    size = 8 if len(rows) < 5000 else 2
    noise = c < 0
    ax.scatter(xy[noise, 0], xy[noise, 1], s=size, c="lightgrey", label="noise")
    ax.scatter(
        xy[~noise, 0], xy[~noise, 1], s=size, c=c[~noise] % 20, cmap="tab20", vmin=0, vmax=19
    )
    ax.scatter(xy[o, 0], xy[o, 1], s=30, marker="x", c="black", linewidths=1, label="outlier")
    k = int(result.metrics.get("clusters", 0))
    for cl in range(min(k, 60)):
        members = xy[c == cl]
        if len(members):
            mx, my = np.median(members, axis=0)
            ax.text(mx, my, str(cl), fontsize=9, weight="bold", ha="center", va="center")
    ax.set_title(f"{n} images, {k} clusters, {int(result.outlier.sum())} outliers")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path


def thumbnail(image: np.ndarray, side: int) -> Image.Image:
    """A square thumbnail (letterboxed) of an RGB image."""
    im = Image.fromarray(image)
    im.thumbnail((side, side))
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    canvas.paste(im, ((side - im.width) // 2, (side - im.height) // 2))
    return canvas


def contact_sheet(
    paths: list[str], read: ImageReader, title: str, side: int = 128, columns: int = 6
) -> Image.Image | None:
    """A grid of thumbnails with a title line; None when no image could be read."""
    tiles = []
    for p in paths:
        image = read(p)
        if image is not None:
            tiles.append((p, thumbnail(image, side)))
    if not tiles:
        return None
    rows = (len(tiles) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * side, rows * (side + 14) + 20), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 4), title, fill=(0, 0, 0))
    for i, (p, tile) in enumerate(tiles):
        x, y = (i % columns) * side, 20 + (i // columns) * (side + 14)
        sheet.paste(tile, (x, y))
        draw.text((x + 2, y + side), Path(p).name[: side // 7], fill=(60, 60, 60))
    return sheet


def write_sheets(
    result: AnalyticsResult,
    read: ImageReader,
    out: Path,
    nearest: int = 8,
    random: int = 4,
    top_outliers: int = 24,
    max_clusters: int = 100,
) -> list[Path]:
    """``sheets/cluster_<c>.jpg`` (the ``nearest`` images closest to the centre, then
    ``random`` others) and ``sheets/outliers.jpg``; returns the files written."""
    folder = out / "sheets"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    written = []
    k = int(result.metrics.get("clusters", 0))
    for c in range(min(k, max_clusters)):
        members = np.flatnonzero(result.cluster == c)
        if not len(members):
            continue
        order = members[np.argsort(result.centre_rank[members])]
        picks = list(order[:nearest])
        others = order[nearest:]
        if len(others):
            picks += list(rng.choice(others, size=min(random, len(others)), replace=False))
        title = f"cluster {c}: {len(members)} images (first {min(nearest, len(members))} nearest"
        sheet = contact_sheet([result.paths[i] for i in picks], read, title + " the centre)")
        if sheet is not None:
            sheet.save(folder / f"cluster_{c}.jpg", quality=85)
            written.append(folder / f"cluster_{c}.jpg")
    top = np.argsort(-result.outlier_score)[:top_outliers]
    top = [i for i in top if result.outlier[i]] or list(top[: min(6, len(top))])
    sheet = contact_sheet(
        [result.paths[i] for i in top], read, f"top outliers ({int(result.outlier.sum())} in all)"
    )
    if sheet is not None:
        sheet.save(folder / "outliers.jpg", quality=85)
        written.append(folder / "outliers.jpg")
    return written
