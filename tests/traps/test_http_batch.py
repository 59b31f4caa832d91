"""Camera-trap batches over HTTP: upload (zip, files) or a stored card, the job, its files;
the bad uploads (path traversal, zip bombs, not a zip, empty); a killed worker resumes."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest
from flask.testing import FlaskClient

import traps.job  # noqa: F401 - registers the "traps" kind in this process (run_job below)
from api import create_app
from api.auth import tenant_of
from catalog.local_store import LocalStore
from core.errors import BadInput, TooLarge
from core.images import list_images
from jobs import JobQueue
from jobs.runner import run_job
from tests.conftest import offline_settings
from tests.jobs.conftest import Consumers, wait_for
from traps.uploads import UploadLimits, photo_name, unpack_zip

ALICE, BOB, ADMIN = "alice-key", "bob-key", "admin-key"
DOGS = ("1095", "1100", "1157")  # query photos in which yolov5n finds the dog


def _dog(data_dir: Path, item: str) -> bytes:
    return list_images(data_dir / "dogs" / "queries" / item)[0].read_bytes()


@pytest.fixture(scope="module")
def card(data_dir: Path) -> dict[str, bytes]:
    """A small card: three dogs, two grocery shelves (no animal), a truncated JPEG, a note."""
    photos = {f"DCIM/100/IMG_{i:04d}.JPG": _dog(data_dir, d) for i, d in enumerate(DOGS)}
    for i, p in enumerate(list_images(data_dir / "grocery" / "queries" / "_none")[:2]):
        photos[f"DCIM/100/IMG_{10 + i:04d}.JPG"] = p.read_bytes()
    photos["DCIM/100/IMG_0099.JPG"] = photos["DCIM/100/IMG_0000.JPG"][:3000]
    photos["notes.txt"] = b"card 3, north ridge"
    return photos


def _zip(members: dict[str, bytes], **kwargs) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, **kwargs) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture()
def app(tmp_path: Path, pipeline):
    settings = offline_settings(
        tmp_path / "store", api_keys=[ALICE, BOB], admin_keys=[ADMIN], sync_interval_s=0.0
    )
    return create_app(settings, pipeline=pipeline), settings


def _post(client: FlaskClient, key: str = ALICE, query: str = "", **kwargs):
    return client.post(f"/v1/traps/batches{query}", headers={"X-API-Key": key}, **kwargs)


def _label_set(client: FlaskClient, data_dir: Path) -> str:
    """A label set (dog, banana) stored as a catalog through the API."""
    r = client.post("/v1/catalogs", json={"name": "labels"}, headers={"X-API-Key": ALICE})
    catalog_id = r.json["id"]
    none = list_images(data_dir / "dogs" / "queries" / "_none")
    sets = {
        "dog": [p for p in none if p.name.split("__")[0] not in DOGS][::9][:3],
        "banana": list_images(data_dir / "grocery" / "queries" / "Banana")[:3],
    }
    for label, paths in sets.items():
        files = [(io.BytesIO(p.read_bytes()), p.name) for p in paths]
        r = client.post(
            f"/v1/catalogs/{catalog_id}/items",
            data={"item_id": label, "images": files},
            headers={"X-API-Key": ALICE},
            content_type="multipart/form-data",
        )
        assert r.status_code == 201, r.json
    return catalog_id


def test_zip_upload_runs_to_results(app, card, data_dir: Path) -> None:
    flask_app, settings = app
    client = flask_app.test_client()
    labels = _label_set(client, data_dir)
    broken = _zip(card)
    r = _post(
        client, query=f"?labels={labels}&draw=true", data=broken, content_type="application/zip"
    )
    assert r.status_code == 202, r.json
    job_id = r.json["id"]
    assert r.headers["Location"] == f"/v1/jobs/{job_id}"
    assert r.json["state"] == "queued" and r.json["upload"]["photos"] == len(card)
    assert _post(client, BOB, query=f"?labels={labels}", data=broken).status_code in (404, 415)

    queue = JobQueue(settings)
    done = run_job(queue.jobs, job_id, settings=queue.settings)  # the consumer's work
    assert done is not None and done.state == "done", done
    assert done.result["photos"] == len(card) and done.result["with_animal"] >= 2
    assert done.result["errors"] == 2  # the truncated JPEG and the note
    assert {"results.csv", "results.jsonl", "animals.jpg", "empties.jpg"} <= set(done.files)
    assert any(f.startswith("photos/") for f in done.files)

    head = {"X-API-Key": ALICE}
    job = client.get(f"/v1/jobs/{job_id}", headers=head).json
    assert job["progress"] == {"done": len(card), "total": len(card)}
    rows = list(
        csv.DictReader(io.StringIO(client.get(job["file_urls"]["results.csv"], headers=head).text))
    )
    assert {"file", "animal_present", "confidence", "box", "label", "label_probability",
            "item_id", "score", "verified"} <= set(rows[0])  # fmt: skip
    by_file = {row["file"]: row for row in rows}
    assert set(by_file) == set(card)
    dogs = [by_file[f"DCIM/100/IMG_{i:04d}.JPG"] for i in range(len(DOGS))]
    assert sum(row["animal_present"] == "true" for row in dogs) >= 2
    assert all(row["label"] == "dog" for row in dogs if row["animal_present"] == "true")
    assert by_file["DCIM/100/IMG_0099.JPG"]["error"] and by_file["notes.txt"]["error"]
    sheet = client.get(job["file_urls"]["animals.jpg"], headers=head)
    assert sheet.status_code == 200 and sheet.data[:3] == b"\xff\xd8\xff"
    assert client.get(f"/v1/jobs/{job_id}", headers={"X-API-Key": BOB}).status_code == 404


def test_multipart_photos_and_archive(app, card) -> None:
    client = app[0].test_client()
    names = sorted(card)[:2]
    data = {
        "photos": [(io.BytesIO(card[n]), n.split("/")[-1]) for n in names],
        "archive": (io.BytesIO(_zip({"more/a.jpg": card[names[0]]})), "card.zip"),
        "threshold": "0.3",
        "verify": "false",
    }
    r = _post(client, data=data, content_type="multipart/form-data")
    assert r.status_code == 202, r.json
    assert r.json["upload"]["photos"] == 3
    record = JobQueue(app[1]).get(r.json["id"])
    assert record.params["threshold"] == 0.3 and record.params["verify"] is False
    store = LocalStore(app[1].data_dir)
    stored = store.list(record.params["prefix"])
    assert sorted(k.split("/", 2)[2] for k in stored) == sorted(
        [n.split("/")[-1] for n in names] + ["more/a.jpg"]
    )


def test_a_stored_card_is_an_operators_act(app, card) -> None:
    client = app[0].test_client()
    store = LocalStore(app[1].data_dir)
    for name, data in card.items():
        store.put(f"cards/ridge/{name}", data)
    assert _post(client, json={"prefix": "cards/ridge/"}).status_code == 403
    r = _post(client, ADMIN, json={"prefix": "cards/ridge", "top_k": 2})
    assert r.status_code == 202, r.json
    assert JobQueue(app[1]).get(r.json["id"]).params["prefix"] == "cards/ridge/"
    for body in ({"prefix": "catalogs/"}, {"prefix": "cards/../catalogs/"}, {"prefix": 3}):
        assert _post(client, ADMIN, json=body).status_code == 422
    assert _post(client, ADMIN, json={"prefix": "cards/nothing/"}).status_code == 422


@pytest.mark.parametrize(
    ("body", "ctype", "status", "message"),
    [
        (b"", "application/zip", 422, "empty body"),
        (b"PK\x03\x04 not really", "application/zip", 422, "not a readable zip"),
        (b"hello", "text/plain", 415, "content type"),
        (b"", None, 422, "empty body"),
        ("traversal", "application/zip", 422, "leaves its folder"),
        ("absolute", "application/zip", 422, "absolute path"),
        ("bomb", "application/zip", 413, "zip bomb"),
        ("nothing", "application/zip", 422, "no photos"),
    ],
)
def test_bad_uploads_are_refused_and_nothing_stays(
    app, card, body, ctype, status: int, message: str
) -> None:
    client = app[0].test_client()
    photo = next(iter(card.values()))
    bodies = {
        "traversal": _zip({"ok.jpg": photo, "../../etc/cron.d/x": b"x"}),
        "absolute": _zip({"/etc/passwd": b"x"}),
        "bomb": _zip({"a.jpg": photo, "zeros.jpg": b"\0" * (40 * 1024 * 1024)}),
        "nothing": _zip({"__MACOSX/._a.jpg": b"x", ".DS_Store": b"x"}),
    }
    data = bodies.get(body, body)
    kwargs = {"data": data} | ({"content_type": ctype} if ctype else {})
    r = _post(client, **kwargs)
    assert r.status_code == status, r.json
    assert message in r.json["error"]["message"]
    assert LocalStore(app[1].data_dir).list("uploads/") == []


def test_unknown_or_foreign_label_set_and_catalog(app, data_dir: Path) -> None:
    client = app[0].test_client()
    labels = _label_set(client, data_dir)
    zipped = _zip({"a.jpg": _dog(data_dir, DOGS[0])})
    for query, key in ((f"?labels={labels}", BOB), ("?catalog=nosuch", ALICE)):
        r = _post(client, key, query=query, data=zipped, content_type="application/zip")
        assert r.status_code == 404, r.json
    r = _post(client, query="?kind=plants", data=zipped, content_type="application/zip")
    assert r.status_code == 422
    assert _post(client, "wrong", data=zipped, content_type="application/zip").status_code == 401


def test_zip_checks() -> None:
    limits = UploadLimits(max_bytes=10_000, max_files=3)
    stored: dict[str, bytes] = {}
    up = unpack_zip(
        io.BytesIO(_zip({"a/b.jpg": b"1", "a\\c.jpg": b"2", "./d.jpg": b"3", "a/": b""})),
        stored.__setitem__,
        limits,
    )
    assert sorted(up.names) == ["a/b.jpg", "a/c.jpg", "d.jpg"] and up.skipped == []
    with pytest.raises(TooLarge, match="at most 3"):
        unpack_zip(
            io.BytesIO(_zip({f"{i}.jpg": b"x" for i in range(4)})), stored.__setitem__, limits
        )
    with pytest.raises(TooLarge, match="expands to"):
        unpack_zip(io.BytesIO(_zip({"big.jpg": b"x" * 20_000})), stored.__setitem__, limits)
    for name, match in (
        ("C:\\x.jpg", "absolute"),
        ("a/../../x.jpg", "leaves"),
        ("a\nb", "control"),
    ):
        with pytest.raises(BadInput, match=match):
            photo_name(name)
    assert photo_name(".hidden/x.jpg") is None and photo_name("__MACOSX/a.jpg") is None


def test_encrypted_and_corrupt_members() -> None:
    limits = UploadLimits(max_bytes=10**6, max_files=10)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("good.jpg", b"G" * 100)
        zf.writestr("bad.jpg", b"B" * 100)
    data = bytearray(buf.getvalue())
    data[data.index(b"B" * 100) + 50] ^= 0xFF  # a flipped bit: the CRC no longer matches
    stored: dict[str, bytes] = {}
    up = unpack_zip(io.BytesIO(bytes(data)), stored.__setitem__, limits)
    assert up.names == ["good.jpg"] and stored == {"good.jpg": b"G" * 100}
    assert up.skipped[0]["file"] == "bad.jpg" and "corrupt" in up.skipped[0]["error"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("secret.jpg", b"x")
    data = bytearray(buf.getvalue())
    data[data.index(b"PK\x01\x02") + 8] |= 0x1  # the central directory: "encrypted"
    with pytest.raises(BadInput, match="encrypted"):
        unpack_zip(io.BytesIO(bytes(data)), stored.__setitem__, limits)


def test_killed_worker_resumes_the_batch(
    tmp_path: Path, consumers: Consumers, data_dir: Path
) -> None:
    """A consumer killed mid-batch: the next attempt starts from the checkpoint, and every
    photo is in the results exactly once."""
    settings = offline_settings(
        tmp_path / "store", job_heartbeat_s=0.3, job_timeout_s=8.0, job_modules=["traps.job"]
    )
    store = LocalStore(settings.data_dir)
    photos = [
        p
        for kind in ("dogs", "grocery")
        for d in sorted((data_dir / kind / "queries").iterdir())[:80]
        for p in list_images(d)[:1]
    ]
    for i, p in enumerate(photos):
        store.put(f"uploads/card1/IMG_{i:04d}.JPG", p.read_bytes())
    queue = JobQueue(settings)
    params = {"prefix": "uploads/card1/", "kind": "animals", "draw": False}
    record = queue.submit("traps", params, owner=tenant_of(ALICE))
    first = consumers.start(settings)
    wait_for(queue, record.job_id, lambda r: r.done >= 5, timeout_s=120)
    consumers.kill(first)
    consumers.start(settings)
    done = wait_for(queue, record.job_id, lambda r: r.finished, timeout_s=180)
    assert done.state == "done", (done, consumers.logs())
    assert done.attempt == 2 and done.result["done_before"] >= 1, (done.result, consumers.logs())
    assert done.result["processed"] + done.result["done_before"] == len(photos)
    lines = queue.file(record.job_id, "results.jsonl").decode().splitlines()
    files = [json.loads(line)["file"] for line in lines]
    assert sorted(files) == sorted(set(files)) and len(files) == len(photos)


def test_keep_makes_sightings_of_the_known_individuals(app, card, data_dir: Path) -> None:
    """``keep=true`` with a catalog of known individuals: each matched animal of the card is
    kept as a sighting to review, its source the photo's file (without a catalog nothing is
    matched, so nothing is kept)."""
    flask_app, settings = app
    client = flask_app.test_client()
    head = {"X-API-Key": ALICE}
    r = client.post("/v1/catalogs", json={"name": "pack", "kind": "animals"}, headers=head)
    cid = r.json["id"]
    for dog in DOGS:
        files = [(io.BytesIO(p.read_bytes()), p.name) for p in list_images(
            data_dir / "dogs" / "catalog" / dog)]  # fmt: skip
        r = client.post(
            f"/v1/catalogs/{cid}/items",
            data={"item_id": dog, "images": files},
            headers=head,
            content_type="multipart/form-data",
        )
        assert r.status_code == 201, r.json
    photos = {k: v for k, v in card.items() if k < "DCIM/100/IMG_0003.JPG"}  # the three dogs
    r = _post(client, query="?keep=true", data=_zip(photos), content_type="application/zip")
    assert r.status_code == 202  # no catalog: nothing is matched, so nothing will be kept
    no_catalog = run_job(JobQueue(settings).jobs, r.json["id"], settings=settings)
    assert no_catalog is not None and no_catalog.state == "done"
    assert not no_catalog.params["keep"]
    r = _post(
        client,
        query=f"?catalog={cid}&keep=true&verify=false",
        data=_zip(photos),
        content_type="application/zip",
    )
    assert r.status_code == 202, r.json
    queue = JobQueue(settings)
    done = run_job(queue.jobs, r.json["id"], settings=queue.settings)
    assert done is not None and done.state == "done", done
    listing = client.get(f"/v1/catalogs/{cid}/sightings?state=unreviewed", headers=head).json
    kept = listing["sightings"]
    assert kept, "no animal of the card was kept"
    assert {s["source"]["kind"] for s in kept} == {"trap"}
    assert {s["source"]["file_name"] for s in kept} <= set(photos)
    assert all(s["candidates"] and s["candidates"][0]["item_id"] in DOGS for s in kept)
    foreign = client.get(f"/v1/catalogs/{cid}/sightings", headers={"X-API-Key": BOB})
    assert foreign.status_code == 404
