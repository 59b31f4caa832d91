"""Image quality flags from the pixels: dark, over-exposed / glare, blurry, low information,
odd size or aspect, greyscale, and exact / near duplicates (a 64-bit difference hash).

Implemented with numpy and OpenCV. CleanVision was measured against them on the same degraded
photos (``bench.analytics_quality --cleanvision``, README) and not adopted: at its defaults it
missed every glare photo and every greyscale photo stored as RGB (it reads greyscale from the
file's mode), found fewer blurred ones, judges each image against the collection (an upload is
judged alone here) and took ten times as long. Thresholds are module constants; their
precision on degraded real photos is measured by bench/analytics_quality.py (README).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from analytics.data import AnalyticsResult
from core.images import long_side_size

DARK_MEAN = 40.0  # mean luminance (0-255) below which a photo is dark
BRIGHT_FRACTION = 0.35  # fraction of the centre's pixels >= 250 above which it is over-exposed
# (the centre: the middle half of each side; a product shot on a white background is bright at
# its borders, not where the product is)
BLUR_VARIANCE = 60.0  # variance of the Laplacian (at 256 px) below which it is blurry
LOW_INFO_ENTROPY = 3.5  # bits of the grey histogram below which it holds little information
MIN_SIDE = 64  # pixels: smaller is odd
MAX_ASPECT = 4.0  # longer / shorter side above which it is odd
GREY_CHROMA = 0.03  # (mean |R-G| + |G-B|) / mean luminance below which it is greyscale
NEAR_DUPLICATE_BITS = 4  # dHash Hamming distance at or below which two photos are near-duplicates


@dataclass(frozen=True)
class QualityReport:
    """The flags of one image.

    Attributes:
        flags: names of the problems found (empty = none).
        measures: the numbers behind them (mean, bright_fraction, blur, entropy, ...).
        dhash: 64-bit difference hash (near duplicates).
        digest: sha1 of the pixels (exact duplicates).
    """

    flags: list[str] = field(default_factory=list)
    measures: dict[str, float] = field(default_factory=dict)
    dhash: int = 0
    digest: str = ""


def dhash(grey: np.ndarray) -> int:
    """64-bit difference hash of a uint8 (H, W) grey image."""
    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int(sum(1 << i for i, b in enumerate(bits.tolist()) if b))


def assess(image: np.ndarray) -> QualityReport:
    """Flags of one ``uint8 (H, W, 3) RGB`` image (duplicates: see `duplicate_flags`)."""
    h, w = image.shape[:2]
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    small_h, small_w = long_side_size(h, w, 256)
    small = cv2.resize(grey, (small_w, small_h))
    mean = float(grey.mean())
    centre = grey[h // 4 : h - h // 4 or h, w // 4 : w - w // 4 or w]
    bright = float((centre >= 250).mean())
    blur = float(cv2.Laplacian(small, cv2.CV_64F).var())
    hist = np.bincount(small.ravel(), minlength=256) / small.size
    entropy = float(-(hist[hist > 0] * np.log2(hist[hist > 0])).sum())
    rgb = image.astype(np.int16)
    chroma = float(
        np.abs(rgb[..., 0] - rgb[..., 1]).mean() + np.abs(rgb[..., 1] - rgb[..., 2]).mean()
    )
    aspect = max(h, w) / max(1, min(h, w))
    flags = []
    if mean < DARK_MEAN:
        flags.append("dark")
    if bright > BRIGHT_FRACTION:
        flags.append("over_exposed")
    exposure_ok = mean >= DARK_MEAN and bright <= BRIGHT_FRACTION
    if blur < BLUR_VARIANCE and entropy >= LOW_INFO_ENTROPY and exposure_ok:
        flags.append("blurry")  # dark, glaring and flat photos also have few edges
    if entropy < LOW_INFO_ENTROPY:
        flags.append("low_information")
    if min(h, w) < MIN_SIDE or aspect > MAX_ASPECT:
        flags.append("odd_size")
    if chroma / max(mean, 1.0) < GREY_CHROMA and entropy >= LOW_INFO_ENTROPY:
        flags.append("greyscale")
    measures = {
        "mean": round(mean, 2),
        "bright_fraction": round(bright, 4),
        "blur": round(blur, 2),
        "entropy": round(entropy, 3),
        "chroma": round(chroma, 2),
        "aspect": round(aspect, 3),
    }
    digest = hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()
    return QualityReport(flags, measures, dhash(grey), digest)


def duplicate_flags(reports: list[QualityReport]) -> list[tuple[int, int, str]]:
    """Pairs (i, j, ``exact_duplicate`` | ``near_duplicate``) among the reports, i < j.

    Exact: the same pixels. Near: dHash within `NEAR_DUPLICATE_BITS` (grouped by exact hash
    first, then a pairwise popcount over at most a few thousand photos; catalogs' size).
    """
    pairs = []
    by_digest: dict[str, int] = {}
    for j, r in enumerate(reports):
        if r.digest in by_digest:
            pairs.append((by_digest[r.digest], j, "exact_duplicate"))
        else:
            by_digest[r.digest] = j
    exact = {(i, j) for i, j, _ in pairs}
    hashes = np.array([r.dhash for r in reports], dtype=np.uint64)
    for j in range(1, len(reports)):
        x = np.bitwise_xor(hashes[:j], hashes[j])
        dist = np.array([bin(int(v)).count("1") for v in x])
        for i in np.flatnonzero(dist <= NEAR_DUPLICATE_BITS).tolist():
            if (i, j) not in exact:
                pairs.append((i, j, "near_duplicate"))
    return pairs


def flag_images(
    paths: Sequence[str],
    read: Callable[[str], np.ndarray | None],
    progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Each image's flags joined by ``;`` (``""``: none; ``unreadable``: no pixels), for the
    analytics tables: embeddings put a dark, glaring or empty photo among the others (README),
    the pixels do not.

    Args:
        paths: the run's image paths.
        read: path -> uint8 (h, w, 3) RGB or None (`analytics.sources.file_reader`: a
            thumbnail of at most 256 px, the side the blur is measured at anyway).
        progress: called ``(done, total)`` every 256 images.
    """
    out = []
    for i, path in enumerate(paths):
        image = read(path)
        out.append("unreadable" if image is None else ";".join(assess(image).flags))
        if progress is not None and (i % 256 == 255 or i == len(paths) - 1):
            progress(i + 1, len(paths))
    return out


def add_quality(
    result: AnalyticsResult,
    read: Callable[[str], np.ndarray | None],
    progress: Callable[[int, int], None] | None = None,
    probe: int = 64,
) -> None:
    """Set ``result.quality`` (`flag_images`) and count the flagged images in its metrics;
    left None when none of the first ``probe`` images can be read (descriptors whose images
    are not at hand). Each image is read once."""
    first = flag_images(result.paths[:probe], read)
    if all(flags == "unreadable" for flags in first):
        return
    total = len(result.paths)
    counted = None if progress is None else (lambda d, _t: progress(len(first) + d, total))
    rest = flag_images(result.paths[probe:], read, counted)
    result.quality = first + rest
    result.metrics["quality_flagged"] = sum(1 for q in result.quality if q)
