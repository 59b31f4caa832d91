"""POST /v1/catalogs/<id>/matches/explain: the PNG, its numbers, and the errors."""

from __future__ import annotations

import base64
import io

import cv2
import numpy as np
from flask.testing import FlaskClient

from api import create_app
from core.settings import Settings
from matching.pipeline import Pipeline
from tests.api.conftest import ITEMS, fill_catalog, query_photo


def _url(catalog: str, query: str = "") -> str:
    return f"/v1/catalogs/{catalog}/matches/explain{query}"


def _error(r, status: int, code: str) -> None:
    assert r.status_code == status, r.json
    assert r.json["error"]["status"] == status and r.json["error"]["code"] == code
    assert r.json["error"]["message"]


def test_explain_answers_a_png(shop) -> None:
    client, catalog = shop
    r = client.post(
        _url(catalog, f"?item_id={ITEMS[0]}"), data=query_photo(ITEMS[0]), content_type="image/jpeg"
    )
    assert r.status_code == 200 and r.mimetype == "image/png"
    picture = cv2.imdecode(np.frombuffer(r.data, np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None
    h, w = picture.shape[:2]
    # two 320 px rows (crop | catalog image, then their heat-maps), a gap, a caption
    band = h - (2 * 320 + 4)
    assert band >= 2 * 24 + 8 and (band - 8) % 24 == 0 and 320 <= w <= 1600
    assert picture.std() > 20  # a picture, not a blank canvas


def test_explain_numbers_as_json_from_multipart_and_base64(shop) -> None:
    client, catalog = shop
    photo = query_photo(ITEMS[1])
    multi = client.post(
        _url(catalog),
        data={"image": (io.BytesIO(photo), "q.jpg"), "item_id": ITEMS[1], "format": "json"},
        content_type="multipart/form-data",
    )
    assert multi.status_code == 200 and multi.mimetype == "application/json"
    n = multi.json
    assert n["item_id"] == ITEMS[1] and n["rank"] == 1 and n["verified"]
    assert n["inliers"] > 0 and n["pair"]["inliers"] > 0 and "catalog_version" in n
    boxed = client.post(
        _url(catalog, "?format=json"),
        json={
            "image": base64.b64encode(photo).decode(),
            "item_id": ITEMS[1],
            "box": [0, 0, 200, 300],
        },
    )
    assert boxed.status_code == 200
    assert boxed.json["class"] == "box" and boxed.json["box"] == [0.0, 0.0, 200.0, 300.0]


def _decoded(r) -> np.ndarray:
    picture = cv2.imdecode(np.frombuffer(r.data, np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None
    return picture


def test_explain_without_a_verifier_answers_the_picture_without_keypoint_lines(
    api_settings: Settings, pipeline: Pipeline
) -> None:
    """SIGHTING_VERIFIER=none stores images without keypoints: explain still answers every item
    (Grad-CAM and numbers, no correspondences), as the detect endpoint still ranks them."""
    unverified = Pipeline(pipeline.detector, pipeline.embedders, None, pipeline.calibrations)
    settings = api_settings.model_copy(update={"verifier": "none"})
    client: FlaskClient = create_app(settings, pipeline=unverified).test_client()
    catalog = fill_catalog(client)
    for item in ITEMS:
        r = client.post(
            _url(catalog, f"?item_id={item}&format=json"),
            data=query_photo(item),
            content_type="image/jpeg",
        )
        assert r.status_code == 200, r.json
        n = r.json
        assert n["item_id"] == item and isinstance(n["image_id"], str)
        assert n["pair"]["inliers"] == n["pair"]["matches"] == 0 and n["pair"]["spread"] == 0.0
        assert n["pair"]["similarity"] > 0 and not n["checked"] and n["inliers"] in (0, None)
    r = client.post(
        _url(catalog, f"?item_id={ITEMS[0]}"), data=query_photo(ITEMS[0]), content_type="image/jpeg"
    )
    assert r.status_code == 200 and r.mimetype == "image/png"
    top = _decoded(r)[:320].astype(int)
    green = (top[..., 1] > 200) & (top[..., 2] < 80) & (top[..., 0] < 100)  # BGR inlier lines
    assert green.sum() < 50


def test_explain_not_found(shop) -> None:
    client, catalog = shop
    photo = query_photo(ITEMS[0])
    _error(
        client.post(_url("nope", f"?item_id={ITEMS[0]}"), data=photo, content_type="image/jpeg"),
        404,
        "not_found",
    )
    _error(
        client.post(_url(catalog, "?item_id=no-such-item"), data=photo, content_type="image/jpeg"),
        404,
        "not_found",
    )


def test_explain_bad_requests(shop) -> None:
    client, catalog = shop
    photo = query_photo(ITEMS[0])
    ok = f"?item_id={ITEMS[0]}"
    _error(client.post(_url(catalog), data=photo, content_type="image/jpeg"), 422, "bad_input")
    _error(client.post(_url(catalog, ok)), 422, "bad_input")  # no image
    corrupt = b"\xff\xd8\xff\xe0" + b"\x00" * 64  # a JPEG header and nothing else
    _error(
        client.post(_url(catalog, ok), data=corrupt, content_type="image/jpeg"), 422, "bad_input"
    )
    for query in (f"{ok}&box=1,2,3", f"{ok}&box=5,5,1,1", f"{ok}&format=gif"):
        _error(
            client.post(_url(catalog, query), data=photo, content_type="image/jpeg"),
            422,
            "bad_input",
        )
    pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
    _error(
        client.post(_url(catalog, ok), data=pdf, content_type="application/octet-stream"),
        415,
        "unsupported_media_type",
    )
    _error(
        client.post(_url(catalog, ok), data=b"hello", content_type="text/plain"),
        415,
        "unsupported_media_type",
    )


def test_explain_is_in_the_openapi_document(shop) -> None:
    client, _ = shop
    op = client.get("/openapi.json").json["paths"]["/v1/catalogs/{catalog_id}/matches/explain"]
    assert "image/png" in op["post"]["responses"]["200"]["content"]
    assert "item_id" in op["post"]["description"]
