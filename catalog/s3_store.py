"""S3 (or any S3-compatible server) as the catalog store (``SIGHTING_STORAGE=s3``).

Keys are stored under an optional prefix in one bucket. Compare-and-swap uses S3's
conditional writes: ``PutObject`` with ``IfNoneMatch='*'`` (create only if absent) or
``IfMatch=<etag>`` (replace only that version); the server answers 412 PreconditionFailed
(or 409 ConditionalRequestConflict during a concurrent write) when another writer won.
AWS S3 has supported both since late 2024, as do moto (checked: 5.2.5) and MinIO; a server
that ignores the headers would silently lose updates: `S3Store.probe_conditional_writes`
checks that once at start-up.

The boto3 client is built lazily on first use (constructors touch nothing) and rebuilt in a
forked child (gunicorn workers), with short connect timeouts and few retries so that an
unreachable server fails fast with `StoreUnavailable`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

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

if TYPE_CHECKING:
    from core.settings import Settings

_MISSING = {"NoSuchKey", "NotFound", "404"}
_LOST_RACE = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
_DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys


@dataclass(frozen=True)
class S3Config:
    """Where and how to reach the bucket; defaults suit a service that must fail fast."""

    bucket: str
    prefix: str = ""  # keys live under "<prefix>/" when set
    region: str = "us-east-1"
    endpoint_url: str | None = None  # any S3-compatible server; None = AWS
    access_key_id: str | None = None  # None = boto3's default credential chain
    secret_access_key: str | None = None
    connect_timeout_s: float = 2.0  # per connection attempt
    read_timeout_s: float = 10.0  # per socket read
    max_attempts: int = 3  # total tries per call (botocore "standard" retry mode)
    addressing_style: str = "auto"  # "path" for most S3-compatible servers (set when endpoint)

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Config:
        """The ``SIGHTING_S3_*`` settings as a config."""
        return cls(
            bucket=settings.s3_bucket,
            prefix=settings.s3_prefix,
            region=settings.s3_region,
            endpoint_url=settings.s3_endpoint_url,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            addressing_style="path" if settings.s3_endpoint_url else "auto",
        )


_SHARED: tuple[int, Any] | None = None  # (pid, boto3 Session) for clients with explicit keys
_SHARED_LOCK = threading.Lock()


def _new_client(boto3: Any, cfg: S3Config, botocore_config: Any) -> Any:
    """A boto3 S3 client. With explicit keys, clients share this process's session: a fresh
    session loads botocore's service model again (~0.2 s a client); a session is not
    thread-safe (its clients are), so clients are built from it under a lock, and a forked
    child builds its own. Without keys (boto3's default credential chain) each client gets a
    fresh session, which resolves the credentials anew."""
    global _SHARED
    kwargs = dict(
        endpoint_url=cfg.endpoint_url,
        aws_access_key_id=cfg.access_key_id,
        aws_secret_access_key=cfg.secret_access_key,
        config=botocore_config,
    )
    if not (cfg.access_key_id and cfg.secret_access_key):
        return boto3.session.Session().client("s3", **kwargs)
    pid = os.getpid()
    with _SHARED_LOCK:
        if _SHARED is None or _SHARED[0] != pid:
            _SHARED = (pid, boto3.session.Session())
        return _SHARED[1].client("s3", **kwargs)


def _error_code(exc: Exception) -> tuple[str, int]:
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


class S3Store(Store):
    """The store in an S3 bucket.

    Args:
        config: bucket, prefix, endpoint, credentials and timeouts.
    """

    def __init__(self, config: S3Config) -> None:
        self.config = config
        prefix = config.prefix.strip("/")
        validate_prefix(prefix)
        self._base = prefix + "/" if prefix else ""
        self._client: Any = None
        self._client_pid: int | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        where = self.config.endpoint_url or "aws"
        return f"S3Store(bucket={self.config.bucket!r}, prefix={self._base!r}, endpoint={where!r})"

    # --- client and errors ------------------------------------------------------------
    @property
    def client(self) -> Any:
        """The boto3 S3 client (built on first use, rebuilt after a fork)."""
        pid = os.getpid()
        if self._client is None or self._client_pid != pid:
            with self._lock:
                if self._client is None or self._client_pid != pid:
                    self._client = self._build_client()
                    self._client_pid = pid
        return self._client

    def _build_client(self) -> Any:
        import boto3
        from botocore.config import Config

        cfg = self.config
        botocore_config = Config(
            region_name=cfg.region,
            connect_timeout=cfg.connect_timeout_s,
            read_timeout=cfg.read_timeout_s,
            retries={"total_max_attempts": cfg.max_attempts, "mode": "standard"},
            s3={"addressing_style": cfg.addressing_style},
            # S3-compatible servers often reject the CRC checksums newer botocore adds.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        return _new_client(boto3, cfg, botocore_config)

    def _key(self, key: str) -> str:
        return self._base + validate_key(key)

    def _unavailable(self, action: str, key: str, exc: Exception) -> StoreUnavailable:
        code, status = _error_code(exc)
        where = f"s3://{self.config.bucket}/{self._base}{key}"
        if code == "NoSuchBucket":
            reason = f"bucket {self.config.bucket!r} does not exist"
        elif code in {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
            reason = f"access refused ({code}): check SIGHTING_S3_ACCESS_KEY_ID / SECRET"
        elif code:
            reason = f"{code} (HTTP {status}): {exc}"
        else:
            reason = f"{type(exc).__name__}: {exc}"
        endpoint = self.config.endpoint_url or "AWS"
        return StoreUnavailable(
            f"S3 store ({endpoint}): cannot {action} {where}: {reason}",
            details={"key": key, "code": code or type(exc).__name__},
        )

    def _call(self, action: str, key: str, fn: str, **kwargs: Any) -> Any:
        """Run one client call, mapping every failure to `NotFound` or `StoreUnavailable`."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, fn)(Bucket=self.config.bucket, **kwargs)
        except ClientError as exc:
            code, status = _error_code(exc)
            if (code in _MISSING or status == 404) and code != "NoSuchBucket":
                raise NotFound(f"no object {key!r} in the store", details={"key": key}) from exc
            raise self._unavailable(action, key, exc) from exc
        except (BotoCoreError, OSError) as exc:
            raise self._unavailable(action, key, exc) from exc

    # --- the interface ----------------------------------------------------------------
    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        from botocore.exceptions import BotoCoreError

        response = self._call("read", key, "get_object", Key=self._key(key))
        try:
            data = response["Body"].read()
        except (BotoCoreError, OSError) as exc:
            raise self._unavailable("read", key, exc) from exc
        finally:
            response["Body"].close()
        return data, response["ETag"]

    def etag(self, key: str) -> str:
        return self._call("stat", key, "head_object", Key=self._key(key))["ETag"]

    def copy_to(self, key: str, out: BinaryIO, *, limit: int | None = None) -> int:
        from botocore.exceptions import BotoCoreError

        response = self._call("read", key, "get_object", Key=self._key(key))
        check_copy_limit(key, int(response.get("ContentLength") or 0), limit)
        copied = 0
        try:
            for chunk in response["Body"].iter_chunks(COPY_CHUNK):
                copied += len(chunk)
                check_copy_limit(key, copied, limit)
                out.write(chunk)
        except (BotoCoreError, OSError) as exc:
            raise self._unavailable("read", key, exc) from exc
        finally:
            response["Body"].close()
        return copied

    def put(self, key: str, data: bytes) -> str:
        response = self._call("write", key, "put_object", Key=self._key(key), Body=bytes(data))
        return response["ETag"]

    def put_if(self, key: str, data: bytes, *, expected_etag: str | None) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        condition = {"IfNoneMatch": "*"} if expected_etag is None else {"IfMatch": expected_etag}
        try:
            response = self.client.put_object(
                Bucket=self.config.bucket, Key=self._key(key), Body=bytes(data), **condition
            )
        except ClientError as exc:
            code, status = _error_code(exc)
            # IfMatch on a missing key answers 404: the expected version is gone, a lost race.
            if code in _LOST_RACE or status in (409, 412) or code in _MISSING:
                raise Conflict(
                    f"store object {key!r} changed: expected "
                    f"{'absent' if expected_etag is None else expected_etag} ({code})",
                    details={"key": key, "expected": expected_etag},
                ) from exc
            raise self._unavailable("write", key, exc) from exc
        except (BotoCoreError, OSError) as exc:
            raise self._unavailable("write", key, exc) from exc
        return response["ETag"]

    def _pages(self, prefix: str, **extra: Any) -> Iterator[dict]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            paginator = self.client.get_paginator("list_objects_v2")
            yield from paginator.paginate(
                Bucket=self.config.bucket, Prefix=self._base + prefix, **extra
            )
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._unavailable("list", prefix, exc) from exc

    def list_info(self, prefix: str = "") -> list[ObjectInfo]:
        validate_prefix(prefix)
        cut = len(self._base)
        found = [
            ObjectInfo(obj["Key"][cut:], int(obj["Size"]), obj["LastModified"].timestamp())
            for page in self._pages(prefix)
            for obj in page.get("Contents", [])
        ]
        found.sort(key=lambda info: info.key)
        return found

    def list_children(self, prefix: str) -> list[str]:
        _children_prefix(prefix)
        cut = len(self._base) + len(prefix)
        names: set[str] = set()
        for page in self._pages(prefix, Delimiter="/"):
            names.update(p["Prefix"][cut:].rstrip("/") for p in page.get("CommonPrefixes", []))
            names.update(obj["Key"][cut:] for obj in page.get("Contents", []))
        return sorted(n for n in names if n)

    def delete(self, key: str) -> None:
        try:
            self._call("delete", key, "delete_object", Key=self._key(key))
        except NotFound:
            return

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            response = self._call(
                "delete",
                prefix,
                "delete_objects",
                Delete={"Objects": [{"Key": self._base + k} for k in batch], "Quiet": True},
            )
            errors = response.get("Errors", [])
            if errors:
                first = errors[0]
                raise StoreUnavailable(
                    f"S3 store: could not delete {len(errors)} of {len(batch)} objects under "
                    f"{prefix!r}, e.g. {first.get('Key')}: {first.get('Code')} "
                    f"{first.get('Message')}",
                    details={"prefix": prefix},
                )
        return len(keys)

    def check(self) -> None:
        try:
            self._call("reach the bucket", "", "head_bucket")
        except NotFound as exc:  # HeadBucket has no body: a bare 404 means no bucket
            raise StoreUnavailable(
                f"S3 store ({self.config.endpoint_url or 'AWS'}): bucket "
                f"{self.config.bucket!r} does not exist",
                details={"code": "NoSuchBucket"},
            ) from exc

    def probe_conditional_writes(self) -> None:
        """Check that the server honours conditional writes (create-if-absent twice).

        Writes and deletes one object under ``<prefix>/.probe/``; call once at start-up.

        Raises:
            StoreUnavailable: the server ignored ``If-None-Match`` (compare-and-swap would
                silently lose updates) or could not be reached.
        """
        key = f".probe/{uuid.uuid4().hex}"
        full = self._base + key
        bucket = self.config.bucket
        try:
            self._call("write", key, "put_object", Key=full, Body=b"1", IfNoneMatch="*")
            try:
                self.client.put_object(Bucket=bucket, Key=full, Body=b"2", IfNoneMatch="*")
            except Exception as exc:
                code, status = _error_code(exc)
                if code in _LOST_RACE or status in (409, 412):
                    return
                raise self._unavailable("write", key, exc) from exc
            raise StoreUnavailable(
                f"S3 store ({self.config.endpoint_url or 'AWS'}): the server ignores "
                "conditional writes (If-None-Match); catalogs cannot be updated safely there",
                details={"key": key},
            )
        finally:
            with contextlib.suppress(NotFound, StoreUnavailable):
                self._call("delete", key, "delete_object", Key=full)
