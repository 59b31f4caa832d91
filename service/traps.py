"""Camera-trap batches: a card (uploaded photos, a zip, or a card already in the store) run as
a job (kind ``traps``, `traps.job`) on the task queue."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from catalog.repository import new_id
from catalog.store import validate_prefix
from core.errors import BadInput, Conflict, Forbidden
from jobs import JobRecord
from service.access import Caller, needs_reindex, owned_manifest
from service.jobs import submit_job
from service.options import BatchOptions
from service.sightings import wants_keep
from service.state import SightingState
from traps.uploads import UploadLimits, store_files, unpack_zip

UPLOADS = "uploads/"  # uploaded cards: uploads/<id>/<photo name>
CARDS = "cards/"  # cards an operator copied into the store (aws s3 sync ...)


@dataclass
class UploadedCard:
    """A card sent with the request: photo files (name, read) and/or one seekable zip."""

    photos: list[tuple[str, Callable[[], bytes]]] = field(default_factory=list)
    archive: BinaryIO | None = None


@dataclass(frozen=True)
class StoredCard:
    """A card an operator put in the store, named by its ``cards/...`` prefix."""

    prefix: str


@dataclass
class Batch:
    """A queued batch: its job, and what the upload stored (None for a stored card)."""

    job: JobRecord
    upload: dict | None  # {"photos", "skipped", "bytes"}


def _check_catalogs(s: SightingState, caller: Caller, options: BatchOptions) -> None:
    """404 for an unknown or foreign catalog or label set; 409 for a catalog of known
    individuals indexed with another embedder."""
    for name, value in (("catalog", options.catalog), ("labels", options.labels)):
        if value:
            manifest = owned_manifest(s, caller, value)
            if name == "catalog" and needs_reindex(s, manifest):
                raise Conflict(f"catalog {value!r} was indexed with another embedder: re-index it")


def _stored_prefix(s: SightingState, caller: Caller, card: StoredCard) -> str:
    if s.settings.auth_enabled and not caller.admin:
        raise Forbidden("naming a stored card needs an admin key; upload the photos instead")
    prefix = card.prefix
    if not isinstance(prefix, str) or not prefix.startswith(CARDS):
        raise BadInput(f'JSON body must be {{"prefix": "{CARDS}..."}}, a card in the store')
    prefix = validate_prefix(prefix if prefix.endswith("/") else prefix + "/")
    if not s.repository.store.list(prefix):
        raise BadInput(f"no photos under {prefix!r} in the store")
    return prefix


def _store_card(s: SightingState, card: UploadedCard) -> tuple[str, dict]:
    """Store an uploaded card under a new ``uploads/<id>/``; returns it and the upload's
    summary. Nothing stays stored when the upload is refused."""
    store = s.repository.store
    limits = UploadLimits(s.settings.max_batch_bytes, s.settings.max_batch_photos)
    prefix = f"{UPLOADS}{new_id()}/"

    def put(name: str, data: bytes) -> None:
        store.put(prefix + name, data)

    try:
        upload = store_files(card.photos, put, limits)
        if card.archive is not None:
            more = unpack_zip(card.archive, put, limits)
            upload.names += more.names
            upload.skipped += more.skipped
            upload.bytes += more.bytes
        if not upload.names and not upload.skipped:
            raise BadInput("the upload holds no photos")
    except BaseException:
        store.delete_prefix(prefix)
        raise
    return prefix, {"photos": len(upload.names), "skipped": upload.skipped, "bytes": upload.bytes}


def start_batch(
    s: SightingState,
    caller: Caller,
    options: BatchOptions,
    card: Callable[[], UploadedCard | StoredCard],
) -> Batch:
    """Queue a camera-trap batch over a card. ``card()`` reads the card from the request
    (called once the options' catalogs are checked)."""
    _check_catalogs(s, caller, options)
    if options.prompts:
        s.check_clip()  # 409 naming SIGHTING_CLIP (the job's consumer reads the same setting)
    params = options.params()
    # sightings are kept of a catalog's matches (asked for, or every answer: the setting);
    # without a catalog of known individuals no animal is matched, so none is kept
    params["keep"] = bool(options.catalog) and wants_keep(s, options.keep)
    source = card()
    if isinstance(source, StoredCard):
        prefix, upload = _stored_prefix(s, caller, source), None
    else:
        prefix, upload = _store_card(s, source)
        params["skipped"] = upload["skipped"]
    return Batch(submit_job(s, caller, "traps", params | {"prefix": prefix}), upload)
