"""Camera-trap batches over HTTP: upload a card (a zip or many photos) or name a stored one;
the batch runs as a job (kind ``traps``, `traps.job`) on the task queue.

``POST /v1/traps/batches`` answers 202 with the job; poll ``GET /v1/jobs/<id>`` for its
progress (photos done of the total) and fetch ``results.csv``, ``results.jsonl``,
``animals.jpg``, ``empties.jpg`` and ``photos/<name>.jpg`` from ``.../files/<name>``.
"""

from __future__ import annotations

import shutil
import tempfile
from functools import wraps

from apiflask import APIBlueprint
from flask import request

from api.auth import caller
from api.inputs import json_body
from api.options import options
from api.schemas import BATCH_FORM, BatchJSON, BatchOptionsIn, binary, v1_doc
from api.serialise import job_json
from api.state import state
from core.errors import BadInput, UnsupportedMedia
from service import traps
from service.options import BatchOptions

bp = APIBlueprint("traps", __name__, tag="Camera traps", url_prefix="/v1/traps")

ZIP_TYPES = ("application/zip", "application/x-zip-compressed")

BATCH_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {"schema": BATCH_FORM},
        "application/zip": binary(),
        "application/json": {"schema": BatchJSON},
    },
}


def _card_limit(view):
    """Raise the request's body limit to a card's (SIGHTING_MAX_BATCH_BYTES), before anything
    (the options loader too) reads the body."""

    @wraps(view)
    def limited(*args, **kwargs):
        request.max_content_length = state().settings.max_batch_bytes  # a card, not a frame
        return view(*args, **kwargs)

    return limited


def _card() -> traps.UploadedCard | traps.StoredCard:
    """The card the request holds: a JSON body naming a stored one, multipart photos and/or
    a zip, or a raw zip."""
    if request.is_json:
        return traps.StoredCard(json_body().get("prefix"))
    ctype = (request.mimetype or "").lower()
    if ctype == "multipart/form-data":
        archive = request.files.get("archive")
        photos = [f for f in request.files.getlist("photos") if f.filename or f.mimetype]
        if archive is None and not photos:
            raise BadInput("multipart body has no 'photos' files and no 'archive' zip")
        return traps.UploadedCard(
            [(f.filename, f.read) for f in photos], archive.stream if archive else None
        )
    if ctype in ZIP_TYPES:
        return traps.UploadedCard(archive=_spool())
    if not ctype and not request.content_length:
        raise BadInput("empty body: send a zip, multipart photos, or JSON naming a card")
    raise UnsupportedMedia(
        f"content type {ctype or 'none'!r}: send application/zip, multipart/form-data "
        "('photos' files, 'archive' zip) or application/json {\"prefix\": ...}"
    )


def _spool():
    """The raw request body in a temp file (a zip needs to seek)."""
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the caller's zip reader
    shutil.copyfileobj(request.stream, spool, 1024 * 1024)
    if spool.tell() == 0:
        raise BadInput("empty body: send the zip of the card's photos")
    spool.seek(0)
    return spool


@bp.post("/batches")
@_card_limit
@options(bp, BatchOptionsIn)
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
def start_batch(opts: BatchOptions):
    """Start a camera-trap batch over a card's photos; answers 202 with the job.

    Body: ``application/zip`` (the card zipped), ``multipart/form-data`` (``photos`` files
    and/or one ``archive`` zip), or ``application/json`` ``{"prefix": "cards/..."}`` naming
    photos already in the store. Options (query, form or JSON): ``labels`` (a label set),
    ``catalog`` (known individuals), ``kind``, ``threshold``, ``top_k``, ``verify``, ``draw``.
    Poll ``GET /v1/jobs/<id>``; its files are ``results.csv`` (one row per detection),
    ``results.jsonl``, ``animals.jpg``, ``empties.jpg``, ``photos/<name>.jpg``. Zip members
    whose data is corrupt are skipped and noted as rows with an ``error``.
    """
    batch = traps.start_batch(state(), caller(), opts, _card)
    body = job_json(batch.job) | ({"upload": batch.upload} if batch.upload else {})
    return body, 202, {"Location": f"/v1/jobs/{batch.job.job_id}"}
