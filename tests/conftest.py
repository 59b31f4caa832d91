"""Fixtures shared by every test: where the real weights, photos and sample images are; and
which tests are ``slow`` (the fast tier is ``pytest -m "not slow"``, the full run ``pytest``).

A test is marked ``slow`` here, at collection, when it uses a fixture of `SLOW_FIXTURES` (real
models, gunicorn, Chromium, Redis consumers), so a new test that asks for one is classified
without a marker of its own. A test slow for another reason takes ``@pytest.mark.slow`` (or its
module ``pytestmark = pytest.mark.slow``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.runtime import prepare_environment
from core.settings import REPO_ROOT, Settings
from tests.s3_server import MotoS3, running_moto_s3

prepare_environment()

#: Fixtures that load the real models or start a real gunicorn, Chromium or Redis: a test that
#: uses one, directly or through another fixture, is ``slow``.
SLOW_FIXTURES = frozenset(
    {
        "weights_dir",  # real weights (../shared/weights): a model is loaded from them
        "pipeline",  # the offline models, end to end
        "offline_env",  # commands run in subprocesses that load the offline models
        "label_embedder",  # tests/labels: the real embedder
        "grocery",  # tests/analytics: real shelf photos embedded with the products model
        "server",  # tests/deploy, tests/console, ...: a real gunicorn with real models
        "browser",  # tests/console: headless Chromium
        "consumers",  # tests/jobs: queue consumer processes (Redis across hosts)
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``slow`` every test that uses one of `SLOW_FIXTURES`."""
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


SHARED = Path(os.environ.get("SIGHTING_SHARED_DIR", REPO_ROOT.parent / "shared"))
WEIGHTS = SHARED / "weights"
DATA = SHARED / "data"


@pytest.fixture(scope="session", autouse=True)
def milvus_lite_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path | None]:
    """A run of the suite on Milvus (``SIGHTING_INDEX_BACKEND=milvus pytest tests/api``):
    every app of the session shares one Milvus Lite file in a temporary folder, unless
    ``SIGHTING_MILVUS_URI`` names one (catalog ids are random, so tests keep apart). Without
    it each app would open its own Lite file (``<data_dir>/milvus.db``), each an in-process
    gRPC server kept to the end. Yields the file, or None on the FAISS backend."""
    if os.environ.get("SIGHTING_INDEX_BACKEND") != "milvus" or os.environ.get(
        "SIGHTING_MILVUS_URI"
    ):
        yield None
        return
    path = tmp_path_factory.mktemp("milvus") / "milvus.db"
    os.environ["SIGHTING_MILVUS_URI"] = str(path)
    try:
        yield path
    finally:
        os.environ.pop("SIGHTING_MILVUS_URI", None)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the checkout (weights and photo sets)."""
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: tests need ../shared beside the checkout")
    return SHARED


@pytest.fixture(scope="session")
def weights_dir(shared_dir: Path) -> Path:
    """The verified offline weights (``../shared/weights``)."""
    return WEIGHTS


@pytest.fixture(scope="session")
def data_dir(shared_dir: Path) -> Path:
    """The real photo sets (``../shared/data``)."""
    return DATA


@pytest.fixture(scope="session")
def ultralytics_assets() -> Path:
    """The sample images that ship in the ultralytics wheel (bus.jpg, zidane.jpg)."""
    import ultralytics

    return Path(ultralytics.__file__).parent / "assets"


def offline_settings(data_dir: Path, **overrides) -> Settings:
    """Settings of the offline model set (shared weights, CPU), ignoring `.env` and the
    environment's model choices, with a local store in ``data_dir``."""
    values = dict(
        weights_dir=WEIGHTS,
        device="cpu",
        detector="yolov5n",
        embedder="auto",  # each kind's trained head, as in production
        verifier="aliked_lightglue",
        data_dir=data_dir,
        threads=2,
    )
    return Settings(_env_file=None, **(values | overrides))


@pytest.fixture()
def offline_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The offline model set in the environment, for commands (and the processes they spawn)
    that read their settings from it; the settings cache is cleared before and after."""
    from core.settings import get_settings

    for name, value in {
        "WEIGHTS_DIR": str(WEIGHTS),
        "DETECTOR": "yolov5n",
        "EMBEDDER": "auto",
        "VERIFIER": "aliked_lightglue",
        "DEVICE": "cpu",
    }.items():
        monkeypatch.setenv(f"SIGHTING_{name}", value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    """Offline settings: shared weights, the offline model set, a fresh local store (not in
    `SLOW_FIXTURES`: most users only store; a test that loads a model through it is marked
    ``@pytest.mark.slow`` itself)."""
    return offline_settings(tmp_path / "store")


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """moto's S3 server on 127.0.0.1 (free port) for the whole session; see tests/s3_server.py."""
    with running_moto_s3() as server:
        yield server


@pytest.fixture(scope="session")
def pipeline(weights_dir: Path):
    """The offline models (yolov5n, per-kind heads, aliked_lightglue), loaded once per session."""
    from matching.engine import load_pipeline

    return load_pipeline(offline_settings(REPO_ROOT / "data"))
