"""A catalog's manifest: its items, their images and cached features, and a version.

The manifest (``catalogs/<id>/manifest.json``) is the one document that says what a catalog
holds; data objects (image bytes, feature blobs) exist before the manifest names them, and
an object that no manifest names is an orphan (see `CatalogRepository.gc_orphans`).
``version`` grows by one on every change, so a worker can tell whether its cache is stale.
The JSON carries ``schema``; a newer schema than this code knows is refused, not misread.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.errors import StoreUnavailable
from core.kinds import KINDS, CatalogKind

SCHEMA_VERSION = 1


def utc_now() -> str:
    """The current time as ISO 8601 UTC with microseconds (``2026-11-24T16:40:00.123456+00:00``)."""
    return datetime.now(UTC).isoformat()


@dataclass
class ImageRecord:
    """One stored image of an item.

    Attributes:
        image_id: unique within the catalog.
        key: store key of the image bytes.
        content_type: e.g. ``image/jpeg``.
        width: pixels.
        height: pixels.
        feature_keys: feature kind (``emb.npy``, ``kp.npz``...) -> store key of the blob.
        added_at: ISO 8601 UTC.
    """

    image_id: str
    key: str
    content_type: str
    width: int
    height: int
    feature_keys: dict[str, str] = field(default_factory=dict)
    added_at: str = field(default_factory=utc_now)

    def store_keys(self) -> list[str]:
        """Every store key this image owns (bytes first, then features)."""
        return [self.key, *self.feature_keys.values()]


@dataclass
class Item:
    """A catalog item (one product, one animal) with its metadata and images."""

    item_id: str
    metadata: dict[str, Any] = field(default_factory=dict)
    images: dict[str, ImageRecord] = field(default_factory=dict)

    def store_keys(self) -> list[str]:
        """Every store key the item's images own."""
        return [key for image in self.images.values() for key in image.store_keys()]


@dataclass(frozen=True)
class CalibrationRef:
    """Where a catalog's own score calibration is stored, and what it was fitted on.

    Attributes:
        key: store key of the calibration blob (`matching.calibration.record`'s JSON).
        content_digest: `Manifest.content_digest` of the catalog it was fitted on; another
            digest now means the catalog changed since: the calibration is stale, not used.
        status: ``fitted`` or ``too_small``.
        fitted_at: ISO 8601 UTC.
    """

    key: str
    content_digest: str
    status: str
    fitted_at: str


@dataclass
class Manifest:
    """The state of one catalog.

    Attributes:
        catalog_id: short url-safe id.
        name: display name.
        kind: one of `KINDS`.
        owner: tenant id of the API key that created it.
        created_at: ISO 8601 UTC.
        version: 1 when created, +1 on every change.
        updated_at: ISO 8601 UTC of the last change.
        embedder_fingerprint: the embedding model of every stored vector; set with the
            first image, and an add with another fingerprint is refused.
        verifier_fingerprint: the keypoint model of every cached keypoint file; same rule.
        items: item id -> item.
        calibration: the catalog's own calibration, or None (not fitted yet).
    """

    catalog_id: str
    name: str
    kind: CatalogKind
    owner: str
    created_at: str = field(default_factory=utc_now)
    version: int = 1
    updated_at: str = ""
    embedder_fingerprint: str | None = None
    verifier_fingerprint: str | None = None
    items: dict[str, Item] = field(default_factory=dict)
    calibration: CalibrationRef | None = None

    def __post_init__(self) -> None:
        if not self.updated_at:
            self.updated_at = self.created_at

    # --- queries ----------------------------------------------------------------------
    @property
    def image_count(self) -> int:
        """Number of images over all items."""
        return sum(len(item.images) for item in self.items.values())

    def indexed_with_other(self, fingerprint: str) -> bool:
        """Whether the catalog's vectors were made by another embedder than ``fingerprint``
        (an empty catalog, never indexed, was made by none): search it only after a re-index."""
        return self.embedder_fingerprint not in (None, fingerprint)

    def find_image(self, image_id: str) -> tuple[Item, ImageRecord] | None:
        """The item and record of an image, or None."""
        for item in self.items.values():
            record = item.images.get(image_id)
            if record is not None:
                return item, record
        return None

    def referenced_keys(self) -> set[str]:
        """Every data key (images, features, the calibration) the manifest names."""
        keys = {key for item in self.items.values() for key in item.store_keys()}
        if self.calibration is not None:
            keys.add(self.calibration.key)
        return keys

    def content_digest(self) -> str:
        """A digest of what a calibration of the catalog rests on: its kind, models, items,
        images and their feature blobs (not its name, metadata or calibration)."""
        content = [
            self.kind,
            self.embedder_fingerprint,
            self.verifier_fingerprint,
            sorted(
                [item_id, image_id, sorted(rec.feature_keys.items())]
                for item_id, item in self.items.items()
                for image_id, rec in item.images.items()
            ),
        ]
        return hashlib.sha256(json.dumps(content).encode()).hexdigest()[:24]

    # --- serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with a ``schema`` field."""
        return {
            "schema": SCHEMA_VERSION,
            "catalog_id": self.catalog_id,
            "name": self.name,
            "kind": self.kind,
            "owner": self.owner,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "version": self.version,
            "embedder_fingerprint": self.embedder_fingerprint,
            "verifier_fingerprint": self.verifier_fingerprint,
            "items": {
                item_id: {
                    "metadata": item.metadata,
                    "images": {
                        image_id: {
                            "key": rec.key,
                            "content_type": rec.content_type,
                            "width": rec.width,
                            "height": rec.height,
                            "feature_keys": rec.feature_keys,
                            "added_at": rec.added_at,
                        }
                        for image_id, rec in item.images.items()
                    },
                }
                for item_id, item in self.items.items()
            },
            "calibration": None if self.calibration is None else asdict(self.calibration),
        }

    def to_json(self) -> bytes:
        """UTF-8 JSON bytes (compact, keys in insertion order)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Manifest:
        """Parse `to_dict`'s output.

        Raises:
            StoreUnavailable: the document is not a manifest this code can read (corrupt,
                or written by a newer schema).
        """
        try:
            schema = raw.get("schema")
            if not isinstance(schema, int) or schema > SCHEMA_VERSION or schema < 1:
                raise ValueError(f"schema {schema!r} is newer or invalid (max {SCHEMA_VERSION})")
            kind = raw["kind"]
            if kind not in KINDS:
                raise ValueError(f"kind {kind!r} is not one of {KINDS}")
            items = {
                item_id: Item(
                    item_id=item_id,
                    metadata=dict(item_raw.get("metadata") or {}),
                    images={
                        image_id: ImageRecord(
                            image_id=image_id,
                            key=str(rec["key"]),
                            content_type=str(rec["content_type"]),
                            width=int(rec["width"]),
                            height=int(rec["height"]),
                            feature_keys={str(k): str(v) for k, v in rec["feature_keys"].items()},
                            added_at=str(rec["added_at"]),
                        )
                        for image_id, rec in item_raw["images"].items()
                    },
                )
                for item_id, item_raw in raw["items"].items()
            }
            return cls(
                catalog_id=str(raw["catalog_id"]),
                name=str(raw["name"]),
                kind=kind,
                owner=str(raw["owner"]),
                created_at=str(raw["created_at"]),
                updated_at=str(raw.get("updated_at") or raw["created_at"]),
                version=int(raw["version"]),
                embedder_fingerprint=raw.get("embedder_fingerprint"),
                verifier_fingerprint=raw.get("verifier_fingerprint"),
                items=items,
                calibration=None
                if raw.get("calibration") is None
                else CalibrationRef(**{k: str(v) for k, v in raw["calibration"].items()}),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StoreUnavailable(f"unreadable catalog manifest: {exc!r}") from exc

    @classmethod
    def from_json(cls, data: bytes | str) -> Manifest:
        """Parse `to_json`'s output.

        Raises:
            StoreUnavailable: not valid JSON or not a readable manifest.
        """
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise StoreUnavailable(f"unreadable catalog manifest: not JSON ({exc})") from exc
        if not isinstance(raw, dict):
            raise StoreUnavailable("unreadable catalog manifest: not a JSON object")
        return cls.from_dict(raw)
