"""Camera-trap batches over HTTP: upload a card (a zip or many photos) or name a stored one;
the batch runs as a job (kind ``traps``, `traps.job`) on the task queue.

``POST /v1/traps/batches`` answers 202 with the job; poll ``GET /v1/jobs/<id>`` for its
progress (photos done of the total) and fetch ``results.csv``, ``results.jsonl``,
``animals.jpg``, ``empties.jpg`` and ``photos/<name>.jpg`` from ``.../files/<name>``.
"""

from __future__ import annotations

import shutil
import tempfile

from apiflask import APIBlueprint
from flask import request

from api.auth import caller
from api.inputs import json_body, option
from api.routes.catalogs import needs_reindex, owned_manifest
from api.routes.jobs import job_json, job_queue
from api.schemas import BATCH_FORM, CARDS_PREFIX, BatchJSON, BatchQuery, binary, v1_doc
from api.state import state
from catalog.repository import new_id
from catalog.store import validate_prefix
from core.errors import BadInput, Conflict, Forbidden, UnsupportedMedia
from core.kinds import KINDS
from traps.uploads import UploadLimits, store_files, unpack_zip

bp = APIBlueprint("traps", __name__, tag="Camera traps", url_prefix="/v1/traps")

UPLOADS = "uploads/"  # uploaded cards: uploads/<id>/<photo name>
CARDS = CARDS_PREFIX  # cards an operator copied into the store (aws s3 sync ...)
ZIP_TYPES = ("application/zip", "application/x-zip-compressed")


BATCH_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {"schema": BATCH_FORM},
        "application/zip": binary(),
        "application/json": {"schema": BatchJSON},
    },
}


def _options() -> dict:
    """The batch's options, checked (unknown or foreign catalog / label set: 404)."""
    s = state()
    params: dict = {}
    for name in ("catalog", "labels"):
        value = option(name, str, None)
        if value:
            manifest = owned_manifest(value)
            if name == "catalog" and needs_reindex(manifest):
                raise Conflict(f"catalog {value!r} was indexed with another embedder: re-index it")
            params[name] = value
    kind = option("kind", str, "animals")
    if kind not in KINDS:
        raise BadInput(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    params["kind"] = kind
    params["threshold"] = option("threshold", float, s.settings.det_conf, lo=0.0, hi=1.0)
    params["top_k"] = option("top_k", int, 3, lo=1, hi=20)
    params["verify"] = option("verify", bool, True)
    params["draw"] = option("draw", bool, True)
    return params


def _named_prefix() -> str:
    """The ``cards/...`` prefix a JSON body names (an operator's act, as a stored video)."""
    if state().settings.auth_enabled and not caller().admin:
        raise Forbidden("naming a stored card needs an admin key; upload the photos instead")
    prefix = json_body().get("prefix")
    if not isinstance(prefix, str) or not prefix.startswith(CARDS):
        raise BadInput(f'JSON body must be {{"prefix": "{CARDS}..."}}, a card in the store')
    prefix = validate_prefix(prefix if prefix.endswith("/") else prefix + "/")
    if not state().repository.store.list(prefix):
        raise BadInput(f"no photos under {prefix!r} in the store")
    return prefix


def _store_upload(limits: UploadLimits) -> tuple[str, dict]:
    """Store the request's photos under a new ``uploads/<id>/``; returns it and the upload's
    summary. Nothing stays stored when the upload is refused."""
    store = state().repository.store
    prefix = f"{UPLOADS}{new_id()}/"

    def put(name: str, data: bytes) -> None:
        store.put(prefix + name, data)

    ctype = (request.mimetype or "").lower()
    try:
        if ctype == "multipart/form-data":
            archive = request.files.get("archive")
            photos = [f for f in request.files.getlist("photos") if f.filename or f.mimetype]
            if archive is None and not photos:
                raise BadInput("multipart body has no 'photos' files and no 'archive' zip")
            upload = store_files([(f.filename, f.read) for f in photos], put, limits)
            if archive is not None:
                more = unpack_zip(archive.stream, put, limits)
                upload.names += more.names
                upload.skipped += more.skipped
                upload.bytes += more.bytes
        elif ctype in ZIP_TYPES:
            upload = unpack_zip(_spool(), put, limits)
        elif not ctype and not request.content_length:
            raise BadInput("empty body: send a zip, multipart photos, or JSON naming a card")
        else:
            raise UnsupportedMedia(
                f"content type {ctype or 'none'!r}: send application/zip, multipart/form-data "
                "('photos' files, 'archive' zip) or application/json {\"prefix\": ...}"
            )
        if not upload.names and not upload.skipped:
            raise BadInput("the upload holds no photos")
    except BaseException:
        store.delete_prefix(prefix)
        raise
    return prefix, {"photos": len(upload.names), "skipped": upload.skipped, "bytes": upload.bytes}


def _spool():
    """The raw request body in a temp file (a zip needs to seek)."""
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the caller's zip reader
    shutil.copyfileobj(request.stream, spool, 1024 * 1024)
    if spool.tell() == 0:
        raise BadInput("empty body: send the zip of the card's photos")
    spool.seek(0)
    return spool


@bp.post("/batches")
@bp.input(BatchQuery, location="query", arg_name="query")
@v1_doc(
    bp,
    "start_trap_batch",
    {
        403: "naming a stored card needs an admin key",
        404: "no such catalog or label set (or another tenant's)",
        409: "the catalog was indexed with another embedder",
        413: "over SIGHTING_MAX_BATCH_BYTES or SIGHTING_MAX_BATCH_PHOTOS, or a zip bomb",
        415: "not a zip, multipart or JSON body",
        422: "not a zip, a member name that leaves its folder, no photos, bad option",
    },
    body=BATCH_BODY,
    responses={202: {"description": "The job, queued (Location: /v1/jobs/<id>)"}},
)
def start_batch(query: dict):
    """Start a camera-trap batch over a card's photos; answers 202 with the job.

    Body: ``application/zip`` (the card zipped), ``multipart/form-data`` (``photos`` files
    and/or one ``archive`` zip), or ``application/json`` ``{"prefix": "cards/..."}`` naming
    photos already in the store. Options (query, form or JSON): ``labels`` (a label set),
    ``catalog`` (known individuals), ``kind``, ``threshold``, ``top_k``, ``verify``, ``draw``.
    Poll ``GET /v1/jobs/<id>``; its files are ``results.csv`` (one row per detection),
    ``results.jsonl``, ``animals.jpg``, ``empties.jpg``, ``photos/<name>.jpg``. Zip members
    whose data is corrupt are skipped and noted as rows with an ``error``.
    """
    s = state()
    request.max_content_length = s.settings.max_batch_bytes  # a card, not a frame
    params = _options()
    limits = UploadLimits(s.settings.max_batch_bytes, s.settings.max_batch_photos)
    if request.is_json:
        prefix, upload = _named_prefix(), None
    else:
        prefix, upload = _store_upload(limits)
        params["skipped"] = upload["skipped"]
    record = job_queue().submit("traps", params | {"prefix": prefix}, owner=caller().tenant)
    body = job_json(record) | ({"upload": upload} if upload else {})
    return body, 202, {"Location": f"/v1/jobs/{record.job_id}"}
