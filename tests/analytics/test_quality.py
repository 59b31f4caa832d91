"""Quality flags on real shelf photos degraded in known ways (and left untouched)."""

from __future__ import annotations

import cv2
import pytest

from analytics.quality import assess, duplicate_flags
from bench.analytics_quality import degrade
from core.images import read_image
from tests.conftest import DATA

PHOTO = sorted((DATA / "grocery" / "queries" / "Oatly-Natural-Oatghurt").iterdir())[0]


@pytest.mark.parametrize(
    ("how", "flag"),
    [
        ("dark", "dark"),
        ("glare", "over_exposed"),
        ("blur", "blurry"),
        ("flat", "low_information"),
        ("strip", "odd_size"),
        ("grey", "greyscale"),
    ],
)
def test_each_degradation_raises_its_flag(how: str, flag: str) -> None:
    image = read_image(PHOTO)
    assert assess(image).flags == []  # the untouched photo is clean
    assert flag in assess(degrade(image, how)).flags


def test_exact_and_near_duplicates() -> None:
    a = read_image(PHOTO)
    other = read_image(sorted((DATA / "grocery" / "queries" / "Banana").iterdir())[0])
    near = cv2.resize(a, (a.shape[1] // 2, a.shape[0] // 2))  # same photo, smaller
    reports = [assess(x) for x in (a, other, a.copy(), near)]
    pairs = duplicate_flags(reports)
    assert (0, 2, "exact_duplicate") in pairs
    assert (0, 3, "near_duplicate") in pairs
    assert not any(1 in (i, j) for i, j, _ in pairs)
