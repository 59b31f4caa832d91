"""Each catalog's own calibration, end to end: real models, real grocery photos, a real store.

New kinds (no model trained for them) answer with the ImageNet features and confirm nothing
until their catalog is calibrated; a calibration is used only on the catalog content it was
fitted on (refit on change, fingerprint check, items added during a refit); a catalog too
small to calibrate says so.
"""

from __future__ import annotations

import io

import pytest
from flask.testing import FlaskClient

from api.state import SightingState
from catalog.calibration import refit_catalog_calibration
from matching.calibration.record import FitOptions
from tests.api.conftest import ITEMS, catalog_photo, query_photo

# three items give three impostor pairs: enough for these tests' fits (the default is 20)
SMALL = FitOptions(max_queries=3, min_impostors=2)


def _state(client: FlaskClient) -> SightingState:
    return client.application.extensions["sighting"]


def _fill(client: FlaskClient, kind: str, items=ITEMS) -> str:
    cid = client.post("/v1/catalogs", json={"name": "cal", "kind": kind}).json["id"]
    for item in items:
        _add(client, cid, item)
    return cid


def _add(client: FlaskClient, cid: str, item: str) -> None:
    r = client.post(
        f"/v1/catalogs/{cid}/items",
        data={"images": (io.BytesIO(catalog_photo(item)), f"{item}.jpg"), "item_id": item},
        content_type="multipart/form-data",
    )
    assert r.status_code == 201, r.json


def _search(client: FlaskClient, cid: str, verify: bool = False) -> dict:
    """A search for a shelf photo (keypoints only where asked: the calibration field does not
    depend on them, and they are the slow stage)."""
    r = client.post(
        f"/v1/catalogs/{cid}/search?top_k=3&verify={str(verify).lower()}",
        data=query_photo(ITEMS[0]),
        content_type="image/jpeg",
    )
    assert r.status_code == 200, r.json
    return r.json


def test_a_new_kind_uses_imagenet_features_and_confirms_nothing_uncalibrated(
    client: FlaskClient,
) -> None:
    cid = _fill(client, "vehicles")
    s = _state(client)
    assert s.pipeline.embedder_for("vehicles").name == "mobilenet_v2"
    assert s.pipeline.embedder_for("vehicles") is not s.pipeline.embedder_for("products")
    body = _search(client, cid, verify=True)
    assert body["calibration"] == "kind_default"
    assert body["matches"] and not any(m["verified"] for m in body["matches"])
    info = client.get(f"/v1/catalogs/{cid}").json["calibration"]
    assert info["source"] == "kind_default" and info["state"] == "not_fitted"
    assert info["threshold"] == 1.0


def test_refit_on_change_and_a_stale_calibration_is_not_used(client: FlaskClient) -> None:
    cid = _fill(client, "other")
    s = _state(client)
    result = refit_catalog_calibration(s.repository, s.pipeline, cid, SMALL)
    assert result.stored and result.calibration.status == "fitted"
    info = client.get(f"/v1/catalogs/{cid}").json["calibration"]
    assert info["source"] == "catalog" and info["state"] == "fitted"
    assert info["impostor_pairs"] == 3 and info["genuine_pairs"] == 3
    pair = info["look_alikes"][0]
    assert {pair["item"], pair["looks_like"]} <= set(ITEMS) and pair["item"] != pair["looks_like"]
    assert _search(client, cid)["calibration"] == "catalog"
    # nothing changed: a second refit does nothing
    assert refit_catalog_calibration(s.repository, s.pipeline, cid, SMALL).skipped

    _add(client, cid, "Arla-Sour-Cream")  # the catalog changed: its calibration is stale
    assert _search(client, cid)["calibration"] == "kind_default"
    assert client.get(f"/v1/catalogs/{cid}").json["calibration"]["state"] == "stale"
    result = refit_catalog_calibration(s.repository, s.pipeline, cid, SMALL)
    assert result.stored and not result.skipped
    assert _search(client, cid)["calibration"] == "catalog"


def test_items_added_during_a_refit_leave_it_unstored(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = _fill(client, "products", ITEMS[:2] + ("Arla-Sour-Cream",))
    s = _state(client)
    import catalog.calibration as module

    real = module.fit_catalog_calibration

    def fit_while_an_item_arrives(*args, **kwargs):
        out = real(*args, **kwargs)
        _add(client, cid, ITEMS[2])  # lands after the fit read the catalog
        return out

    monkeypatch.setattr(module, "fit_catalog_calibration", fit_while_an_item_arrives)
    result = refit_catalog_calibration(s.repository, s.pipeline, cid, SMALL)
    assert not result.stored
    manifest = s.repository.get_manifest(cid)
    assert manifest.calibration is None and len(manifest.items) == 4
    info = client.get(f"/v1/catalogs/{cid}").json["calibration"]
    assert info["source"] == "kind_default" and info["state"] == "not_fitted"
    assert info["threshold"] == s.pipeline.calibration("products").threshold


def test_a_one_item_catalog_is_too_small_and_says_so(client: FlaskClient) -> None:
    cid = _fill(client, "wildlife", ITEMS[:1])
    s = _state(client)
    result = refit_catalog_calibration(s.repository, s.pipeline, cid, FitOptions())
    assert result.stored and result.calibration.status == "too_small"
    info = client.get(f"/v1/catalogs/{cid}").json["calibration"]
    assert info["state"] == "too_small" and info["source"] == "kind_default"
    assert "impostor pairs" in info["reason"]
    assert _search(client, cid)["calibration"] == "kind_default"


def test_a_corrupt_calibration_blob_is_the_kind_default(client: FlaskClient) -> None:
    cid = _fill(client, "other")
    s = _state(client)
    refit_catalog_calibration(s.repository, s.pipeline, cid, SMALL)
    manifest = s.repository.get_manifest(cid)
    s.repository.store.put(manifest.calibration.key, b"{not json")
    s.catalogs.invalidate(cid)
    assert _search(client, cid)["calibration"] == "kind_default"
    info = client.get(f"/v1/catalogs/{cid}").json["calibration"]
    assert info["source"] == "kind_default" and info["state"] == "not_fitted"
