"""``annotate=true`` on a whole video: a ``videos`` job draws the answer on every frame of the
real clip and writes ``annotated.webm`` (VP8), a job file that decodes to the input's frame
count and size, with boxes where the answer has detections and the raw frame elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

import videos.job  # noqa: F401 - registers the "videos" kind in this process (run_job below)
from api import create_app
from catalog.stores import open_store
from jobs import JobQueue
from jobs.runner import run_job
from tests.api.test_streams import clip  # noqa: F401 - the fixture: 30 frames of the real clip


def _frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        out.append(bgr.astype(np.int16))
    cap.release()
    return out


def _lines(r) -> list[dict]:
    assert r.status_code == 200, r.get_data(as_text=True)
    return [json.loads(x) for x in r.get_data(as_text=True).splitlines()]


def _outline(shape: tuple[int, ...], box: list[float]) -> np.ndarray:
    """A mask of the box's outline (2 px), where the drawing goes."""
    mask = np.zeros(shape[:2], bool)
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x2, y2 = min(x2, shape[1]) - 1, min(y2, shape[0]) - 1
    mask[y1 : y1 + 2, x1:x2] = mask[y2 - 1 : y2 + 1, x1:x2] = True
    mask[y1:y2, x1 : x1 + 2] = mask[y1:y2, x2 - 1 : x2 + 1] = True
    return mask


def test_annotated_video_is_the_jobs_file(shop, clip: Path, tmp_path: Path) -> None:  # noqa: F811
    client, cid = shop
    url = f"/v1/catalogs/{cid}/videos?stride=3&verify=false"
    plain = _lines(client.post(url, data=clip.read_bytes(), content_type="video/mp4"))
    assert "annotation_job" not in plain[-1]["summary"]  # only when asked
    lines = _lines(
        client.post(url + "&annotate=true", data=clip.read_bytes(), content_type="video/mp4")
    )
    job_id = lines[-1]["summary"]["annotation_job"]
    settings = client.application.extensions["sighting"].settings
    queue = JobQueue(settings)
    done = run_job(queue.jobs, job_id, settings=queue.settings)  # the consumer's work
    assert done is not None and done.state == "done", done
    raw = _frames(clip)
    assert done.result["frames"] == len(raw) == 30
    r = client.get(f"/v1/jobs/{job_id}/files/annotated.webm")
    assert r.status_code == 200 and r.data[:4] == b"\x1a\x45\xdf\xa3"  # a WebM (EBML) file
    saved = tmp_path / "annotated.webm"
    saved.write_bytes(r.data)
    annotated = _frames(saved)
    assert len(annotated) == len(raw)  # every frame, the skipped ones too
    assert annotated[0].shape == raw[0].shape
    detections = [x for x in lines[:-1] if "box" in x]
    assert detections, "no detection on the shelf clip"
    by_frame: dict[int, list[dict]] = {}
    for x in detections:
        by_frame.setdefault(x["frame"], []).append(x)
    drawn = 0
    for index, (a, b) in enumerate(zip(annotated, raw, strict=True)):
        diff = np.abs(a - b).sum(axis=2)
        boxes = by_frame.get(index - index % 3, [])  # a skipped frame shows the last processed
        if boxes:
            outline = np.any([_outline(a.shape, x["box"]) for x in boxes], axis=0)
            # the drawn outlines differ from the raw frame far beyond the codec's loss
            # (under 25, summed over the 3 channels, where nothing is drawn)
            assert diff[outline].mean() > 100, (index, diff[outline].mean())
            drawn += 1
        else:  # no box: the raw frame, less the codec's loss
            assert diff.mean() < 25, (index, diff.mean())
    assert drawn >= 3
    # the inputs waited in the store for the job only
    assert not open_store(settings).list("uploads/")


def test_annotate_takes_videos_up_to_the_body_limit(api_settings, pipeline, clip) -> None:  # noqa: F811
    settings = api_settings.model_copy(update={"max_body_bytes": 20_000})
    client = create_app(settings, pipeline=pipeline).test_client()
    cid = client.post("/v1/catalogs", json={"name": "v", "kind": "products"}).json["id"]
    data = clip.read_bytes()
    assert len(data) > settings.max_body_bytes
    open_store(settings).put("videos/cam1/clip.mp4", data)
    url = f"/v1/catalogs/{cid}/videos?stride=10"
    r = client.post(url + "&annotate=true", json={"key": "videos/cam1/clip.mp4"})
    assert r.status_code == 413, r.get_data(as_text=True)
    assert "SIGHTING_MAX_BODY_BYTES" in r.json["error"]["message"]
    assert _lines(client.post(url, json={"key": "videos/cam1/clip.mp4"}))[-1]["summary"]
    assert client.post(url + "&annotate=maybe", json={"key": "x"}).status_code == 422
