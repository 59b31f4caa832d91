"""The export cache: one folder per exported model, named by what it was exported from.

A folder's name carries the source's sha256 (the weights file, or the files a model was
built from), the ONNX opset, the input shape (``b`` for the dynamic batch axis, ``h``/``w``
for dynamic sides), the precision and `EXPORT_VERSION` (bumped when the export code changes),
so a changed file, opset, shape or precision finds no folder and is exported again.

A folder is written under a temporary name and renamed into place in one step (`publish`),
so a reader never sees a half-written model, and two workers exporting at once both end up
with a complete one (the second rename finds the folder there and its copy is dropped).
Each folder holds ``meta.json``: the key and the sha256 of every file beside it; `lookup`
re-checks both, so a folder that was altered or truncated later (a stale file) is never used:
it is moved aside and exported again.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from weights.registry import sha256_of

log = logging.getLogger(__name__)

#: Bumped whenever the export code changes what a file holds; part of every key.
EXPORT_VERSION = 1
META = "meta.json"


@dataclass(frozen=True)
class ExportKey:
    """What an exported model depends on.

    Attributes:
        stem: a readable name (the weights file's stem, e.g. ``yolov5n``).
        source_sha256: sha256 of the source (`source_digest` for several files).
        opset: the ONNX opset of the export.
        shape: the input shape with symbolic axes, e.g. ``("b", 3, 224, 224)``.
        precision: ``fp32`` or ``int8``.
        runtime: the runtime format (``onnx`` for ONNX Runtime, ``openvino`` for its IR).
    """

    stem: str
    source_sha256: str
    opset: int
    shape: tuple[int | str, ...]
    precision: str
    runtime: str

    @property
    def folder_name(self) -> str:
        """``<stem>-<sha 16>-op<opset>-<shape>-<precision>-<runtime>-v<version>``."""
        stem = re.sub(r"[^A-Za-z0-9_.]+", "_", self.stem)[:40]
        shape = "x".join(str(d) for d in self.shape)
        return (
            f"{stem}-{self.source_sha256[:16]}-op{self.opset}-{shape}-"
            f"{self.precision}-{self.runtime}-v{EXPORT_VERSION}"
        )

    def as_meta(self) -> dict:
        """The key as stored in ``meta.json`` (the full sha256, the version)."""
        return asdict(self) | {"shape": list(self.shape), "export_version": EXPORT_VERSION}


def source_digest(paths: list[Path]) -> str:
    """One sha256 for a model built from several files (a head on its base backbone)."""
    import hashlib

    if len(paths) == 1:
        return sha256_of(paths[0])
    joined = ",".join(sha256_of(p) for p in paths)
    return hashlib.sha256(joined.encode()).hexdigest()


def _read_meta(folder: Path) -> dict | None:
    try:
        return json.loads((folder / META).read_text())
    except (OSError, ValueError):
        return None


def is_valid(folder: Path, key: ExportKey) -> str | None:
    """None when ``folder`` holds a complete export of ``key``, else why not (stale)."""
    meta = _read_meta(folder)
    if meta is None:
        return "no readable meta.json"
    if meta.get("key") != key.as_meta():
        return "meta.json names another source, opset, shape, precision or version"
    for name, digest in (meta.get("files") or {}).items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if sha256_of(path) != digest:
            return f"{name} changed since it was written (sha256 differs)"
    if not meta.get("files"):
        return "meta.json lists no files"
    return None


def lookup(root: Path, key: ExportKey) -> Path | None:
    """The cached export folder of ``key``, or None; a stale folder is moved aside (logged)."""
    folder = root / key.folder_name
    if not folder.exists():
        return None
    reason = is_valid(folder, key)
    if reason is None:
        return folder
    log.warning("ignoring stale export %s: %s; exporting it again", folder, reason)
    discard(folder)
    return None


def discard(folder: Path) -> None:
    """Move a folder out of the way (atomically), then delete it."""
    trash = folder.with_name(f".trash-{folder.name}-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(folder, trash)
    except OSError:
        return  # another worker moved it first
    shutil.rmtree(trash, ignore_errors=True)


def publish(root: Path, key: ExportKey, write: Callable[[Path], list[str]]) -> Path:
    """Export into a temporary folder with ``write(folder) -> file names``, record their
    sha256 in ``meta.json``, then rename the folder into place.

    When another process published the same key meanwhile, its folder is kept and ours is
    dropped; either way the folder returned is complete.

    Raises:
        Whatever ``write`` raises (the temporary folder is removed).
    """
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key.folder_name}-", dir=root))
    try:
        names = write(tmp)
        files = {name: sha256_of(tmp / name) for name in names}
        meta = {"key": key.as_meta(), "files": files}
        (tmp / META).write_text(json.dumps(meta, indent=1))
        final = root / key.folder_name
        try:
            os.rename(tmp, final)  # atomic; fails when the folder exists and is not empty
        except OSError:
            if is_valid(final, key) is not None:  # a stale one in the way: replace it
                discard(final)
                try:
                    os.rename(tmp, final)
                except OSError:  # a third worker published meanwhile
                    if is_valid(final, key) is not None:
                        raise
        return final
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
