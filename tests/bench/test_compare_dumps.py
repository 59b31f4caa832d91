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


def candidate(item: str, score: float, verified: bool) -> dict:
    return {
        "item_id": item,
        "similarity": score,
        "inliers": 0,
        "score": score,
        "verified": verified,
    }


def test_within_judges_the_accuracy_not_identity(tmp_path: Path, capsys) -> None:
    """Another runtime moves scores by rounding: --within passes when recall@1, recall@5 and
    confirm precision hold within the points given, and fails (1) when one moves more."""
    photos = [
        {"path": f"q/{i}.jpg", "true": "a", "group": "", "crops": [[candidate("a", 0.9, True)]]}
        for i in range(4)
    ]
    before = dump(tmp_path / "before.json", photos)
    rounded = json.loads(json.dumps(photos))
    rounded[0]["crops"][0][0]["score"] = 0.9000001
    after = dump(tmp_path / "after.json", rounded)
    assert main([str(before), str(after)]) == 1  # not identical ...
    capsys.readouterr()
    assert main([str(before), str(after), "--within", "1"]) == 0  # ... but the accuracy holds
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.endswith("r1_delta=+0.0 r5_delta=+0.0 precision_delta=+0.0 within=1 holds=true")
    assert "differ=1 top1_changed=0" in last
    # one photo's top item wrong (and confirmed): recall@1 -25 points, precision -25 points
    wrong = json.loads(json.dumps(photos))
    wrong[1]["crops"][0] = [candidate("b", 0.95, True), candidate("a", 0.9, False)]
    assert main([str(before), str(dump(tmp_path / "w.json", wrong)), "--within", "1"]) == 1
    out = capsys.readouterr().out
    assert "top1_changed=1 r1_delta=-25.0 r5_delta=+0.0 precision_delta=-25.0" in out
    assert out.strip().endswith("holds=false")
    # a time-boxed run (bench.accuracy --first) compares on the photos it ran
    short = dump(tmp_path / "short.json", rounded[:2])
    assert main([str(before), str(short), "--within", "1"]) == 2
    assert main([str(before), str(short), "--within", "1", "--common"]) == 0
    assert "photos=2 " in capsys.readouterr().out
