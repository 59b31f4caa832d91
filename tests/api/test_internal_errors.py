"""A server bug is a 500 in the one error shape with a log line, never a 422: an unexpected
exception, or `core.errors.InternalError` (an internal invariant that failed, e.g.
`detection.detections` or `matching.result` handed inconsistent arrays)."""

from __future__ import annotations

import logging

import pytest

from core.errors import InternalError
from tests.api.conftest import ITEMS, query_photo


@pytest.mark.parametrize(
    "error",
    [ValueError("boxes (3, 4) but scores (2,)"), InternalError("matches out of order")],
)
def test_an_internal_failure_is_500_with_one_shape(client, catalog, monkeypatch, caplog, error):
    pipeline = client.application.extensions["sighting"].pipeline

    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(pipeline, "match_frames", broken)
    with caplog.at_level(logging.ERROR, logger="api.errors"):
        r = client.post(
            f"/v1/catalogs/{catalog}/detect",
            data=query_photo(ITEMS[0]),
            content_type="image/jpeg",
        )
    assert r.status_code == 500
    assert r.json == {
        "error": {
            "status": 500,
            "code": "internal_error",
            "message": "internal error; see the server log",
            "details": {},
        }
    }
    logged = [rec for rec in caplog.records if rec.name == "api.errors"]
    assert logged and str(error) in logged[0].getMessage() and logged[0].exc_info
