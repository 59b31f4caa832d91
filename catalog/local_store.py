"""A folder as the catalog store (the embedded default, ``SIGHTING_STORAGE=local``).

Key ``a/b/c`` is the file ``<root>/a/b/c``. Writes are atomic (temp file in the same folder,
fsync, ``os.replace``, fsync of the folder), so a reader sees the old or the new content,
never a torn file. Compare-and-swap and every other write run under an exclusive
``fcntl.flock`` on one of a fixed set of lock files (``<root>/.locks/NN.lock``, chosen by
the key's hash), which serialises processes on one host (gunicorn workers) as well as
threads (each call opens its own descriptor). flock is not reliable on network file
systems: several hosts need the S3 store. Etags are content hashes (blake2b-128).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from catalog.store import (
    COPY_CHUNK,
    ObjectInfo,
    Store,
    _children_prefix,
    check_copy_limit,
    validate_key,
    validate_prefix,
)
from core.errors import Conflict, NotFound, StoreUnavailable

LOCK_DIR = ".locks"
LOCK_STRIPES = 64  # lock files; keys hash onto them (bounded file count, little contention)
TMP_SUFFIX = ".tmp"


def content_etag(data: bytes) -> str:
    """Etag of a local object: blake2b-128 of its bytes, hex (32 chars)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _unavailable(action: str, key: str, exc: OSError) -> StoreUnavailable:
    return StoreUnavailable(
        f"local store: cannot {action} {key!r}: {exc.strerror or exc}",
        details={"key": key, "errno": exc.errno},
    )


class LocalStore(Store):
    """The store in a local folder; the folder is created on the first write.

    Args:
        root: the folder (``SIGHTING_DATA_DIR``).
        fsync: flush files and folders to disk before a write returns (durability of an
            answered upload); tests may switch it off for speed.
    """

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.fsync = fsync

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    # --- paths and locks --------------------------------------------------------------
    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        stripe = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=2).digest()) % (
            LOCK_STRIPES
        )
        lock_dir = self.root / LOCK_DIR
        try:
            lock_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_dir / f"{stripe:02d}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _unavailable("lock", key, exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _fsync_dir(self, folder: Path) -> None:
        if not self.fsync:
            return
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _write(self, key: str, path: Path, data: bytes) -> None:
        """Atomically replace ``path`` with ``data`` (caller holds the key's lock)."""
        for attempt in range(3):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(
                    dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX
                )
                break
            except FileNotFoundError:  # a concurrent delete pruned the empty folder
                if attempt == 2:
                    raise
            except (NotADirectoryError, FileExistsError) as exc:
                raise Conflict(
                    f"local store: cannot write {key!r}: a part of its path is an object",
                    details={"key": key},
                ) from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                if self.fsync:
                    os.fsync(handle.fileno())
            os.replace(tmp, path)
        except IsADirectoryError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise Conflict(
                f"local store: cannot write {key!r}: it is a prefix of other objects",
                details={"key": key},
            ) from exc
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._fsync_dir(path.parent)

    def _read(self, key: str, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise NotFound(f"no object {key!r} in the store", details={"key": key}) from exc

    # --- the interface ----------------------------------------------------------------
    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        path = self._path(key)
        try:
            data = self._read(key, path)
        except OSError as exc:
            raise _unavailable("read", key, exc) from exc
        return data, content_etag(data)

    def etag(self, key: str) -> str:
        return self.get_with_etag(key)[1]

    def copy_to(self, key: str, out: BinaryIO, *, limit: int | None = None) -> int:
        path = self._path(key)
        copied = 0
        try:
            with path.open("rb") as f:
                while chunk := f.read(COPY_CHUNK):
                    copied += len(chunk)
                    check_copy_limit(key, copied, limit)
                    out.write(chunk)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise NotFound(f"no object {key!r} in the store", details={"key": key}) from exc
        except OSError as exc:
            raise _unavailable("read", key, exc) from exc
        return copied

    def put(self, key: str, data: bytes) -> str:
        path = self._path(key)
        data = bytes(data)
        with self._locked(key):
            try:
                self._write(key, path, data)
            except OSError as exc:
                raise _unavailable("write", key, exc) from exc
        return content_etag(data)

    def put_if(self, key: str, data: bytes, *, expected_etag: str | None) -> str:
        path = self._path(key)
        data = bytes(data)
        with self._locked(key):
            try:
                try:
                    current = content_etag(self._read(key, path))
                except NotFound:
                    current = None
                if current != expected_etag:
                    raise Conflict(
                        f"store object {key!r} changed: expected "
                        f"{'absent' if expected_etag is None else expected_etag}, found "
                        f"{'absent' if current is None else current}",
                        details={"key": key, "expected": expected_etag, "current": current},
                    )
                self._write(key, path, data)
            except OSError as exc:
                raise _unavailable("write", key, exc) from exc
        return content_etag(data)

    def list_info(self, prefix: str = "") -> list[ObjectInfo]:
        validate_prefix(prefix)
        folder_part = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        top = self.root.joinpath(*folder_part.split("/")) if folder_part else self.root
        found: list[ObjectInfo] = []
        try:
            for dirpath, dirnames, filenames in os.walk(top, onerror=_raise):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                rel = Path(dirpath).relative_to(self.root).as_posix()
                base = "" if rel == "." else rel + "/"
                for name in filenames:
                    key = base + name
                    if name.startswith(".") or not key.startswith(prefix):
                        continue
                    try:
                        st = os.stat(os.path.join(dirpath, name))
                    except FileNotFoundError:  # deleted while we walked
                        continue
                    found.append(ObjectInfo(key, st.st_size, st.st_mtime))
        except FileNotFoundError:
            return []
        except NotADirectoryError:
            return []
        except OSError as exc:
            raise _unavailable("list", prefix, exc) from exc
        found.sort(key=lambda info: info.key)
        return found

    def list_children(self, prefix: str) -> list[str]:
        _children_prefix(prefix)
        folder = self.root.joinpath(*prefix.rstrip("/").split("/")) if prefix else self.root
        try:
            with os.scandir(folder) as entries:
                return sorted(e.name for e in entries if not e.name.startswith("."))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise _unavailable("list", prefix, exc) from exc

    def delete(self, key: str) -> None:
        path = self._path(key)
        with self._locked(key):
            try:
                path.unlink()
            except (FileNotFoundError, NotADirectoryError):
                return
            except IsADirectoryError:
                return  # a "folder" is not an object
            except OSError as exc:
                raise _unavailable("delete", key, exc) from exc
        self._prune(path.parent)

    def delete_prefix(self, prefix: str) -> int:
        count = 0
        for info in self.list_info(prefix):
            path = self._path(info.key)
            with self._locked(info.key):
                try:
                    path.unlink()
                    count += 1
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise _unavailable("delete", info.key, exc) from exc
            self._prune(path.parent)
        return count

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK | os.X_OK):
                raise PermissionError(errno.EACCES, "not writable", str(self.root))
        except OSError as exc:
            raise _unavailable("use the folder", str(self.root), exc) from exc

    def _prune(self, folder: Path) -> None:
        """Remove empty folders from ``folder`` up to (not including) the root."""
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:  # not empty, gone, or busy: stop
                return
            folder = folder.parent


def _raise(exc: OSError) -> None:
    raise exc
