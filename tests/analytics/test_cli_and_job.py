"""``python -m analytics`` on a descriptor pickle, and the HTTP job on a catalog."""

from __future__ import annotations

import csv
import io
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest

import analytics.job  # noqa: F401 - registers the analytics kind in this process
from analytics.data import Descriptors
from api import create_app
from core.settings import REPO_ROOT
from jobs import JobQueue
from jobs.runner import run_job
from tests.conftest import DATA, offline_settings

LINE = re.compile(r"^images=33 clusters=4 outliers=\d+ nmi=[01]\.\d{4} ari=-?[01]\.\d{4} seconds=")


def test_cli_on_a_descriptor_pickle(grocery: Descriptors, photo_folder: Path, tmp_path) -> None:
    pkl = tmp_path / "type.pickle"
    vectors = dict(zip(grocery.paths, grocery.vectors, strict=True))
    vectors["missing/photo.jpg"] = grocery.vectors[0] * 0.5  # a path that does not exist
    pkl.write_bytes(pickle.dumps(vectors))
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n" + "".join(f"{p},{p.split('/')[0]}\n" for p in grocery.paths))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "analytics", str(pkl), "--out", str(out), "--k", "4"]
    cmd += ["--labels", str(labels), "--image-root", str(photo_folder), "--map-sample", "100"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert LINE.match(last), last
    with open(out / "clusters.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 33
    assert list(rows[0])[:6] == ["path", "cluster", "outlier", "outlier_score", "x", "y"]
    quality = {r["path"]: r["quality"] for r in rows}  # the pixels' flags, read from the root
    assert quality["missing/photo.jpg"] == "unreadable"
    assert sum(1 for p, q in quality.items() if q and p != "missing/photo.jpg") <= 3
    html = (out / "map.html").read_text()
    assert "data:image/jpeg;base64," in html and "http://" not in html and "https://" not in html
    assert (out / "map.png").stat().st_size > 10_000
    assert len(list((out / "sheets").glob("cluster_*.jpg"))) == 4
    assert (out / "sheets" / "outliers.jpg").is_file()


def test_cli_bad_input_says_why(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """The command's ``main`` in this process (a subprocess costs a torch import for a check
    of the input; ``python -m analytics`` itself runs in `test_cli_on_a_descriptor_pickle`)."""
    from analytics.cli import main

    pkl = tmp_path / "bad.pickle"
    pkl.write_bytes(pickle.dumps(["not", "a", "dict"]))
    code = main([str(pkl), "--out", str(tmp_path / "o")])
    assert code == 2 and "not list" in capsys.readouterr().err  # bad input: 2 (core.cli)
    assert not (tmp_path / "o" / "clusters.csv").exists()


@pytest.fixture()
def shop(tmp_path: Path, pipeline):
    settings = offline_settings(tmp_path / "store", sync_interval_s=0.0)
    client = create_app(settings, pipeline=pipeline).test_client()
    return client, JobQueue(settings)


def _add(client, cid: str, item: str, photos: list[Path]) -> None:
    files = [(io.BytesIO(p.read_bytes()), p.name) for p in photos]
    r = client.post(
        f"/v1/catalogs/{cid}/items",
        data={"images": files, "item_id": item},
        content_type="multipart/form-data",
    )
    assert r.status_code == 201, r.json


def test_analytics_job_over_http(shop) -> None:
    client, queue = shop
    cid = client.post("/v1/catalogs", json={"name": "shop", "kind": "products"}).json["id"]
    for item in ("Arla-Standard-Milk", "Banana", "Oatly-Natural-Oatghurt"):
        _add(client, cid, item, sorted((DATA / "grocery" / "queries" / item).iterdir())[:3])
    r = client.post(f"/v1/catalogs/{cid}/analytics", json={"k": 3})
    assert r.status_code == 202 and r.json["state"] == "queued", r.json
    assert r.headers["Location"] == f"/v1/jobs/{r.json['id']}"
    run_job(queue.jobs, r.json["id"], settings=queue.settings)  # the consumer's part
    job = client.get(f"/v1/jobs/{r.json['id']}").json
    assert job["state"] == "done", job
    assert job["result"]["images"] == 9 and job["result"]["clusters"] == 3
    assert {"clusters.csv", "map.png", "map.html", "metrics.json"} <= set(job["files"])
    table = client.get(job["file_urls"]["clusters.csv"])
    assert table.status_code == 200 and table.data.startswith(b"path,cluster,outlier")
    assert table.data.splitlines()[0].endswith(b",quality")  # the catalog's pixels are at hand
    assert client.get(job["file_urls"]["map.png"]).data[:4] == b"\x89PNG"
    # k chosen, at the granularity asked (the console's "Granularity" select)
    for choose_by in ("coarse", "readable"):
        r = client.post(f"/v1/catalogs/{cid}/analytics", json={"choose_by": choose_by})
        assert r.status_code == 202, r.json
        run_job(queue.jobs, r.json["id"], settings=queue.settings)
        job = client.get(f"/v1/jobs/{r.json['id']}").json
        assert job["state"] == "done" and job["result"]["k_chosen_by"].startswith(choose_by)
    r = client.post(f"/v1/catalogs/{cid}/analytics", json={"choose_by": "fewest"})
    assert r.status_code == 422 and "choose_by" in str(r.json)


def test_analytics_job_bad_catalogs(shop) -> None:
    client, queue = shop
    assert client.post("/v1/catalogs/nosuch/analytics", json={}).status_code == 404
    cid = client.post("/v1/catalogs", json={"name": "empty", "kind": "products"}).json["id"]
    assert client.post(f"/v1/catalogs/{cid}/analytics", json={"k": -1}).status_code == 422
    r = client.post(f"/v1/catalogs/{cid}/analytics", json={})
    assert r.status_code == 202
    run_job(queue.jobs, r.json["id"], settings=queue.settings)
    job = client.get(f"/v1/jobs/{r.json['id']}").json
    assert job["state"] == "failed" and "0 embedded image(s)" in job["message"]
    assert job["files"] == []


def test_catalog_quality_lists_flags_and_duplicates(shop, tmp_path: Path) -> None:
    import cv2

    from core.images import encode_jpeg, read_image

    client, _ = shop
    cid = client.post("/v1/catalogs", json={"name": "q", "kind": "products"}).json["id"]
    photo = sorted((DATA / "grocery" / "queries" / "Banana").iterdir())[0]
    dark = tmp_path / "dark.jpg"
    dark.write_bytes(encode_jpeg((read_image(photo) * 0.1).astype("uint8")))
    blurred = tmp_path / "blur.jpg"
    blurred.write_bytes(encode_jpeg(cv2.GaussianBlur(read_image(photo), (0, 0), 6)))
    _add(client, cid, "banana", [photo, dark, blurred])
    _add(client, cid, "banana-copy", [photo])
    r = client.get(f"/v1/catalogs/{cid}/quality")
    assert r.status_code == 200, r.json
    by_item = {}
    for im in r.json["images"]:
        by_item.setdefault(im["item_id"], []).append(im["warnings"])
    assert by_item["banana"][0] == [] and "dark" in by_item["banana"][1]
    assert "blurry" in by_item["banana"][2]
    assert any("duplicate of image" in w and "item banana" in w for w in by_item["banana-copy"][0])
    assert client.get("/v1/catalogs/nosuch/quality").status_code == 404
