"""The README's live-video walk-through, end to end on 127.0.0.1: a real service (the app
factory served by werkzeug in a thread), a catalog item cut from the shelf clip, and the
stream client sending the clip's first frames to it over HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests
from werkzeug.serving import make_server

from api import create_app
from matching.pipeline import Pipeline
from streamclient.cli import main
from tests.conftest import offline_settings

VIDEO = Path(__file__).resolve().parents[3] / "shared" / "data" / "video"
ITEM = "campo-largo-cha-mate"
CROP = VIDEO / "coke-shelf-catalog" / ITEM / "f00021.jpg"  # frame 21, box (945,0,1138,384)
FRAMES = 10


@pytest.fixture(scope="module")
def service(pipeline: Pipeline, tmp_path_factory) -> Iterator[str]:
    """Base URL of a real service on a free loopback port, with no verification budget
    (every new track verified on its first frame, whatever this machine's speed)."""
    settings = offline_settings(
        tmp_path_factory.mktemp("e2e"),
        sync_interval_s=0.0,
        verify_budget_ms=0.0,
        async_verify=False,
    )
    server = make_server("127.0.0.1", 0, create_app(settings, pipeline=pipeline), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


def iou(a, b) -> float:
    """IoU of two x0,y0,x1,y1 boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


def test_client_tracks_and_matches_an_item_cut_from_the_clip(service: str, tmp_path: Path) -> None:
    api = f"{service}/v1"
    cid = requests.post(f"{api}/catalogs", json={"name": "shelf", "kind": "products"}).json()["id"]
    with CROP.open("rb") as f:
        r = requests.post(
            f"{api}/catalogs/{cid}/items", data={"item_id": ITEM}, files={"images": f}, timeout=60
        )
    assert r.status_code == 201, r.text
    lines, video = tmp_path / "results.jsonl", tmp_path / "annotated.mp4"
    code = main(
        [
            str(VIDEO / "coke-shelf.mp4"),
            f"--url={service}",
            f"--catalog={cid}",
            "--stream-id=shelf-1",
            f"--max-frames={FRAMES}",
            "--max-side=640",
            f"--out={lines}",
            f"--video-out={video}",
            "--quiet",
        ]
    )
    assert code == 0
    rows = [json.loads(line) for line in lines.read_text().splitlines()]
    assert {row["frame_index"] for row in rows} == set(range(FRAMES))
    # the plain Chá Mate bottle at the top right (where the crop's bottle stands 21 frames later)
    bottle = [row for row in rows if iou(row["box"], (930, 5, 1115, 400)) > 0.6]
    assert len({row["frame_index"] for row in bottle}) >= FRAMES - 2
    tracks = {row["track_id"] for row in bottle if row["track_id"] is not None}
    assert len(tracks) == 1, tracks  # one id throughout
    assert all(row["item"] == ITEM for row in bottle if row["track_id"] is not None)
    assert any(row["verified"] and row["verified_now"] for row in bottle)  # keypoints ran once
    assert sum(row["verified_now"] for row in bottle) == 1
    assert all(row["verified"] for row in bottle if row["track_id"] is not None)  # reused
    # the annotated video: every frame, boxes drawn over the source
    cap = cv2.VideoCapture(str(video))
    drawn = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        drawn.append(image)
    cap.release()
    assert len(drawn) == FRAMES
    source = cv2.VideoCapture(str(VIDEO / "coke-shelf.mp4"))
    ok, first = source.read()
    source.release()
    assert ok and drawn[0].shape == first.shape
    assert np.abs(drawn[0].astype(int) - first.astype(int)).mean() > 1.0  # boxes and labels
    # the client closed its stream on the way out
    assert requests.get(f"{api}/streams", timeout=10).json()["streams"] == []
