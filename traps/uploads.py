"""A card's photos uploaded over HTTP: a zip archive or many files, checked and stored.

The batch route (`api.routes.traps`) writes each photo into the store under a fresh prefix
(``uploads/<id>/``) before the job is queued, so a worker on any host reads them
(`traps.sources.StorePrefixSource`). Nothing here decodes images: a photo that is not one is
noted by the batch, like a bad file on a card.

Refused with a clear error (nothing stored): not a zip, a member name that would leave the
folder (``../x``, ``/etc/x``, ``C:\\x``), encrypted members, more files or more bytes than the
limits, and zip bombs (a member expanding more than ``max_ratio`` times). A member whose data
is corrupt (bad CRC) is skipped and named in the answer, as an unreadable photo is.
"""

from __future__ import annotations

import re
import unicodedata
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from catalog.store import MAX_SEGMENT_BYTES
from core.errors import BadInput, TooLarge

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")
CHUNK = 1024 * 1024
BOMB_MIN_BYTES = 10 * 1024 * 1024  # below this a high ratio is harmless (a blank PNG)


@dataclass(frozen=True)
class UploadLimits:
    """What one upload may hold.

    Attributes:
        max_bytes: total bytes of the photos, uncompressed.
        max_files: photos in one upload.
        max_ratio: the largest expansion of a zip member of ``BOMB_MIN_BYTES`` or more.
    """

    max_bytes: int
    max_files: int
    max_ratio: float = 100.0


@dataclass
class Upload:
    """What an upload stored: the photo names, and the members skipped with why."""

    names: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    bytes: int = 0


def photo_name(name: str) -> str | None:
    """The store-safe relative name of an uploaded file, or None for a file to leave out
    (folders, ``__MACOSX/``, hidden files such as ``.DS_Store``).

    Raises:
        BadInput: the name is absolute, has a drive, a ``..`` segment or a control character
            (path traversal: the whole upload is refused).
    """
    raw = name.replace("\\", "/")
    if _CONTROL.search(raw):
        raise BadInput(f"upload member {name!r} has a control character in its name")
    if raw.startswith("/") or _DRIVE.match(raw):
        raise BadInput(f"upload member {name!r} is an absolute path: refused (path traversal)")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BadInput(f"upload member {name!r} leaves its folder ('..'): refused")
    if raw.endswith("/") or not parts or parts[0] == "__MACOSX":
        return None
    if any(p.startswith(".") for p in parts):
        return None
    parts = [unicodedata.normalize("NFC", p) for p in parts]
    for p in parts:
        if len(p.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise BadInput(f"upload member {name!r}: a name part is over {MAX_SEGMENT_BYTES} bytes")
    return "/".join(parts)


def _unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    n = 2
    while f"{stem}-{n}{dot}{ext}" in taken:
        n += 1
    return f"{stem}-{n}{dot}{ext}"


def _check_totals(count: int, total: int, limits: UploadLimits) -> None:
    if count > limits.max_files:
        raise TooLarge(f"the upload holds {count} files; at most {limits.max_files} per batch")
    if total > limits.max_bytes:
        raise TooLarge(
            f"the upload expands to {total} bytes; at most {limits.max_bytes} per batch "
            "(SIGHTING_MAX_BATCH_BYTES)"
        )


def unpack_zip(
    archive: BinaryIO, put: Callable[[str, bytes], None], limits: UploadLimits
) -> Upload:
    """Check a zip archive whole, then ``put(name, bytes)`` each photo in it.

    Args:
        archive: a seekable binary file.
        put: stores one photo.
        limits: file count, total size, expansion ratio.

    Raises:
        BadInput: not a zip, an encrypted member, a member name that leaves the folder.
        TooLarge: too many files, too many bytes, a zip bomb.
    """
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise BadInput(f"the upload is not a readable zip archive ({exc})") from None
    with zf:
        members: list[tuple[str, zipfile.ZipInfo]] = []
        for info in zf.infolist():
            name = photo_name(info.filename)
            if name is None or info.is_dir():
                continue
            if info.flag_bits & 0x1:
                raise BadInput(f"zip member {info.filename!r} is encrypted: upload it unencrypted")
            if info.file_size >= BOMB_MIN_BYTES and info.file_size > limits.max_ratio * max(
                1, info.compress_size
            ):
                raise TooLarge(
                    f"zip member {info.filename!r} expands {info.file_size} bytes from "
                    f"{info.compress_size}: refused as a zip bomb"
                )
            members.append((name, info))
        _check_totals(len(members), sum(i.file_size for _, i in members), limits)
        upload, taken = Upload(), set()
        for name, info in members:
            try:
                data = _read_member(zf, info)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
                upload.skipped.append({"file": name, "error": f"corrupt zip member: {exc}"})
                continue
            name = _unique(name, taken)
            taken.add(name)
            put(name, data)
            upload.names.append(name)
            upload.bytes += len(data)
        return upload


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes, never more than its declared size (zipfile stops there and checks
    the CRC at the end)."""
    parts, size = [], 0
    with zf.open(info) as f:
        while chunk := f.read(CHUNK):
            size += len(chunk)
            if size > info.file_size:
                raise TooLarge(f"zip member {info.filename!r} is longer than it declares")
            parts.append(chunk)
    return b"".join(parts)


def store_files(
    files: Sequence[tuple[str, Callable[[], bytes]]],
    put: Callable[[str, bytes], None],
    limits: UploadLimits,
) -> Upload:
    """``put`` each (file name, read) of a multipart upload under a store-safe unique name.

    The request body itself is capped at ``limits.max_bytes`` (the route sets Flask's
    limit), so only the file count is checked before anything is stored.

    Raises:
        BadInput: a file name that leaves the folder. TooLarge: too many files.
    """
    chosen, taken = [], set()
    for i, (filename, read) in enumerate(files):
        name = photo_name(filename or f"photo-{i + 1}")
        if name is None:
            continue
        name = _unique(name, taken)
        taken.add(name)
        chosen.append((name, read))
    _check_totals(len(chosen), 0, limits)
    upload = Upload()
    for name, read in chosen:
        data = read()
        put(name, data)
        upload.names.append(name)
        upload.bytes += len(data)
    return upload
