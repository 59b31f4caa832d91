"""Record the service's answers to the README's curl walk-through and to a set of bad requests,
to compare the wire format before and after a change of the API edge (issue 25).

    python -m tests.api.wire_record out/wire-before.json
    python -m tests.api.wire_record out/wire-after.json
    diff out/wire-before.json out/wire-after.json

Each answer is kept as its status, content type and JSON body, with what differs from run to
run (ids, timestamps, timings, the worker's pid) replaced by placeholders and floats rounded.
Real models and real grocery photos (tests/api/conftest.py); a temporary local store.
"""

from __future__ import annotations

import base64
import io
import json
import re
import sys
import tempfile
from pathlib import Path

from api import create_app
from matching.engine import load_pipeline
from tests.api.conftest import ITEMS, catalog_photo, query_photo
from tests.conftest import offline_settings

_VOLATILE = {
    "created_at",
    "updated_at",
    "added_at",
    "timings",
    "worker",
    "fitted_at",
    "started_at",
    "finished_at",
    "heartbeat_at",
    "last_seen",
    "idle_s",
}


def _normal(value, ids: dict[str, str]):
    if isinstance(value, dict):
        return {k: ("<volatile>" if k in _VOLATILE else _normal(v, ids)) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v, ids) for v in value]
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, str):
        for real, name in ids.items():
            value = value.replace(real, name)
        return re.sub(r"\b[0-9a-f]{24,}\b", "<hex>", value)
    return value


def record(path: Path) -> None:
    tmp = Path(tempfile.mkdtemp())
    settings = offline_settings(tmp, sync_interval_s=0.0, calibration_refit=False)
    app = create_app(settings, pipeline=load_pipeline(settings))
    client = app.test_client()
    ids: dict[str, str] = {}
    answers: list[dict] = []

    def call(name: str, method: str, url: str, **kw):
        for real, placeholder in ids.items():
            url = url.replace(placeholder, real)
        r = client.open(url, method=method, **kw)
        body = r.get_json(silent=True)
        if body is None:
            body = f"<{len(r.data)} bytes>" if r.data else ""
        answers.append(
            {
                "name": name,
                "status": r.status_code,
                "type": r.mimetype,
                "body": _normal(body, ids),
            }
        )
        return r

    jpeg = {"content_type": "image/jpeg"}
    milk, oat, juice = ITEMS
    # --- the README's walk-through
    r = call("create", "POST", "/v1/catalogs", json={"name": "shop", "kind": "products"})
    ids[r.json["id"]] = "<CID>"
    call(
        "add milk",
        "POST",
        "/v1/catalogs/<CID>/items",
        data={
            "item_id": "arla-milk",
            "metadata": '{"name": "Arla standard milk 1 l"}',
            "images": (io.BytesIO(catalog_photo(milk)), "milk.jpg"),
        },
        content_type="multipart/form-data",
    )
    r = call(
        "add oat",
        "POST",
        "/v1/catalogs/<CID>/items",
        data={"item_id": "oatly", "images": (io.BytesIO(catalog_photo(oat)), "oat.jpg")},
        content_type="multipart/form-data",
    )
    b64 = base64.b64encode(catalog_photo(juice)).decode()
    r = call("add juice json", "POST", "/v1/catalogs/<CID>/items", json={"images": [b64]})
    if r.status_code == 201:
        ids[r.json["item_id"]] = "<JUICE>"
        for i, image_id in enumerate(r.json["image_ids"]):
            ids[image_id] = f"<JUICE_IMAGE_{i}>"
    call(
        "add refuse",
        "POST",
        "/v1/catalogs/<CID>/items?refuse=blurry,near_duplicate",
        data={"item_id": "oat-2", "images": (io.BytesIO(catalog_photo(oat)), "oat.jpg")},
        content_type="multipart/form-data",
    )
    photo = query_photo(milk)
    call("detect", "POST", "/v1/catalogs/<CID>/detect?top_k=3", data=photo, **jpeg)
    call("detect noverify", "POST", "/v1/catalogs/<CID>/detect?verify=false", data=photo, **jpeg)
    call("search", "POST", "/v1/catalogs/<CID>/search?top_k=20", data=photo, **jpeg)
    call(
        "search json opts",
        "POST",
        "/v1/catalogs/<CID>/search",
        json={"image": base64.b64encode(photo).decode(), "top_k": 2, "min_score": 0.0},
    )
    call(
        "detect form opts",
        "POST",
        "/v1/catalogs/<CID>/detect",
        data={"image": (io.BytesIO(photo), "q.jpg"), "top_k": "2", "verify": "true"},
        content_type="multipart/form-data",
    )
    call("items", "GET", "/v1/catalogs/<CID>/items")
    call("catalog", "GET", "/v1/catalogs/<CID>")
    call("catalogs", "GET", "/v1/catalogs")
    call("item", "GET", "/v1/catalogs/<CID>/items/arla-milk")
    call("patch", "PATCH", "/v1/catalogs/<CID>/items/arla-milk", json={"metadata": {"a": 1}})
    call(
        "explain png",
        "POST",
        "/v1/catalogs/<CID>/matches/explain?item_id=arla-milk",
        data=photo,
        **jpeg,
    )
    call(
        "explain json",
        "POST",
        "/v1/catalogs/<CID>/matches/explain?item_id=arla-milk&format=json",
        data=photo,
        **jpeg,
    )
    call("frame 0", "POST", "/v1/catalogs/<CID>/streams/cam-1/frames", data=photo, **jpeg)
    call("frame 1", "POST", "/v1/catalogs/<CID>/streams/cam-1/frames", data=photo, **jpeg)
    call(
        "frame back",
        "POST",
        "/v1/catalogs/<CID>/streams/cam-1/frames?frame_index=0",
        data=photo,
        **jpeg,
    )
    call("streams", "GET", "/v1/streams")
    call("close stream", "DELETE", "/v1/catalogs/<CID>/streams/cam-1")
    call("close again", "DELETE", "/v1/catalogs/<CID>/streams/cam-1")
    call("healthz", "GET", "/healthz")
    call("info", "GET", "/v1/info")
    r = call("analytics", "POST", "/v1/catalogs/<CID>/analytics", json={"k": 0})
    if r.status_code == 202:
        ids[r.json["id"]] = "<JOB>"
    call("job", "GET", "/v1/jobs/<JOB>")
    call("job file early", "GET", "/v1/jobs/<JOB>/files/clusters.csv")
    call("quality", "GET", "/v1/catalogs/<CID>/quality")
    # --- bad requests
    call("bad catalog body", "POST", "/v1/catalogs", json={"name": ""})
    call("bad catalog key", "POST", "/v1/catalogs", json={"name": "x", "colour": 1})
    call("catalog not json", "POST", "/v1/catalogs", data="x", content_type="text/plain")
    call("unknown catalog", "GET", "/v1/catalogs/nope")
    call("unknown item", "GET", "/v1/catalogs/<CID>/items/nope")
    call("unknown route", "GET", "/v1/nothing")
    call("wrong method", "PUT", "/v1/catalogs")
    call("detect top_k 0", "POST", "/v1/catalogs/<CID>/detect?top_k=0", data=photo, **jpeg)
    call("detect top_k x", "POST", "/v1/catalogs/<CID>/detect?top_k=x", data=photo, **jpeg)
    call("detect verify", "POST", "/v1/catalogs/<CID>/detect?verify=nope", data=photo, **jpeg)
    call("detect classes", "POST", "/v1/catalogs/<CID>/detect?classes=zzz", data=photo, **jpeg)
    call("detect labels", "POST", "/v1/catalogs/<CID>/detect?labels=a%20b", data=photo, **jpeg)
    call("detect min_score", "POST", "/v1/catalogs/<CID>/detect?min_score=2", data=photo, **jpeg)
    call("detect empty", "POST", "/v1/catalogs/<CID>/detect", data=b"", **jpeg)
    call("detect corrupt", "POST", "/v1/catalogs/<CID>/detect", data=b"notajpeg", **jpeg)
    call("detect text", "POST", "/v1/catalogs/<CID>/detect", data="x", content_type="text/plain")
    call("detect json no image", "POST", "/v1/catalogs/<CID>/detect", json={"top_k": 3})
    call("detect json bad b64", "POST", "/v1/catalogs/<CID>/detect", json={"image": "@@"})
    call("detect json empty", "POST", "/v1/catalogs/<CID>/detect", json={"image": ""})
    call("detect json list", "POST", "/v1/catalogs/<CID>/detect", json=[1])
    call("detect unknown cat", "POST", "/v1/catalogs/nope/detect", data=photo, **jpeg)
    call("search top_k big", "POST", "/v1/catalogs/<CID>/search?top_k=100000", data=photo, **jpeg)
    call("explain no item", "POST", "/v1/catalogs/<CID>/matches/explain", data=photo, **jpeg)
    call(
        "explain unknown item",
        "POST",
        "/v1/catalogs/<CID>/matches/explain?item_id=zzz",
        data=photo,
        **jpeg,
    )
    call(
        "explain bad format",
        "POST",
        "/v1/catalogs/<CID>/matches/explain?item_id=arla-milk&format=gif",
        data=photo,
        **jpeg,
    )
    call(
        "explain bad box",
        "POST",
        "/v1/catalogs/<CID>/matches/explain?item_id=arla-milk&box=1,2,3",
        data=photo,
        **jpeg,
    )
    call(
        "add item exists",
        "POST",
        "/v1/catalogs/<CID>/items",
        data={"item_id": "arla-milk", "images": (io.BytesIO(catalog_photo(milk)), "m.jpg")},
        content_type="multipart/form-data",
    )
    call(
        "add bad metadata",
        "POST",
        "/v1/catalogs/<CID>/items",
        data={"metadata": "{no", "images": (io.BytesIO(catalog_photo(milk)), "m.jpg")},
        content_type="multipart/form-data",
    )
    call(
        "add json metadata list",
        "POST",
        "/v1/catalogs/<CID>/items",
        json={"images": [b64], "metadata": [1]},
    )
    call(
        "add json item_id int",
        "POST",
        "/v1/catalogs/<CID>/items",
        json={"images": [b64], "item_id": 5},
    )
    call("add no images", "POST", "/v1/catalogs/<CID>/items", json={"item_id": "x"})
    call("add refuse bad", "POST", "/v1/catalogs/<CID>/items?refuse=zzz", json={"images": [b64]})
    call("patch bad", "PATCH", "/v1/catalogs/<CID>/items/arla-milk", json={"metadata": 3})
    call("frame bad id", "POST", "/v1/catalogs/<CID>/streams/a%20b/frames", data=photo, **jpeg)
    call(
        "frame bad index",
        "POST",
        "/v1/catalogs/<CID>/streams/cam-2/frames?frame_index=-1",
        data=photo,
        **jpeg,
    )
    call("analytics bad", "POST", "/v1/catalogs/<CID>/analytics", json={"k": 2.5})
    call("analytics unknown", "POST", "/v1/catalogs/nope/analytics", json={})
    call("job unknown", "GET", "/v1/jobs/nope")
    call("video text", "POST", "/v1/catalogs/<CID>/videos", data="x", content_type="text/plain")
    call("video empty", "POST", "/v1/catalogs/<CID>/videos", data=b"", content_type="video/mp4")
    call("video bad key", "POST", "/v1/catalogs/<CID>/videos", json={"key": "../etc"})
    call(
        "video stride",
        "POST",
        "/v1/catalogs/<CID>/videos?stride=0",
        data=b"x",
        content_type="video/mp4",
    )
    call("batch text", "POST", "/v1/traps/batches", data="x", content_type="text/plain")
    call("batch empty", "POST", "/v1/traps/batches", data=b"", content_type="application/zip")
    call(
        "batch kind",
        "POST",
        "/v1/traps/batches?kind=fish",
        data=b"",
        content_type="application/zip",
    )
    call(
        "batch top_k",
        "POST",
        "/v1/traps/batches?top_k=21",
        data=b"",
        content_type="application/zip",
    )
    call(
        "batch catalog",
        "POST",
        "/v1/traps/batches?catalog=nope",
        data=b"",
        content_type="application/zip",
    )
    call("delete image unknown", "DELETE", "/v1/catalogs/<CID>/items/arla-milk/images/nope")
    call("delete item", "DELETE", "/v1/catalogs/<CID>/items/oatly")
    call("delete", "DELETE", "/v1/catalogs/<CID>")
    call("after delete", "GET", "/v1/catalogs/<CID>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(answers, indent=1, sort_keys=True) + "\n")
    print(f"{len(answers)} answers -> {path}")


if __name__ == "__main__":
    record(Path(sys.argv[1] if len(sys.argv) > 1 else "out/wire.json"))
