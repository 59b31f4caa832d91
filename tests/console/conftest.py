"""A real gunicorn (1 worker, real models, API keys on) and a headless Debian Chromium driven
by Selenium, for the console's browser tests.

The test modules skip, with `browser_missing`'s reason, when Chromium, its driver or Selenium
is not installed (`.ci/run` installs them: ``apt-get install -y chromium chromium-driver``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from core.settings import REPO_ROOT
from tests.deploy.conftest import (
    GUNICORN,
    KEY_A,
    Server,
    free_port,
    server_env,
    stop_process,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SHOTS = REPO_ROOT / "out" / "console"
WAIT_S = 90.0  # longest wait for one answer of the service on a busy 2-core machine
READY_S = 400.0  # models loading while other helpers' tests share the 2 cores


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -r requirements-dev.txt"
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        return (
            f"no browser: {CHROMIUM} or {CHROMEDRIVER} is missing "
            "(Debian: apt-get install -y chromium chromium-driver)"
        )
    return None


def gunicorn_path() -> Path:
    """The checkout's `.venv` gunicorn, else the one beside the running Python."""
    return GUNICORN if GUNICORN.is_file() else Path(sys.executable).parent / "gunicorn"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """gunicorn with one worker, each kind's trained embedder, tenant keys required."""
    root = tmp_path_factory.mktemp("console-gunicorn")
    url = f"http://127.0.0.1:{free_port()}"
    log = root / "gunicorn.log"
    cmd = [str(gunicorn_path()), "-c", "gunicorn.conf.py", "--bind", url[len("http://") :]]
    env = server_env(root, SIGHTING_EMBEDDER="auto", SIGHTING_WORKERS="1")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd + ["--workers", "1"], cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    srv = Server(proc, url, root, log)
    try:
        wait_ready(proc, url, log)
        yield srv
    finally:
        stop_process(proc)


def wait_ready(proc: subprocess.Popen, url: str, log: Path) -> None:
    """Wait for gunicorn's one web worker to answer /readyz 200 (at most `READY_S`)."""
    deadline = time.monotonic() + READY_S
    while True:
        try:
            if requests.get(url + "/readyz", timeout=10).status_code == 200:
                return
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"gunicorn not ready in {READY_S:.0f} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


class Api:
    """The same service through `requests` with tenant A's key (to set up and to compare)."""

    def __init__(self, url: str, key: str = KEY_A) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.headers["X-API-Key"] = key

    def __call__(self, method: str, path: str, **kw) -> requests.Response:
        return self.session.request(method, self.url + path, timeout=WAIT_S, **kw)


@pytest.fixture(scope="module")
def api(server: Server) -> Api:
    return Api(server.url)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, server: Server) -> Iterator:
    """Headless Chromium (a ``selenium.webdriver.Chrome``) with a new profile, 1400x1000,
    its console log kept. It quits before gunicorn stops (its keep-alive connections would
    hold gunicorn's graceful stop)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
        # a camera that shows a test pattern, allowed without asking (the Live page's camera)
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_script_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, condition: Callable, timeout: float = WAIT_S, what: str = ""):
    """The first truthy value of ``condition(driver)``; fails the test after ``timeout``."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(
            driver,
            timeout,
            poll_frequency=0.2,
            # a condition that indexes a list of elements while the page rebuilds it (a card
            # list re-rendered after a save) sees it empty for a moment: look again
            ignored_exceptions=(StaleElementReferenceException, IndexError),
        ).until(condition)
    except WebDriverException as exc:
        errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        pytest.fail(f"waited {timeout:.0f} s for {what or condition}: {exc.msg}; errors: {errors}")


def screenshot(driver, name: str) -> Path:
    """A PNG of the window under ``out/console/``."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    time.sleep(0.3)  # let thumbnails and transitions settle
    driver.save_screenshot(str(path))
    return path


def script_errors(driver) -> list[str]:
    """JavaScript errors in the browser's log since the last call (not failed requests, which
    the console reports itself)."""
    return [
        e["message"]
        for e in driver.get_log("browser")
        if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]
    ]


@pytest.fixture(scope="module")
def shared_data() -> Path:
    from tests.conftest import DATA

    if not DATA.is_dir():
        pytest.fail(f"{DATA} is missing: tests need ../shared beside the checkout")
    return DATA


def copy_as(src: Path, folder: Path, name: str) -> Path:
    """``src`` copied to ``folder/name`` (uploads are named after their file)."""
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(src, folder / name))
