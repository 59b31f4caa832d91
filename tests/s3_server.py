"""A real S3 HTTP server on 127.0.0.1 for tests (moto's ThreadedMotoServer), reusable anywhere.

Use the ``moto_s3`` fixture of ``tests/catalog/conftest.py`` or, in another test folder::

    from tests.s3_server import running_moto_s3

    @pytest.fixture(scope="session")
    def moto_s3():
        with running_moto_s3() as server:
            yield server

``server.store_settings(settings)`` returns settings with ``storage="s3"`` pointing at it;
``server.new_bucket()`` makes a fresh empty bucket so tests do not see each other's keys.
Nothing leaves 127.0.0.1: the credentials are dummies and the endpoint is explicit.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

REGION = "us-east-1"
ACCESS_KEY = "testing"  # moto accepts any credentials
SECRET_KEY = "testing"


@dataclass
class MotoS3:
    """A running moto S3 server: its endpoint URL and a default bucket."""

    endpoint_url: str
    bucket: str
    _counter: Iterator[int] = field(default_factory=itertools.count, repr=False)
    _client: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def client(self) -> Any:
        """A boto3 S3 client for this server (dummy credentials, 127.0.0.1 only): one per
        server, built on first use (a client is thread-safe; building one costs ~0.2 s)."""
        import boto3

        with self._lock:
            if self._client is None:
                self._client = boto3.session.Session().client(
                    "s3",
                    endpoint_url=self.endpoint_url,
                    region_name=REGION,
                    aws_access_key_id=ACCESS_KEY,
                    aws_secret_access_key=SECRET_KEY,
                )
            return self._client

    def new_bucket(self) -> str:
        """Create and return a fresh, empty bucket."""
        name = f"test-{os.getpid()}-{next(self._counter)}"
        self.client().create_bucket(Bucket=name)
        return name

    def store_settings(self, settings: Any, *, bucket: str | None = None, prefix: str = "") -> Any:
        """``settings`` switched to this S3 server (``storage="s3"``)."""
        return settings.model_copy(
            update={
                "storage": "s3",
                "s3_bucket": bucket or self.bucket,
                "s3_prefix": prefix,
                "s3_region": REGION,
                "s3_endpoint_url": self.endpoint_url,
                "s3_access_key_id": ACCESS_KEY,
                "s3_secret_access_key": SECRET_KEY,
            }
        )


@contextmanager
def running_moto_s3(bucket: str = "sighting-test") -> Iterator[MotoS3]:
    """Start moto's S3 server on 127.0.0.1 (a free port), create ``bucket``, stop on exit."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        s3 = MotoS3(endpoint_url=f"http://{host}:{port}", bucket=bucket)
        s3.client().create_bucket(Bucket=bucket)
        yield s3
    finally:
        server.stop()
