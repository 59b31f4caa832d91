"""bench.compare_dumps: identical dumps pass, one moved inlier is found, other photos refused."""

from __future__ import annotations

import json
from pathlib import Path

from bench.compare_dumps import main

RECORD = {
    "path": "q/1.jpg",
    "true": "a",
    "group": "",
    "crops": [[{"item_id": "a", "similarity": 0.5, "inliers": 12, "score": 0.9}]],
}


def dump(path: Path, records: list[dict]) -> Path:
    path.write_text(json.dumps({"dataset": "x", "records": records}))
    return path


def test_identical_moved_and_foreign_dumps(tmp_path: Path, capsys) -> None:
    a = dump(tmp_path / "a.json", [RECORD])
    assert main([str(a), str(a)]) == 0
    assert capsys.readouterr().out.strip().endswith("photos=1 identical=1 differ=0")
    moved = json.loads(json.dumps(RECORD))
    moved["crops"][0][0]["inliers"] = 13
    b = dump(tmp_path / "b.json", [moved])
    assert main([str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "crop 0 rank 0" in out and "'inliers': 13" in out and "differ=1" in out
    other = dump(tmp_path / "c.json", [RECORD | {"path": "q/2.jpg"}])
    assert main([str(a), str(other)]) == 2
    assert main([str(a), str(tmp_path / "missing.json")]) == 2


def test_a_photo_timed_differently_is_still_identical(tmp_path: Path, capsys) -> None:
    a = dump(tmp_path / "a.json", [RECORD | {"seconds": 3.63}])
    b = dump(tmp_path / "b.json", [RECORD | {"seconds": 3.76}])
    assert main([str(a), str(b)]) == 0
    assert capsys.readouterr().out.strip().endswith("photos=1 identical=1 differ=0")
    moved = json.loads(json.dumps(RECORD | {"seconds": 3.63}))
    moved["crops"][0][0]["score"] = 0.8
    c = dump(tmp_path / "c.json", [moved])
    assert main([str(a), str(c)]) == 1
    assert "'score': 0.8" in capsys.readouterr().out
