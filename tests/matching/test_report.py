"""The frame result (`matching.result`) and its one serialiser (`matching.report`): every wire
shape written out in full, as clients read it (no models)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.errors import InternalError
from detection.detections import Detections, object_array
from matching import report
from matching.result import FrameResult, Match, Ranking


def match(item: str, score: float, *, checked: bool = False, verified: bool = False) -> Match:
    return Match(
        item_id=item,
        image_id=f"{item}/a.jpg",
        similarity=0.812345,
        inliers=42 if checked else 0,
        spread=0.3,
        checked=checked,
        verified=verified,
        score=score,
    )


def detections(tracker_id=None) -> Detections:
    return Detections(
        xyxy=np.array([[10.04, 20.0, 110.06, 220.5], [0, 0, 5, 5]], dtype=np.float32),
        confidence=np.array([0.912345, 0.3], dtype=np.float32),
        class_id=np.array([39, 0]),
        data={"class_name": object_array(["bottle", "person"])},
        tracker_id=tracker_id,
    )


MATCHES = [[match("milk", 0.951234, checked=True, verified=True), match("oat", 0.2)], []]
MILK = {
    "item_id": "milk",
    "image_id": "milk/a.jpg",
    "similarity": 0.8123,
    "inliers": 42,
    "verified": True,
    "score": 0.9512,
}
OAT = MILK | {"item_id": "oat", "image_id": "oat/a.jpg", "inliers": 0, "verified": False}
OAT["score"] = 0.2


def test_frame_result_checks_rows_and_derives_verified_now() -> None:
    result = FrameResult(detections(), MATCHES, {"detect": 0.01})
    assert result.verified_now.tolist() == [True, False]  # from Match.checked
    assert result.verify_calls == 1 and not result.tracked
    assert result.track_ids.tolist() == [-1, -1]
    assert result.best(0).item_id == "milk" and result.best(1) is None
    with pytest.raises(InternalError, match="2 detections but 1 match lists"):
        FrameResult(detections(), MATCHES[:1])
    with pytest.raises(InternalError, match="verified_now"):
        FrameResult(detections(), MATCHES, verified_now=np.zeros(3, bool))
    with pytest.raises(InternalError, match="tracker_id"):
        detections(tracker_id=[1, 2, 3])
    tracked = detections(tracker_id=[4, -1])
    assert tracked[np.array([False, True])].tracker_id.tolist() == [-1]  # selection keeps ids
    merged = Detections.merge([tracked, tracked])
    assert merged.tracker_id.tolist() == [4, -1, 4, -1]
    assert Detections.merge([tracked, detections()]).tracker_id is None


def test_detect_frame_json() -> None:
    result = FrameResult(detections(), MATCHES, {"decode": 0.00123, "detect": 0.1})
    body = report.frame_to_dict(result)
    assert body == {
        "detections": [
            {
                "box": [10.0, 20.0, 110.1, 220.5],
                "class": "bottle",
                "confidence": 0.9123,
                "matches": [MILK, OAT],
            },
            {"box": [0.0, 0.0, 5.0, 5.0], "class": "person", "confidence": 0.3, "matches": []},
        ],
        "timings": {"decode": 1.2, "detect": 100.0},
    }
    assert list(body["detections"][0]) == ["box", "class", "confidence", "matches"]


def test_stream_frame_json_adds_track_fields_in_order() -> None:
    result = FrameResult(detections([7, -1]), MATCHES, {"track": 0.002}, np.array([False, True]))
    body = report.stream_frame_to_dict(result, "cam1", 12)
    assert list(body) == ["stream_id", "frame_index", "detections", "timings"]
    first, second = body["detections"]
    assert list(first) == ["track_id", "box", "class", "confidence", "matches", "verified_now"]
    assert first["track_id"] == 7 and first["verified_now"] is False  # explicit, not derived
    assert second["track_id"] is None and second["verified_now"] is True
    assert body["timings"] == {"track": 2.0}


def test_search_json_ranks_items_over_detections() -> None:
    other = [[match("oat", 0.5)], [match("milk", 0.1), match("oat", 0.3)]]
    result = FrameResult(detections(), other, {"search": 0.0004})
    ranked = result.ranked_items(top_k=5)
    assert [(m.item_id, m.score) for m in ranked] == [("oat", 0.5), ("milk", 0.1)]
    assert result.ranked_items(top_k=1) == ranked[:1]
    body = report.search_to_dict(ranked, result.timings)
    assert body["timings"] == {"search": 0.4} and body["matches"][0]["item_id"] == "oat"
    assert "ranking" not in body
    local = report.search_to_dict(ranked, result.timings, Ranking("local", 40, 25, True))
    assert local["ranking"] == {"method": "local", "candidates": 40, "checked": 25, "partial": True}
    assert result.ranking == Ranking("embedding", 0, 0, False)  # the default


def test_video_lines_and_summary() -> None:
    result = FrameResult(detections([7, -1]), MATCHES, {}, np.array([True, False]))
    lines = list(report.video_lines(result, frame=31, fps=30.0))
    assert [json.dumps(line) for line in lines] == [
        '{"frame": 31, "time": 1.033, "track": 7, "box": [10.0, 20.0, 110.1, 220.5], '
        '"class": "bottle", "item": "milk", "score": 0.9512, "verified": true, '
        '"verified_now": true}',
        '{"frame": 31, "time": 1.033, "track": null, "box": [0.0, 0.0, 5.0, 5.0], '
        '"class": "person", "item": null, "score": null, "verified": false, '
        '"verified_now": false}',
    ]
    summary = report.video_summary(
        frames=4, seconds=2.0, verify_calls=3, stages={"detect": 0.5}, video_fps=29.97
    )
    assert summary == {
        "summary": {
            "frames": 4,
            "fps": 2.0,
            "video_fps": 29.97,
            "verify_calls": 3,
            "verify_per_frame": 0.75,
            "seconds": 2.0,
            "stages_ms": {"detect": 500.0},
        }
    }


def test_client_rows_read_a_stream_answer() -> None:
    """The stream client's flat row, from the answer as it arrives: boxes back in source
    pixels (clipped), the best-scored match whatever the order, fields as on the wire."""
    answer = {
        "detections": [
            {
                "track_id": 7,
                "box": [5.0, 5.0, 20.0, 15.0],
                "class": "bottle",
                "confidence": 0.9,
                "matches": [{**OAT, "score": 0.2}, MILK],
                "verified_now": True,
            },
            {"track_id": None, "box": [30.0, 1.0, 40.0, 30.0], "class": "cup", "matches": []},
        ]
    }
    rows = report.client_rows(answer, frame=3, time_s=0.15, scale=0.5, size=(64, 48))
    assert [json.dumps(row) for row in rows] == [
        '{"frame_index": 3, "time_s": 0.15, "track_id": 7, "box": [10.0, 10.0, 40.0, 30.0], '
        '"class": "bottle", "confidence": 0.9, "item": "milk", "score": 0.9512, '
        '"verified": true, "verified_now": true}',
        '{"frame_index": 3, "time_s": 0.15, "track_id": null, "box": [60.0, 2.0, 64.0, 48.0], '
        '"class": "cup", "confidence": null, "item": null, "score": null, "verified": false, '
        '"verified_now": false}',
    ]


def test_match_round_trip() -> None:
    m = match("milk", 0.951234, checked=True, verified=True)
    back = report.match_from_dict(report.match_to_dict(m))
    assert (back.item_id, back.image_id, back.inliers, back.verified) == (
        "milk",
        "milk/a.jpg",
        42,
        True,
    )
    assert back.score == 0.9512 and back.similarity == 0.8123


def test_metrics_count_the_typed_result() -> None:
    from api.metrics import MATCHES as COUNTER
    from api.metrics import count_matches

    before = {v: COUNTER.labels(v)._value.get() for v in ("true", "false")}
    count_matches(FrameResult(detections(), MATCHES))
    after = {v: COUNTER.labels(v)._value.get() for v in ("true", "false")}
    assert after["true"] - before["true"] == 1 and after["false"] - before["false"] == 1
