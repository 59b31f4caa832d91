"""The one options loader: query string, form fields and JSON keys are validated alike (the
same 422s, naming where the bad value came from), and defaults come from the settings."""

from __future__ import annotations

import base64
import io

import pytest

from api import create_app
from tests.api.conftest import ITEMS, fill_catalog, query_photo

PHOTO = query_photo(ITEMS[0])
B64 = base64.b64encode(PHOTO).decode()


def _form(**fields):
    return {
        "data": {"image": (io.BytesIO(PHOTO), "q.jpg"), **fields},
        "content_type": "multipart/form-data",
    }


BAD = [
    # (how it is sent, options path, kwargs, where the details name it, the option)
    ("query", "/detect?verify=nope", {"data": PHOTO, "content_type": "image/jpeg"}, "verify"),
    ("form", "/detect", _form(verify="nope"), "verify"),
    ("json", "/detect", {"json": {"image": B64, "verify": "nope"}}, "verify"),
    ("query", "/detect?top_k=3.7", {"data": PHOTO, "content_type": "image/jpeg"}, "top_k"),
    ("form", "/detect", _form(top_k="3.7"), "top_k"),
    ("json", "/detect", {"json": {"image": B64, "top_k": 3.7}}, "top_k"),
    ("json", "/search", {"json": {"image": B64, "top_k": 0}}, "top_k"),
    ("json", "/detect", {"json": {"image": B64, "verify": 1}}, "verify"),  # JSON types are kept
    ("json", "/detect", {"json": {"image": B64, "top_k": "5"}}, "top_k"),
    ("form", "/search", _form(verify="1"), "verify"),  # a form's boolean: true or false
    ("json", "/search", {"json": {"image": B64, "verify": None}}, "verify"),  # not nullable
    ("form", "/search", _form(min_score="2"), "min_score"),
    ("json", "/detect", {"json": {"image": B64, "classes": "unicorn"}}, "classes"),
    ("json", "/detect", {"json": {"image": B64, "classes": []}}, "classes"),
    ("json", "/detect", {"json": {"image": B64, "labels": "a b"}}, "labels"),
    ("form", "/streams/s1/frames", _form(frame_index="-1"), "frame_index"),
    ("json", "/matches/explain", {"json": {"image": B64, "item_id": ITEMS[0], "box": 5}}, "box"),
    ("form", "/matches/explain", _form(item_id=ITEMS[0], format="gif"), "format"),
    ("query", "/matches/explain", {"data": PHOTO, "content_type": "image/jpeg"}, "item_id"),
]


@pytest.mark.parametrize(("source", "path", "kwargs", "name"), BAD)
def test_a_bad_option_is_422_wherever_it_comes_from(shop, source, path, kwargs, name) -> None:
    client, catalog = shop
    r = client.post(f"/v1/catalogs/{catalog}{path}", **kwargs)
    assert r.status_code == 422, r.json
    error = r.json["error"]
    assert error["code"] == "bad_input" and error["status"] == 422
    assert name in error["details"][source], error


def test_an_option_sent_twice_is_checked_in_both_places(shop) -> None:
    client, catalog = shop
    r = client.post(f"/v1/catalogs/{catalog}/detect?top_k=2", json={"image": B64, "top_k": "many"})
    assert r.status_code == 422 and "top_k" in r.json["error"]["details"]["json"]


def test_form_and_json_options_are_applied(shop) -> None:
    client, catalog = shop
    url = f"/v1/catalogs/{catalog}/detect"
    form = client.post(url, **_form(top_k="1", verify="false", classes="bottle"))
    assert form.status_code == 200, form.json
    # 1.0 is an integer in JSON Schema (3.7 is refused above)
    body = client.post(url, json={"image": B64, "top_k": 1.0, "verify": False, "classes": "bottle"})
    assert body.status_code == 200, body.json
    for answer in (form.json, body.json):
        assert all(m["inliers"] == 0 for d in answer["detections"] for m in d["matches"])
        assert all(len(d["matches"]) <= 1 for d in answer["detections"])
        assert {d["class"] for d in answer["detections"]} <= {"bottle", "image"}
    listed = client.post(url, json={"image": B64, "classes": ["bottle"], "whole_frame": False})
    assert listed.status_code == 200 and {d["class"] for d in listed.json["detections"]} <= {
        "bottle"
    }


def test_defaults_come_from_the_settings(api_settings, pipeline) -> None:
    settings = api_settings.model_copy(update={"top_k": 1, "search_top_k": 2})
    client = create_app(settings, pipeline=pipeline).test_client()
    catalog = fill_catalog(client)
    detect = client.post(
        f"/v1/catalogs/{catalog}/detect?verify=false", data=PHOTO, content_type="image/jpeg"
    )
    assert detect.status_code == 200
    assert max(len(d["matches"]) for d in detect.json["detections"]) == 1
    search = client.post(
        f"/v1/catalogs/{catalog}/search?verify=false", data=PHOTO, content_type="image/jpeg"
    )
    assert search.status_code == 200 and len(search.json["matches"]) == 2


def test_upload_options_from_form_and_json(client, catalog) -> None:
    from tests.api.conftest import catalog_photo

    photo = catalog_photo(ITEMS[1])
    url = f"/v1/catalogs/{catalog}/items"
    bad_json = client.post(url, json={"images": [base64.b64encode(photo).decode()], "item_id": 5})
    assert bad_json.status_code == 422 and "item_id" in bad_json.json["error"]["details"]["json"]
    bad_form = client.post(
        url,
        data={"images": (io.BytesIO(photo), "a.jpg"), "metadata": "[1]"},
        content_type="multipart/form-data",
    )
    assert bad_form.status_code == 422
    assert "metadata" in bad_form.json["error"]["details"]["form"]
    refused = client.post(
        url,
        data={"images": (io.BytesIO(photo), "a.jpg"), "refuse": "exact_duplicate,near_duplicate"},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 422 and refused.json["error"]["details"]["refused"]
    # metadata is read from the body only, never from the query string
    added = client.post(
        f"{url}?metadata=%7B%22a%22%3A1%7D",
        json={"images": [base64.b64encode(photo).decode()], "metadata": {"b": 2}},
    )
    assert added.status_code == 201, added.json
    item = client.get(f"{url}/{added.json['item_id']}").json
    assert item["metadata"] == {"b": 2}
