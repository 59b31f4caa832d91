"""Labels by text over HTTP: ``prompts=`` on camera-trap batches, detect and stream frames.

A tiny random CLIP (built with transformers by `tests.labels.tiny_clip`, saved in the layout of
openai/clip-vit-base-patch32) is the operator's ``SIGHTING_CLIP``; the answers' probabilities
are those of the same model loaded on its own (`labels.text.load_text_labeler`). Without the
setting, prompts are 409 naming it; bad prompts are 422 through the one options schema.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

import traps.job  # noqa: F401 - registers the "traps" kind in this process (run_job below)
from api import create_app
from core.images import decode_image, list_images
from jobs import JobQueue
from jobs.runner import run_job
from labels.text import MAX_PROMPTS, load_text_labeler
from tests.api.conftest import query_photo
from tests.api.test_streams import post as post_frame
from tests.conftest import offline_settings
from tests.labels.tiny_clip import save_transformers_clip

PROMPTS = ("a photo of a dog", "a photo of a milk carton", "an empty shelf")
LINES = "\n".join(PROMPTS)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_transformers_clip(tmp_path_factory.mktemp("clip") / "clip-vit-base-patch32")


@pytest.fixture(scope="module")
def clip_app(pipeline, clip_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """An app whose operator has configured CLIP files, with a products catalog."""
    from tests.api.conftest import fill_catalog

    settings = offline_settings(
        tmp_path_factory.mktemp("store"),
        sync_interval_s=0.0,
        async_verify=False,
        clip=str(clip_dir),
    )
    client = create_app(settings, pipeline=pipeline).test_client()
    return client, settings, fill_catalog(client)


def _expected(clip_dir: Path, settings, pixels: list[np.ndarray]) -> np.ndarray:
    labeler = load_text_labeler(clip_dir, PROMPTS, settings)
    return np.stack([r.probabilities for r in labeler.label(pixels)])


def _probabilities(labels: dict) -> np.ndarray:
    assert [x["label"] for x in labels["labels"]] == list(PROMPTS)  # the prompts' order
    assert labels["unknown"] == 0.0 and labels["top"] in PROMPTS
    return np.array([x["probability"] for x in labels["labels"]])


def _card(data_dir: Path) -> dict[str, bytes]:
    dogs = list_images(data_dir / "dogs" / "queries" / "1095")[:1]
    shelves = list_images(data_dir / "grocery" / "queries" / "_none")[:2]
    return {f"DCIM/IMG_{i:04d}.JPG": p.read_bytes() for i, p in enumerate(dogs + shelves)}


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_batch_labels_each_photo_by_prompts(clip_app, clip_dir: Path, data_dir: Path) -> None:
    client, settings, _ = clip_app
    card = _card(data_dir)
    r = client.post(
        "/v1/traps/batches",
        data={"archive": (io.BytesIO(_zip(card)), "card.zip"), "prompts": LINES + "\n\n"},
        content_type="multipart/form-data",
    )
    assert r.status_code == 202, r.json
    queue = JobQueue(settings)
    assert queue.get(r.json["id"]).params["prompts"] == list(PROMPTS)
    done = run_job(queue.jobs, r.json["id"], settings=queue.settings)
    assert done is not None and done.state == "done", done
    lines = client.get(f"/v1/jobs/{r.json['id']}/files/results.jsonl").data.decode()
    records = {rec["file"]: rec for rec in map(json.loads, lines.splitlines())}
    assert set(records) == set(card)
    names = sorted(card)
    got = np.stack([_probabilities(records[n]["labels"]) for n in names])
    pixels = [decode_image(card[n]) for n in names]
    assert np.allclose(got, _expected(clip_dir, settings, pixels), atol=2e-3)
    for rec in records.values():  # each animal's crop too, over the same prompts
        for det in rec["detections"]:
            _probabilities(det["labels"])


def test_detect_and_stream_frames_take_prompts(
    clip_app, clip_dir: Path, ultralytics_assets: Path
) -> None:
    client, settings, cid = clip_app
    photo = query_photo("Arla-Standard-Milk", 0)
    r = client.post(
        f"/v1/catalogs/{cid}/detect",
        query_string={"verify": "false", "whole_frame": "true", "prompts": LINES},
        data=photo,
        content_type="image/jpeg",
    )
    assert r.status_code == 200, r.json
    dets = r.json["detections"]
    assert dets and all(d["labels"] is not None for d in dets)
    whole = next(d for d in dets if d["class"] == "image")
    expected = _expected(clip_dir, settings, [decode_image(photo)])[0]
    assert np.allclose(_probabilities(whole["labels"]), expected, atol=2e-3)
    # a JSON body's prompts: one string, one prompt a line, as in a form or the query
    body = {"image": base64.b64encode(photo).decode(), "prompts": LINES}
    again = client.post(f"/v1/catalogs/{cid}/detect?verify=false", json=body)
    assert again.status_code == 200, again.json
    assert [d["labels"] for d in again.json["detections"]] == [d["labels"] for d in dets]

    import cv2

    from core.images import read_image

    bus = read_image(ultralytics_assets / "bus.jpg")  # people and a bus: tracks
    frame = cv2.resize(bus, (320, round(bus.shape[0] * 320 / bus.shape[1])))
    frames = [post_frame(client, cid, "p", frame, prompts=quote(LINES)).json for _ in range(2)]
    tracked = {
        d["track_id"]: d["labels"] for d in frames[0]["detections"] if d["track_id"] is not None
    }
    assert tracked and all(_probabilities(lab) is not None for lab in tracked.values())
    for d in frames[1]["detections"]:  # a track keeps the labels it got when first seen
        if d["track_id"] in tracked:
            assert d["labels"] == tracked[d["track_id"]]
    assert client.delete(f"/v1/catalogs/{cid}/streams/p").status_code == 204


def _error(r, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.json)
    assert set(r.json["error"]) >= {"status", "code", "message"}  # the one error shape
    return r.json["error"]


def test_without_clip_files_prompts_are_409(shop, data_dir: Path) -> None:
    client, cid = shop  # an app whose operator set no SIGHTING_CLIP
    card = _zip(_card(data_dir))
    for r in (
        client.post(
            "/v1/traps/batches",
            query_string={"prompts": LINES},
            data=card,
            content_type="application/zip",
        ),
        client.post(
            f"/v1/catalogs/{cid}/detect",
            query_string={"prompts": LINES},
            data=query_photo("Banana", 0),
            content_type="image/jpeg",
        ),
        post_frame(client, cid, "noclip", query_photo("Banana", 0), prompts=quote("a dog")),
    ):
        error = _error(r, 409)
        assert error["code"] == "conflict" and "SIGHTING_CLIP" in error["message"]
    assert "noclip" not in {s["id"] for s in client.get("/v1/streams").json["streams"]}


@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        ("", "at least one prompt"),
        (" \n \n", "at least one prompt"),
        ("a dog\na dog", "duplicate"),
        ("x" * 400, "at most 300"),
        ("\n".join(f"p{i}" for i in range(MAX_PROMPTS + 1)), f"at most {MAX_PROMPTS}"),
        ("\n".join(f"{i:03d}" + "y" * 296 for i in range(140)), "at most 40000"),
    ],
)
def test_bad_prompts_are_422(shop, prompts: str, message: str) -> None:
    client, cid = shop
    answers = [
        client.post(
            "/v1/traps/batches",
            data={"photos": (io.BytesIO(query_photo("Banana", 0)), "a.jpg"), "prompts": prompts},
            content_type="multipart/form-data",
        ),
        client.post(
            f"/v1/catalogs/{cid}/detect",
            query_string={"prompts": prompts},
            data=query_photo("Banana", 0),
            content_type="image/jpeg",
        ),
    ]
    for r in answers:
        error = _error(r, 422)
        found = next(iter(error["details"].values()))["prompts"]
        assert any(message in m for m in found), found


def test_labels_and_prompts_together_are_422(shop) -> None:
    client, cid = shop
    both = {"labels": "somelabelset", "prompts": LINES}
    for r in (
        client.post("/v1/traps/batches", json={"prefix": "cards/x/"} | both),
        client.post(
            f"/v1/catalogs/{cid}/detect",
            query_string=both,
            data=query_photo("Banana", 0),
            content_type="image/jpeg",
        ),
    ):
        error = _error(r, 422)
        assert "not both" in json.dumps(error["details"])
