"""Schemathesis against the real service: every documented request, none answered 5xx or
off the document.

The real app (real models, one worker, a temporary local store, API keys on) serves on
127.0.0.1; ``st run`` reads its ``/openapi.json`` and runs every phase (examples, coverage,
fuzzing, and the stateful phase, which follows the document's links from a created catalog
and item to the operations that use their ids) with every check, a fixed seed and a bounded
number of cases.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from werkzeug.serving import make_server

from api import create_app
from core.settings import REPO_ROOT
from tests.api.conftest import ITEMS, catalog_photo
from tests.conftest import offline_settings

KEY = "fuzz-key"
VIDEO = Path(__file__).resolve().parents[3] / "shared" / "data" / "video" / "coke-shelf.mp4"


def write_media(folder: Path) -> Path:
    """Small real photos (JPEG and PNG) and a 4-frame clip for the hooks to draw from."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, item in enumerate(ITEMS):
        bgr = cv2.imdecode(np.frombuffer(catalog_photo(item), np.uint8), cv2.IMREAD_COLOR)
        small = cv2.resize(bgr, (96, 96))
        cv2.imwrite(str(folder / f"{i}.jpg"), small)
        cv2.imwrite(str(folder / f"{i}.png"), small)
    cap = cv2.VideoCapture(str(VIDEO))
    writer = cv2.VideoWriter(
        str(folder / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (192, 108)
    )
    for _ in range(4):
        ok, frame = cap.read()
        assert ok, VIDEO
        writer.write(cv2.resize(frame, (192, 108)))
    writer.release()
    cap.release()
    return folder


@pytest.fixture()
def served(pipeline, tmp_path):
    """The app on 127.0.0.1 (a free port), with one API key; yields its base URL."""
    settings = offline_settings(tmp_path / "store", api_keys=[KEY])
    app = create_app(settings, pipeline=pipeline)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


@pytest.mark.slow
def test_schemathesis_finds_nothing(served, tmp_path) -> None:
    media = write_media(tmp_path / "media")
    env = os.environ | {
        "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks",
        "SIGHTING_FUZZ_MEDIA": str(media),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    command = [
        str(Path(sys.executable).parent / "st"),
        "--config-file",
        str(Path(__file__).with_name("schemathesis.toml")),
        "run",
        f"{served}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        os.environ.get("SIGHTING_FUZZ_EXAMPLES", "5"),
        "--seed",
        os.environ.get("SIGHTING_FUZZ_SEED", "13"),
        "--workers",
        "1",
        "--header",
        f"X-API-Key: {KEY}",
        "--request-timeout",
        "120",
        "--max-response-time",  # speed is measured in bench/, not asserted here
        "600",
        "--output-truncate",
        "true",
        "--no-color",
    ]
    run = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    report = REPO_ROOT / "out" / "schemathesis-report.txt"  # the whole report, to read after
    report.parent.mkdir(exist_ok=True)
    report.write_text(run.stdout + run.stderr)
    print(run.stdout[-20000:], run.stderr[-5000:])
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-3000:]
