"""Precision and recall of each quality flag on real grocery photos degraded in known ways.

    python -m bench.analytics_quality [--photos 100] [--cleanvision]
    python -m bench.analytics_quality --outliers [--photos 200] [--per-way 5]

Each photo is scored untouched and in six degraded versions (dark, glare, blur, flat, strip,
grey); a flag's precision is the share of images it flags that were degraded that way, its
recall the share of those degraded images it flags. Last, the flags on the grocery catalog's
own photos (untouched product shots on white: every flag there is a false alarm).

``--cleanvision`` scores the same images with CleanVision (`pip install -r
requirements-bench.txt`; its ``Imagelab`` on the images written as PNG to a temporary
folder, its default thresholds) and prints its rows next to ours, with the seconds each took.
CleanVision's flags are relative to the collection it sees (an odd size is odd against the
others), ours are absolute (one upload is judged alone).

``--outliers`` asks the other question, the seeds' one (glare, empty or broken images among
good ones): ``--photos`` untouched photos and ``--per-way`` other photos degraded each way,
embedded with the products model (`analytics.sources.embed_folder`) and run through the
default analytics (`analytics.pipeline.run`): the outlier flag's recall per way and its
precision (flagged images that are degraded).
"""

from __future__ import annotations

import argparse
import tempfile
import time
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
#: Our flag -> the CleanVision issue types that mean it.
CLEANVISION = {
    "dark": ("dark",),
    "over_exposed": ("light",),
    "blurry": ("blurry",),
    "low_information": ("low_information",),
    "odd_size": ("odd_size", "odd_aspect_ratio"),
    "greyscale": ("grayscale",),
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


def cleanvision_flags(images: list[np.ndarray]) -> list[set[str]]:
    """Each image's flags as CleanVision finds them, in our names (`CLEANVISION`)."""
    from cleanvision import Imagelab

    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i, image in enumerate(images):
            path = Path(folder) / f"{i:05d}.png"
            cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            paths.append(str(path))
        lab = Imagelab(filepaths=paths, verbose=False)
        kinds = sorted({k for ks in CLEANVISION.values() for k in ks})
        lab.find_issues({k: {} for k in kinds}, n_jobs=1, verbose=False)
        issues = lab.issues
    return [
        {
            ours
            for ours, theirs in CLEANVISION.items()
            if any(bool(issues.loc[path, f"is_{k}_issue"]) for k in theirs)
        }
        for path in paths
    ]


def print_rows(name: str, truth: list[str | None], got: list[set[str]], photos: int) -> None:
    """One CSV row per flag: who, flag, precision, recall, flagged, degraded."""
    for flag in WAYS.values():
        flagged = [i for i, g in enumerate(got) if flag in g]
        degraded = [i for i, t in enumerate(truth) if t == flag]
        tp = sum(truth[i] == flag for i in flagged)
        prec = tp / len(flagged) if flagged else float("nan")
        print(f"{name},{flag},{prec:.3f},{tp / len(degraded):.3f},{len(flagged)},{len(degraded)}")
    clean = sum(1 for t, g in zip(truth, got, strict=True) if t is None and not g)
    print(f"{name}: untouched photos with no flag: {clean}/{photos}")


def outlier_figures(paths: list[Path], per_way: int, photos: int) -> None:
    """Untouched and degraded photos through the default analytics run; print the outlier
    flag's precision and its recall per way."""
    from analytics.pipeline import AnalyticsConfig, run
    from analytics.sources import embed_folder
    from analytics.steps.outliers import METHODS
    from core.settings import get_settings

    truth: dict[str, str | None] = {}
    with tempfile.TemporaryDirectory() as folder:
        ways = ["none"] * photos + [how for how in WAYS for _ in range(per_way)]
        for i, (path, how) in enumerate(zip(paths, ways, strict=False)):
            name = f"{how}/{i:05d}.png"
            (Path(folder) / how).mkdir(exist_ok=True)
            image = degrade(read_image(path), how)
            cv2.imwrite(str(Path(folder) / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            truth[name] = None if how == "none" else how
        with tempfile.TemporaryDirectory() as cache:
            data = embed_folder(Path(folder), get_settings(), "products", cache_dir=Path(cache))
    degraded = {p for p, t in truth.items() if t}
    print("method,way,degraded,flagged_as_outliers,recall")
    for method in METHODS:
        result = run(data, AnalyticsConfig(outlier_method=method))
        flagged = {p for p, o in zip(data.paths, result.outlier, strict=True) if o}
        for how in WAYS:
            mine = {p for p in degraded if truth[p] == how}
            hit = len(mine & flagged)
            print(f"{method},{how},{len(mine)},{hit},{hit / len(mine):.3f}")
        right = len(flagged & degraded)
        default = " (default)" if method == AnalyticsConfig().outlier_method else ""
        print(
            f"{method}{default}: {len(flagged)} flagged of {len(truth)} ({len(degraded)} "
            f"degraded): precision={right / max(1, len(flagged)):.3f} "
            f"recall={right / len(degraded):.3f} clusters={result.metrics['clusters']}"
        )


@cli.command
def main(argv: list[str] | None = None) -> None:
    """Print one CSV row per flag: who, flag, precision, recall, flagged, degraded."""
    p = argparse.ArgumentParser(epilog=cli.EXIT_STATUS, description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", type=int, default=100)
    p.add_argument("--cleanvision", action="store_true", help="also score with CleanVision")
    p.add_argument("--outliers", action="store_true", help="the outlier flag on mixed photos")
    p.add_argument("--per-way", type=int, default=5, help="with --outliers: photos per way")
    args = p.parse_args(argv)
    paths = sorted((DATA / "grocery" / "queries").rglob("*.jpg"))
    if args.outliers:
        count = args.photos + args.per_way * len(WAYS)
        chosen = np.random.default_rng(0).choice(len(paths), count, False)
        outlier_figures([paths[i] for i in chosen], args.per_way, args.photos)
        return
    paths = [paths[i] for i in np.random.default_rng(0).choice(len(paths), args.photos, False)]
    truth, images = [], []
    for path in paths:
        image = read_image(path)
        for how in ("none", *WAYS):
            truth.append(WAYS.get(how))
            images.append(degrade(image, how))
    start = time.perf_counter()
    got = [set(assess(image).flags) for image in images]
    ours = time.perf_counter() - start
    print("who,flag,precision,recall,flagged,degraded")
    print_rows("sighting", truth, got, args.photos)
    print(f"sighting: {len(images)} images in {ours:.1f} s (decoded arrays)")
    if args.cleanvision:
        start = time.perf_counter()
        theirs = cleanvision_flags(images)
        seconds = time.perf_counter() - start
        print_rows("cleanvision", truth, theirs, args.photos)
        print(f"cleanvision: {len(images)} images in {seconds:.1f} s (PNG writes included)")
    # the catalog's own ("iconic") photos: products on white backgrounds, as merchants upload
    iconic = [next(d.iterdir()) for d in sorted((DATA / "grocery" / "catalog").iterdir())]
    counts: dict[str, int] = {}
    for path in iconic:
        for flag in assess(read_image(path)).flags:
            counts[flag] = counts.get(flag, 0) + 1
    print(f"catalog (white-background) photos: {len(iconic)}, flagged: {counts}")


if __name__ == "__main__":
    main()
