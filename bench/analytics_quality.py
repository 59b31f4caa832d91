"""Precision and recall of each quality flag on real grocery photos degraded in known ways.

    python -m bench.analytics_quality [--photos 100]

Each photo is scored untouched and in six degraded versions (dark, glare, blur, flat, strip,
grey); a flag's precision is the share of images it flags that were degraded that way, its
recall the share of those degraded images it flags. Last, the flags on the grocery catalog's
own photos (untouched product shots on white: every flag there is a false alarm).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from analytics.quality import assess
from core import cli
from core.images import read_image

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
WAYS = {
    "dark": "dark",
    "glare": "over_exposed",
    "blur": "blurry",
    "flat": "low_information",
    "strip": "odd_size",
    "grey": "greyscale",
}


def degrade(image: np.ndarray, how: str) -> np.ndarray:
    """``uint8 (H, W, 3)`` degraded one known way (``none``: unchanged)."""
    if how == "dark":
        return (image * 0.1).astype(np.uint8)
    if how == "glare":
        return np.clip(image.astype(np.int16) + 160, 0, 255).astype(np.uint8)
    if how == "blur":
        return cv2.GaussianBlur(image, (0, 0), 6)
    if how == "flat":
        return np.full_like(image, 128)
    if how == "strip":
        return image[:40]
    if how == "grey":
        return np.repeat(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    return image


@cli.command
def main(argv: list[str] | None = None) -> None:
    """Print one CSV row per flag: flag, precision, recall, flagged, degraded."""
    p = argparse.ArgumentParser(epilog=cli.EXIT_STATUS, description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", type=int, default=100)
    args = p.parse_args(argv)
    paths = sorted((DATA / "grocery" / "queries").rglob("*.jpg"))
    paths = [paths[i] for i in np.random.default_rng(0).choice(len(paths), args.photos, False)]
    truth, got = [], []
    for path in paths:
        image = read_image(path)
        for how in ("none", *WAYS):
            truth.append(WAYS.get(how))
            got.append(set(assess(degrade(image, how)).flags))
    print("flag,precision,recall,flagged,degraded")
    for flag in WAYS.values():
        flagged = [i for i, g in enumerate(got) if flag in g]
        degraded = [i for i, t in enumerate(truth) if t == flag]
        tp = sum(truth[i] == flag for i in flagged)
        prec = tp / len(flagged) if flagged else float("nan")
        print(f"{flag},{prec:.3f},{tp / len(degraded):.3f},{len(flagged)},{len(degraded)}")
    clean = sum(1 for t, g in zip(truth, got, strict=True) if t is None and not g)
    print(f"untouched photos with no flag: {clean}/{args.photos}")
    # the catalog's own ("iconic") photos: products on white backgrounds, as merchants upload
    iconic = [next(d.iterdir()) for d in sorted((DATA / "grocery" / "catalog").iterdir())]
    counts: dict[str, int] = {}
    for path in iconic:
        for flag in assess(read_image(path)).flags:
            counts[flag] = counts.get(flag, 0) + 1
    print(f"catalog (white-background) photos: {len(iconic)}, flagged: {counts}")


if __name__ == "__main__":
    main()
