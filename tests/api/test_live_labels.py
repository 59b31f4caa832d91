"""``labels=<label set>`` on detect and stream frames: each detection's crop labelled by the
label set's examples, in the one label shape; a track is labelled once; bad label sets."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from api import create_app
from core.images import encode_jpeg, list_images
from tests.api.conftest import ALICE, BOB, GROCERY, fill_catalog, query_photo
from tests.api.test_streams import post as post_frame


def make_label_set(client, headers: dict | None = None) -> str:
    """milk / banana, 4 shelf photos each (none of them a photo the tests send)."""
    headers = headers or {}
    r = client.post("/v1/catalogs", json={"name": "labels"}, headers=headers)
    label_set = r.json["id"]
    for label, item in (("milk", "Arla-Standard-Milk"), ("banana", "Banana")):
        paths = list_images(GROCERY / "queries" / item)[1:5]
        r = client.post(
            f"/v1/catalogs/{label_set}/items",
            data={
                "item_id": label,
                "images": [(io.BytesIO(p.read_bytes()), p.name) for p in paths],
            },
            content_type="multipart/form-data",
            headers=headers,
        )
        assert r.status_code == 201, r.json
    return label_set


@pytest.fixture(scope="module")
def labelled_shop(shop) -> tuple:
    client, cid = shop
    return client, cid, make_label_set(client)


def _check_shape(labels: dict) -> None:
    assert [x["label"] for x in labels["labels"]] == ["banana", "milk"]
    total = sum(x["probability"] for x in labels["labels"]) + labels["unknown"]
    assert total == pytest.approx(1.0, abs=1e-3)
    assert labels["top"] in ("banana", "milk", None)


def test_detect_labels_every_detection(labelled_shop) -> None:
    client, cid, label_set = labelled_shop
    photo = query_photo("Arla-Standard-Milk", 0)  # not one of the label set's examples
    plain = client.post(
        f"/v1/catalogs/{cid}/detect?verify=false", data=photo, content_type="image/jpeg"
    )
    assert all("labels" not in d for d in plain.json["detections"])  # only when asked
    r = client.post(
        f"/v1/catalogs/{cid}/detect?verify=false&whole_frame=true&labels={label_set}",
        data=photo,
        content_type="image/jpeg",
    )
    assert r.status_code == 200, r.json
    dets = r.json["detections"]
    assert dets and all(d["labels"] is not None for d in dets)
    for d in dets:
        _check_shape(d["labels"])
    whole = [d for d in dets if d["class"] == "image"]
    assert whole and whole[0]["labels"]["top"] == "milk"  # the shelf photo of milk
    assert "labels" in r.json["timings"]
    # the same matches as without labels: labelling changes nothing else
    assert [d["matches"] for d in dets if d["class"] != "image"] == [
        d["matches"] for d in plain.json["detections"] if d["class"] != "image"
    ]


def test_stream_labels_each_track_once(labelled_shop, ultralytics_assets: Path) -> None:
    import cv2

    from core.images import read_image

    client, cid, label_set = labelled_shop
    img = read_image(ultralytics_assets / "bus.jpg")
    frame = cv2.resize(img, (320, round(img.shape[0] * 320 / img.shape[1])))
    bodies = [post_frame(client, cid, "lab", frame, labels=label_set).json for _ in range(3)]
    tracked = {
        d["track_id"]: d["labels"] for d in bodies[0]["detections"] if d["track_id"] is not None
    }
    assert tracked and all(lab is not None for lab in tracked.values())
    for lab in tracked.values():
        _check_shape(lab)
    for body in bodies[1:]:  # kept per track: the same labels, no new labelling time
        for d in body["detections"]:
            if d["track_id"] in tracked:
                assert d["labels"] == tracked[d["track_id"]]
    assert client.delete(f"/v1/catalogs/{cid}/streams/lab").status_code == 204


def test_bad_label_sets(api_settings, pipeline) -> None:
    settings = api_settings.model_copy(update={"api_keys": [ALICE, BOB]})
    client = create_app(settings, pipeline=pipeline).test_client()
    alice, bob = {"X-API-Key": ALICE}, {"X-API-Key": BOB}
    cid = fill_catalog_as(client, alice)
    label_set = make_label_set(client, alice)
    photo = encode_jpeg(np.full((64, 64, 3), 128, np.uint8))
    bob_cid = fill_catalog_as(client, bob)

    def detect(catalog: str, labels: str, headers: dict):
        return client.post(
            f"/v1/catalogs/{catalog}/detect?whole_frame=true&labels={labels}",
            data=photo,
            content_type="image/jpeg",
            headers=headers,
        )

    assert detect(cid, label_set, alice).status_code == 200
    assert detect(bob_cid, label_set, bob).status_code == 404  # alice's label set
    assert detect(cid, "nosuchset", alice).status_code == 404
    assert detect(cid, "a%2Fb", alice).status_code == 422
    one = client.post("/v1/catalogs", json={"name": "one"}, headers=alice).json["id"]
    client.post(
        f"/v1/catalogs/{one}/items",
        data={"item_id": "x", "images": [(io.BytesIO(photo), "x.jpg")]},
        content_type="multipart/form-data",
        headers=alice,
    )
    r = detect(cid, one, alice)  # a single example in all: a label set cannot be fitted
    assert r.status_code == 422, r.json


def fill_catalog_as(client, headers: dict) -> str:
    """`fill_catalog` with an API key."""
    client.environ_base["HTTP_X_API_KEY"] = headers["X-API-Key"]
    try:
        return fill_catalog(client)
    finally:
        del client.environ_base["HTTP_X_API_KEY"]
