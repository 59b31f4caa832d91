"""Streams and video over HTTP: lifecycle, tracking, conflicts, bad input, ndjson video."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from api import create_app
from catalog.stores import open_store
from core.images import encode_jpeg, read_image
from tests.api.conftest import ADMIN, ALICE
from tests.clips import cut_clip

VIDEO = Path(__file__).resolve().parents[3] / "shared" / "data" / "video" / "coke-shelf.mp4"


@pytest.fixture(scope="module")
def frame(ultralytics_assets: Path) -> np.ndarray:
    """bus.jpg at 320 px wide (uint8 RGB)."""
    img = read_image(ultralytics_assets / "bus.jpg")
    return cv2.resize(img, (320, round(img.shape[0] * 320 / img.shape[1])))


def post(client, cid: str, sid: str, image: np.ndarray | bytes, **query):
    body = image if isinstance(image, bytes) else encode_jpeg(image)
    headers = {k: v for k, v in query.items() if k.startswith("X-")}
    params = {"verify": "false"} | {k: v for k, v in query.items() if not k.startswith("X-")}
    url = f"/v1/catalogs/{cid}/streams/{sid}/frames?" + "&".join(
        f"{k}={v}" for k, v in params.items()
    )
    return client.post(url, data=body, content_type="image/jpeg", headers=headers)


def listed(client) -> dict:
    return {s["id"]: s for s in client.get("/v1/streams").json["streams"]}


def test_lifecycle_and_stable_tracks(shop, frame) -> None:
    client, cid = shop
    first = post(client, cid, "life", frame, verify="true")
    assert first.status_code == 200, first.json
    body = first.json
    assert body["stream_id"] == "life" and body["frame_index"] == 0
    dets = body["detections"]
    assert dets and all(d["class"] != "image" for d in dets)  # the whole frame is not tracked
    assert {"track_id", "box", "class", "confidence", "matches", "verified_now"} <= set(dets[0])
    assert sum(d["verified_now"] for d in dets) >= 1
    later = [post(client, cid, "life", frame, verify="true").json for _ in range(2)]
    assert [b["frame_index"] for b in later] == [1, 2]
    ids = lambda b: sorted(d["track_id"] for d in b["detections"] if d["track_id"] is not None)  # noqa: E731
    assert ids(later[0]) == ids(body) == ids(later[1])
    # a track is verified at most once (new; within SIGHTING_VERIFY_BUDGET_MS per frame, so
    # on a CPU some wait), its verdict reused afterwards; waiting tracks show ranked candidates
    verified = [d["track_id"] for b in [body, *later] for d in b["detections"] if d["verified_now"]]
    assert sorted(verified) == sorted(set(verified)) and set(verified) <= set(ids(body))
    assert all(d["matches"] for d in later[1]["detections"] if d["track_id"] is not None)
    info = listed(client)["life"]
    assert info["catalog"] == cid and info["frames"] == 3 and info["tracks"] >= 1
    assert client.delete(f"/v1/catalogs/{cid}/streams/life").status_code == 204
    assert "life" not in listed(client)
    assert client.delete(f"/v1/catalogs/{cid}/streams/life").status_code == 404


@pytest.mark.parametrize(
    ("second", "why"),
    [
        ({"frame_index": 3}, "not after"),  # frame index going backwards
        ({"frame_index": 8, "X-Stream-Client": "phone-b"}, "another client"),
    ],
)
def test_reuse_conflict(shop, frame, second: dict, why: str) -> None:
    client, cid = shop
    sid = f"reuse-{why.replace(' ', '')}"
    assert (
        post(client, cid, sid, frame, frame_index=5, **{"X-Stream-Client": "phone-a"}).status_code
        == 200
    )
    r = post(client, cid, sid, frame, **second)
    assert r.status_code == 409 and why in r.json["error"]["message"]


def test_corrupt_frame_keeps_stream_and_size_change(shop, frame) -> None:
    client, cid = shop
    assert post(client, cid, "sturdy", frame).status_code == 200
    bad = post(client, cid, "sturdy", b"\xff\xd8\xff\xe0 not really a jpeg")
    assert bad.status_code == 422
    assert "sturdy" in listed(client)
    small = cv2.resize(frame, (200, round(frame.shape[0] * 200 / frame.shape[1])))
    r = post(client, cid, "sturdy", small)
    assert r.status_code == 200 and r.json["frame_index"] == 1
    assert all(d["box"][2] <= 200 for d in r.json["detections"])
    client.delete(f"/v1/catalogs/{cid}/streams/sturdy")


@pytest.mark.parametrize(
    ("sid", "cid", "status"),
    [
        ("bad%20id", None, 422),  # not [A-Za-z0-9._-]
        ("x" * 65, None, 422),  # too long
        ("ok", "no-such-catalog", 404),
    ],
)
def test_bad_stream_requests(shop, frame, sid: str, cid: str | None, status: int) -> None:
    client, shop_cid = shop
    assert post(client, cid or shop_cid, sid, frame).status_code == status


def test_idle_timeout_closes_stream(shop, frame, monkeypatch) -> None:
    client, cid = shop
    registry = client.application.extensions["sighting"].streams
    now = [registry.clock()]
    monkeypatch.setattr(registry, "clock", lambda: now[0])
    assert post(client, cid, "sleepy", frame).status_code == 200
    assert "sleepy" in listed(client)
    now[0] += registry.idle_s + 1
    assert "sleepy" not in listed(client)
    assert client.delete(f"/v1/catalogs/{cid}/streams/sleepy").status_code == 404


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """30 frames of coke-shelf.mp4 at 256x144, re-encoded with OpenCV (mp4v)."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    return cut_clip(VIDEO, path, 30, (256, 144), fps=30.0)


def test_video_ndjson(shop, clip) -> None:
    client, cid = shop
    r = client.post(
        f"/v1/catalogs/{cid}/videos?stride=5", data=clip.read_bytes(), content_type="video/mp4"
    )
    assert r.status_code == 200 and r.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in r.get_data(as_text=True).splitlines()]
    summary = lines[-1]["summary"]
    assert summary["frames"] == 6 and summary["fps"] > 0
    assert summary["verify_calls"] == sum(d["verified_now"] for d in lines[:-1])
    detections = lines[:-1]
    assert detections, "no detection in 6 frames of a shelf"
    keys = {"frame", "time", "track", "box", "class", "item", "score", "verified"}
    assert all(keys <= set(d) for d in detections)
    assert {d["frame"] for d in detections} <= set(range(0, 30, 5))


def test_video_keep_makes_one_sighting_per_track(shop, clip) -> None:
    """``keep=true`` on a whole video: one sighting per track (its best view), each from the
    video, listed in the summary line and by the sightings listing."""
    client, cid = shop
    r = client.post(
        f"/v1/catalogs/{cid}/videos?stride=5&keep=true&verify=false",
        data=clip.read_bytes(),
        content_type="video/mp4",
    )
    assert r.status_code == 200
    lines = [json.loads(line) for line in r.get_data(as_text=True).splitlines()]
    kept = lines[-1]["summary"]["sighting_ids"]
    tracks = {d["track"] for d in lines[:-1] if d.get("item") and d["track"] >= 0}
    assert kept and len(kept) == len(set(kept)) <= len(tracks)
    listing = client.get(f"/v1/catalogs/{cid}/sightings?source=video&limit=200").json
    assert {s["sighting_id"] for s in listing["sightings"]} >= set(kept)
    assert all(s["source"]["kind"] == "video" for s in listing["sightings"])
    assert len({s["source"]["track_id"] for s in listing["sightings"]}) == len(kept)
    plain = client.post(
        f"/v1/catalogs/{cid}/videos?stride=5", data=clip.read_bytes(), content_type="video/mp4"
    )
    assert "sighting_ids" not in plain.get_data(as_text=True).splitlines()[-1]


@pytest.mark.parametrize(
    ("body", "ctype", "status"),
    [
        (b"definitely not an mp4 file" * 10, "video/mp4", 422),
        (b"", "video/mp4", 422),
        (b"{}", "application/json", 422),  # JSON names a stored video: no key
        (b"<html/>", "text/html", 415),
    ],
)
def test_bad_video(shop, body: bytes, ctype: str, status: int) -> None:
    client, cid = shop
    r = client.post(f"/v1/catalogs/{cid}/videos", data=body, content_type=ctype)
    assert r.status_code == status
    if status == 422:
        assert r.json["error"]["message"]


def test_video_named_in_the_store(client, catalog, clip, api_settings) -> None:
    """A stored video under videos/ is processed like an upload; nothing else can be named."""
    store = open_store(api_settings)
    store.put("videos/cam1/clip.mp4", clip.read_bytes())
    store.put("videos/cam1/broken.mp4", clip.read_bytes()[:300])
    url = f"/v1/catalogs/{catalog}/videos?stride=10"
    r = client.post(url, json={"key": "videos/cam1/clip.mp4"})
    assert r.status_code == 200, r.get_data(as_text=True)
    lines = [json.loads(line) for line in r.get_data(as_text=True).splitlines()]
    assert lines[-1]["summary"]["frames"] == 3
    for body, status in [
        ({"key": "videos/cam1/missing.mp4"}, 404),
        ({"key": f"catalogs/{catalog}/manifest.json"}, 422),  # outside videos/
        ({"key": "videos/../catalogs/x"}, 422),
        ({"key": 7}, 422),
        ({"path": "videos/cam1/clip.mp4"}, 422),
        ({"key": "videos/cam1/broken.mp4"}, 422),  # stored, but truncated: does not decode
    ]:
        r = client.post(url, json=body)
        assert r.status_code == status, (body, r.json)
        assert r.json["error"]["message"]
    r = client.post("/v1/catalogs/nope/videos", json={"key": "videos/cam1/clip.mp4"})
    assert r.status_code == 404


def test_stored_video_limit_and_admin_only(api_settings, pipeline, clip) -> None:
    settings = api_settings.model_copy(
        update={"api_keys": [ALICE], "admin_keys": [ADMIN], "max_video_bytes": 1000}
    )
    client = create_app(settings, pipeline=pipeline).test_client()
    open_store(settings).put("videos/clip.mp4", clip.read_bytes())
    cid = client.post(
        "/v1/catalogs", json={"name": "v", "kind": "products"}, headers={"X-API-Key": ALICE}
    ).json["id"]
    body = {"key": "videos/clip.mp4"}
    r = client.post(f"/v1/catalogs/{cid}/videos", json=body, headers={"X-API-Key": ALICE})
    assert r.status_code == 403 and "admin" in r.json["error"]["message"]
    r = client.post(f"/v1/catalogs/{cid}/videos", json=body, headers={"X-API-Key": ADMIN})
    assert r.status_code == 413, r.json  # larger than SIGHTING_MAX_VIDEO_BYTES
