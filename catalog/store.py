"""The catalog store: a small key -> bytes interface with compare-and-swap.

Two implementations keep the same keys and pass the same tests: `LocalStore` (a folder, the
embedded default) and `S3Store` (any S3-compatible server through boto3);
`catalog.stores.open_store` builds the one the settings name. Keys look like
``catalogs/<id>/manifest.json``: segments separated by ``/``, validated by `validate_key` so
that no key can leave the store's root.

Errors: a missing key raises `NotFound`; a lost compare-and-swap raises `Conflict`; any
backend failure (OSError, botocore errors, connection errors) raises `StoreUnavailable`.
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass
from typing import BinaryIO

from core.errors import BadInput, NotFound, TooLarge

MAX_KEY_BYTES = 1024  # S3's limit on a key (UTF-8 bytes)
MAX_SEGMENT_BYTES = 255  # common file-name limit of local file systems
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object as a listing sees it.

    Attributes:
        key: the object's key (without any backend prefix).
        size: length in bytes.
        modified: last write time, seconds since the epoch (UTC).
    """

    key: str
    size: int
    modified: float


def _check_segments(text: str, what: str, *, allow_trailing_slash: bool) -> None:
    if not isinstance(text, str):
        raise BadInput(f"store {what} must be a string, got {type(text).__name__}")
    if len(text.encode("utf-8")) > MAX_KEY_BYTES:
        raise BadInput(f"store {what} is longer than {MAX_KEY_BYTES} bytes")
    if _CONTROL.search(text):
        raise BadInput(f"store {what} {text!r} contains a control character (NUL, newline...)")
    if "\\" in text:
        raise BadInput(f"store {what} {text!r} contains a backslash; use '/'")
    if text.startswith("/"):
        raise BadInput(f"store {what} {text!r} is absolute; keys are relative ('a/b')")
    body = text[:-1] if allow_trailing_slash and text.endswith("/") else text
    for segment in body.split("/"):
        if segment in ("", ".", ".."):
            raise BadInput(f"store {what} {text!r} has an empty, '.' or '..' segment")
        if segment.startswith("."):
            # Names starting with '.' are reserved for the local store's temp and lock files.
            raise BadInput(f"store {what} {text!r} has a segment starting with '.'")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise BadInput(f"store {what} {text!r} has a segment over {MAX_SEGMENT_BYTES} bytes")


def validate_key(key: str) -> str:
    """Check that ``key`` is a safe store key and return it unchanged.

    A key is 1-1024 UTF-8 bytes of ``/``-separated segments; no segment is empty, ``.``,
    ``..`` or starts with ``.``; no leading ``/``, backslash, NUL or other control
    character. The same rule holds for every backend so both accept the same keys.

    Raises:
        BadInput: the key breaks one of the rules (the message says which).
    """
    if key == "":
        raise BadInput("store key must not be empty")
    _check_segments(key, "key", allow_trailing_slash=False)
    return key


def validate_prefix(prefix: str) -> str:
    """Check a listing prefix (``""`` or a key start, may end with ``/``); return it.

    Raises:
        BadInput: the prefix could never start a valid key.
    """
    if prefix == "":
        return prefix
    _check_segments(prefix, "prefix", allow_trailing_slash=True)
    return prefix


class Store(abc.ABC):
    """Key -> bytes storage with compare-and-swap; safe to share between threads.

    Etags are opaque strings that change whenever an object's content changes; pass the one
    `get_with_etag` returned to `put_if` to write only if nobody wrote in between.
    """

    @abc.abstractmethod
    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        """Read an object and its current etag.

        Raises:
            NotFound: no object has this key.
            StoreUnavailable: the backend failed.
        """

    @abc.abstractmethod
    def etag(self, key: str) -> str:
        """The current etag of an object without downloading it (a cheap change check).

        Raises:
            NotFound: no object has this key.
        """

    @abc.abstractmethod
    def put(self, key: str, data: bytes) -> str:
        """Write (create or replace) an object atomically; return its new etag."""

    @abc.abstractmethod
    def put_if(self, key: str, data: bytes, *, expected_etag: str | None) -> str:
        """Compare-and-swap: write only if the object is still at ``expected_etag``.

        Args:
            key: the object's key.
            data: the new content.
            expected_etag: the etag the caller read; ``None`` means "only if absent".

        Returns:
            The new etag.

        Raises:
            Conflict: the object is absent, present, or at another version than expected.
            StoreUnavailable: the backend failed (the write may or may not have happened).
        """

    @abc.abstractmethod
    def list_info(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (plain string prefix), sorted by key."""

    @abc.abstractmethod
    def list_children(self, prefix: str) -> list[str]:
        """Names of the immediate children under ``prefix`` (which ends with ``/``), sorted.

        ``list_children("catalogs/")`` returns ``["abc", "def"]`` for keys
        ``catalogs/abc/...`` and ``catalogs/def/...``; it does not walk the whole tree.
        """

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Delete an object; deleting a missing key is not an error (as in S3)."""

    @abc.abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with ``prefix``; return how many were deleted."""

    @abc.abstractmethod
    def check(self) -> None:
        """Raise `StoreUnavailable` unless the store can be reached (a health check)."""

    # --- conveniences on top of the primitives ----------------------------------------
    def get(self, key: str) -> bytes:
        """Read an object.

        Raises:
            NotFound: no object has this key.
        """
        return self.get_with_etag(key)[0]

    def copy_to(self, key: str, out: BinaryIO, *, limit: int | None = None) -> int:
        """Write an object into ``out`` (a binary file) and return its length in bytes.

        This default reads the whole object into memory; both stores override it to copy in
        chunks, so that a large object (a recorded video) never sits in memory at once.

        Raises:
            NotFound: no object has this key.
            TooLarge: the object is longer than ``limit`` bytes (``out`` then holds a prefix).
        """
        data = self.get(key)
        check_copy_limit(key, len(data), limit)
        out.write(data)
        return len(data)

    def exists(self, key: str) -> bool:
        """Whether an object has this key."""
        try:
            self.etag(key)
        except NotFound:
            return False
        return True

    def list(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix`` (plain string prefix, as S3), sorted."""
        return [info.key for info in self.list_info(prefix)]


COPY_CHUNK = 1024 * 1024


def check_copy_limit(key: str, copied: int, limit: int | None) -> None:
    """Raise `TooLarge` once ``copied`` bytes of ``key`` exceed ``limit`` (None: no limit)."""
    if limit is not None and copied > limit:
        raise TooLarge(
            f"store object {key!r} is larger than the limit of {limit} bytes",
            details={"key": key, "limit": limit},
        )


def _children_prefix(prefix: str) -> str:
    validate_prefix(prefix)
    if prefix and not prefix.endswith("/"):
        raise BadInput(f"list_children needs a prefix ending with '/', got {prefix!r}")
    return prefix
