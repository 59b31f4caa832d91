"""The pictures of a card are named so that any card file name is a valid job file name: a
file named like HTML, with accents or spaces, or two that clash, once failed the whole batch
at its last step."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from jobs.records import check_file_name
from traps.pictures import PICTURE_INDEX, picture_name, write_pictures

XSS = "<img src=x onerror=alert(1)>"


def test_picture_names_are_job_file_names() -> None:
    taken: set[str] = set()
    names = [
        picture_name(f, taken)
        for f in (
            f"DCIM/{XSS}.jpg",
            "DCIM/Kamera Ä 1.JPG",
            "DCIM/a b.jpg",
            "DCIM/a_b.jpg",
            ".x.jpg",
        )
    ]
    assert names[0] == "photos/DCIM___img_src_x_onerror_alert_1__.jpg"
    assert names[2:4] == ["photos/DCIM__a_b.jpg", "photos/DCIM__a_b-2.jpg"]  # a clash: -2
    assert len(set(names)) == len(names)
    for name in names + [picture_name("x" * 300 + ".jpg", taken)]:
        assert check_file_name(name) == name


def test_write_pictures_lists_each_photo_in_the_index(tmp_path: Path) -> None:
    image = np.full((60, 80, 3), 128, np.uint8)
    records = [
        {
            "file": f"DCIM/{XSS}.jpg",
            "animal_present": True,
            "confidence": 0.9,
            "night": False,
            "detections": [
                {
                    "box": [5, 5, 40, 40],
                    "class": "dog",
                    "confidence": 0.9,
                    "labels": None,
                    "matches": [],
                }
            ],
            "labels": None,
            "error": None,
        },
        {
            "file": "DCIM/empty.jpg",
            "animal_present": False,
            "confidence": 0.1,
            "night": False,
            "detections": [],
            "labels": None,
            "error": None,
        },
    ]
    written = write_pictures(records, lambda _f: image, tmp_path)
    for name in written:
        assert check_file_name(name) == name and (tmp_path / name).is_file()
    index = json.loads((tmp_path / PICTURE_INDEX).read_text())
    assert index == {f"DCIM/{XSS}.jpg": "photos/DCIM___img_src_x_onerror_alert_1__.jpg"}
