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


def test_the_analytics_table_gets_each_images_flags(tmp_path) -> None:
    import numpy as np

    from analytics.data import AnalyticsResult
    from analytics.quality import add_quality
    from analytics.sources import file_reader

    photo = read_image(PHOTO)
    for name, image in (("good.png", photo), ("dark.png", degrade(photo, "dark"))):
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    paths = ["good.png", "dark.png", "gone.png"]
    zeros = np.zeros(3)
    result = AnalyticsResult(paths, zeros, zeros > 0, zeros, np.zeros((3, 2)))
    add_quality(result, file_reader(tmp_path))  # thumbnails of 256 px, as the run reads them
    assert result.quality == ["", "dark", "unreadable"]
    assert result.metrics["quality_flagged"] == 2
    # descriptors without their images: no column rather than every row "unreadable"
    blind = AnalyticsResult(paths, zeros, zeros > 0, zeros, np.zeros((3, 2)))
    add_quality(blind, file_reader(tmp_path / "elsewhere"))
    assert blind.quality is None and "quality_flagged" not in blind.metrics
