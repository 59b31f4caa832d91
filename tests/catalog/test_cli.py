"""`python -m catalog`: check, list and gc against a real local store and moto's S3."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from catalog.__main__ import main
from catalog.repository import CatalogRepository, feature_key
from catalog.stores import open_store
from core.settings import Settings, get_settings


@pytest.fixture()
def env(store_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point the command (which reads the environment) at the test's store."""
    for name, value in store_settings.model_dump().items():
        if value is not None and name in (
            "storage",
            "data_dir",
            "s3_bucket",
            "s3_prefix",
            "s3_endpoint_url",
            "s3_access_key_id",
            "s3_secret_access_key",
            "s3_region",
        ):
            monkeypatch.setenv(f"SIGHTING_{name.upper()}", str(value))
    get_settings.cache_clear()
    yield store_settings
    get_settings.cache_clear()


def test_check_list_gc(env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    repo = CatalogRepository(open_store(env))
    manifest = repo.create_catalog("shelf", "products", "t_owner")
    orphan = feature_key(manifest.catalog_id, "crashed", "emb.npz")
    repo.store.put(orphan, b"left by a crash before the manifest write")
    assert main(["check"]) == 0
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert manifest.catalog_id in out and "owner=t_owner" in out
    assert main(["gc", "--grace-s", "3600"]) == 0  # too young: kept
    assert repo.store.exists(orphan)
    assert main(["gc", "--grace-s", "0"]) == 0
    assert not repo.store.exists(orphan)
    assert "1 orphaned objects deleted" in capsys.readouterr().out
    assert repo.get_manifest(manifest.catalog_id).version == 1  # the catalog itself untouched


def test_put_video_and_list(env: Settings, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    assert main(["put-video", str(clip), "videos/cam1/clip.mp4"]) == 0
    assert open_store(env).get("videos/cam1/clip.mp4") == clip.read_bytes()
    assert main(["videos"]) == 0
    assert f"videos/cam1/clip.mp4  {clip.stat().st_size}" in capsys.readouterr().out

    garbage = tmp_path / "notes.mp4"
    garbage.write_bytes(b"not a video at all" * 50)
    # bad input, each: exit 2 (core.cli)
    assert main(["put-video", str(garbage), "videos/cam1/notes.mp4"]) == 2  # does not decode
    assert main(["put-video", str(clip), "catalogs/abc/manifest.json"]) == 2  # outside videos/
    assert main(["put-video", str(tmp_path / "missing.mp4"), "videos/x.mp4"]) == 2
    err = capsys.readouterr().err
    assert "cannot be decoded" in err and "videos/" in err and "no file" in err
    assert open_store(env).list("videos/") == ["videos/cam1/clip.mp4"]
