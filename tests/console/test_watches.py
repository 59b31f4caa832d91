"""The console's Watches page (issue 26) in a real browser against a real gunicorn with its job
consumer and the real models: a watch created on the page between a catalog of lost dogs and a
catalog of found ones; a found dog's photo uploaded through the API makes an alert (the watch's
match job on the consumer), shown as the two photos side by side with its score; its
explanation opens; it is marked "not the same". Then the photos nobody recognised (searches
kept as sightings, reviewed "none" through the API) are grouped by the discovery job started
from the page; a photo is split off a proposal, that one rejected with the keyboard, and a group
accepted as a new item; every step checked through the API. Screenshot: docs/console-watches.png.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.console.conftest import (
    browser_missing,
    gunicorn_path,
    screenshot,
    script_errors,
    wait_for,
    wait_ready,
)
from tests.deploy.conftest import Server, free_port, server_env, stop_process

if browser_missing():
    pytest.skip(browser_missing(), allow_module_level=True)

from tests.console.test_console import css, image_loaded, open_console, visible_dialog  # noqa: E402
from tests.console.test_review import press  # noqa: E402

pytestmark = pytest.mark.slow
DOGS = Path(__file__).resolve().parents[3] / "shared" / "data" / "dogs"
LOST = "1006"  # the lost dog (its catalog photo), found again in a query photo
UNKNOWN = ("0", "1")  # dogs nobody knows: 3 query photos each, kept as sightings
JOB_WAIT_S = 900.0  # model work on a 2-core machine shared with other helpers
DOC_SHOTS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """gunicorn with one web worker and its job consumer (watch and discovery jobs run)."""
    from core.settings import REPO_ROOT

    root = tmp_path_factory.mktemp("console-watches")
    url = f"http://127.0.0.1:{free_port()}"
    log = root / "gunicorn.log"
    env = server_env(
        root,
        SIGHTING_EMBEDDER="auto",
        SIGHTING_WORKERS="1",
        SIGHTING_JOB_WORKERS="1",
        SIGHTING_CALIBRATION_REFIT="false",
        SIGHTING_WATCH_DEBOUNCE_S="0.5",
    )
    cmd = [str(gunicorn_path()), "-c", "gunicorn.conf.py", "--bind", url[len("http://") :]]
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


def photo(part: str, dog: str, index: int = 0) -> bytes:
    return sorted((DOGS / part / dog).iterdir())[index].read_bytes()


def upload(api, cid: str, item: str, data: bytes) -> None:
    files = [("images", ("dog.jpg", data, "image/jpeg"))]
    r = api("POST", f"/v1/catalogs/{cid}/items", files=files, data={"item_id": item})
    assert r.status_code == 201, r.text


def test_watch_alert_explained_resolved_and_proposals_decided(browser, server, api) -> None:
    d = browser
    lost = api("POST", "/v1/catalogs", json={"name": "lost dogs", "kind": "animals"}).json()["id"]
    found = api("POST", "/v1/catalogs", json={"name": "found dogs", "kind": "animals"}).json()["id"]
    upload(api, lost, "rex", photo("catalog", LOST))
    dog_of = {}
    for dog in UNKNOWN:  # sightings of dogs the lost catalog does not hold, reviewed none
        for i in range(3):
            r = api(
                "POST",
                f"/v1/catalogs/{lost}/search",
                params={"keep": "true"},
                data=photo("queries", dog, i),
                headers={"Content-Type": "image/jpeg"},
            )
            assert r.status_code == 200, r.text
            (sid,) = r.json()["sighting_ids"]
            dog_of[sid] = dog
            v = api("POST", f"/v1/catalogs/{lost}/sightings/{sid}/review", json={"verdict": "none"})
            assert v.status_code == 200, v.text

    # a watch made on the page: lost dogs watched in the found ones, any score
    open_console(d, server, f"#/watches?catalog={lost}")
    wait_for(d, lambda d: css(d, "[data-role=no-watch]"), what="the empty watch list")
    link = css(d, "#nav a[data-page=watches]")[0]
    assert "coming" not in link.text and "active" in link.get_attribute("class")
    d.execute_script(
        "const s = document.querySelector('[data-role=source-catalog]');"
        "s.value = arguments[0]; s.dispatchEvent(new Event('change'));",
        found,
    )
    css(d, "[data-role=min-score]")[0].send_keys("0")
    css(d, "[data-role=create-watch]")[0].click()
    row = wait_for(d, lambda d: css(d, "[data-role=watch]"), what="the new watch")[0]
    watch_id = row.get_attribute("data-watch")
    watch = api("GET", f"/v1/watches/{watch_id}").json()
    assert watch["watched_catalog"] == lost and watch["source_catalog"] == found
    assert watch["min_score"] == 0

    # a found dog arrives (the API's upload); the consumer's match job makes the alert
    upload(api, found, "found-1", photo("queries", LOST, 0))

    def alert_shown(d):
        if not css(d, "[data-role=alert]"):
            refresh = css(d, "[data-role=refresh-alerts]")
            if refresh:
                refresh[0].click()
            return None
        return css(d, "[data-role=alert]")

    alert = wait_for(d, alert_shown, timeout=JOB_WAIT_S, what="the alert")[0]
    (want,) = api("GET", f"/v1/watches/{watch_id}/alerts").json()["alerts"]
    assert alert.get_attribute("data-alert") == want["id"]
    assert css(d, "[data-role=alert-score]")[0].text.strip() != ""
    thumbs = css(d, "[data-role=alert] .thumb img")
    assert len(thumbs) == 2
    wait_for(d, lambda d: all(image_loaded(i) for i in thumbs), what="both photos")
    css(d, "[data-role=alert] [data-role=explain]")[0].click()
    pic = wait_for(d, lambda d: css(d, "dialog[open] img.explain"), timeout=JOB_WAIT_S)[0]
    wait_for(d, lambda d: image_loaded(pic), timeout=JOB_WAIT_S, what="the explanation")
    d.execute_script("document.querySelector('dialog[open]').close()")
    wait_for(d, lambda d: not visible_dialog(d))
    css(d, "[data-role=resolve-not_same]")[0].click()
    wait_for(d, lambda d: css(d, "[data-role=alert][data-resolution=not_same]"), what="resolved")
    (got,) = api("GET", f"/v1/watches/{watch_id}/alerts").json()["alerts"]
    assert got["resolution"] == "not_same"

    # discovery: started on the page, run by the consumer, one proposal per unknown dog
    css(d, "[data-role=start-discovery]")[0].click()
    cards = wait_for(
        d, lambda d: len(c := css(d, "[data-role=proposal]")) >= 2 and c, timeout=JOB_WAIT_S,
        what="the proposals",
    )  # fmt: skip
    listed = api("GET", f"/v1/catalogs/{lost}/discovery/proposals").json()["proposals"]
    assert len(cards) == len(listed) == 2
    for p in listed:
        assert {dog_of[m["ref"]] for m in p["members"]} in ({"0"}, {"1"}), p
        assert len(p["members"]) == 3
    thumbs = css(d, "[data-role=proposal] [data-role=member] img")
    assert len(thumbs) == 6
    wait_for(d, lambda d: all(image_loaded(i) for i in thumbs), what="the proposals' crops")
    shot = screenshot(d, "watches")
    DOC_SHOTS.mkdir(exist_ok=True)
    (DOC_SHOTS / "console-watches.png").write_bytes(shot.read_bytes())

    # split one photo off the first card, then reject that one with the keyboard (r)
    first = cards[0]
    first_id = first.get_attribute("data-proposal")
    member = first.find_elements("css selector", "[data-role=member]")[0]
    split_ref = member.get_attribute("data-ref")
    member.find_elements("css selector", "[data-role=pick]")[0].click()
    first.find_elements("css selector", "[data-role=split]")[0].click()
    wait_for(d, lambda d: len(css(d, "[data-role=proposal]")) == 3, what="the split-off card")
    after = api("GET", f"/v1/catalogs/{lost}/discovery/proposals?state=open").json()["proposals"]
    (off,) = [p for p in after if p["split_from"] == first_id]
    assert [m["ref"] for m in off["members"]] == [split_ref]
    # the split-off card (listed last) rejected with its own button
    off_card = css(d, f"[data-role=proposal][data-proposal={off['id']}]")[0]
    off_card.find_elements("css selector", "[data-role=reject]")[0].click()
    wait_for(d, lambda d: len(css(d, "[data-role=proposal]")) == 2, what="the rejection")
    assert api("GET", f"/v1/catalogs/{lost}/discovery/proposals/{off['id']}").json()["state"] == (
        "rejected"
    )

    # a: accept the first card as a new item, its id typed in the dialog
    top = css(d, "[data-role=proposal]")[0]
    top_id = top.get_attribute("data-proposal")
    press(d, "a")
    box = wait_for(d, lambda d: css(d, "dialog[open] [data-role=accept-item-id]"))[0]
    box.send_keys("stray-1")
    css(d, "dialog[open] [data-role=accept-save]")[0].click()
    wait_for(d, lambda d: len(css(d, "[data-role=proposal]")) == 1, what="the accepted card gone")
    got = api("GET", f"/v1/catalogs/{lost}/discovery/proposals/{top_id}").json()
    assert got["state"] == "accepted" and got["item_id"] == "stray-1"
    item = api("GET", f"/v1/catalogs/{lost}/items/stray-1").json()
    assert len(item["images"]) == len(got["members"])

    # r: the last card rejected with the keyboard
    last_id = css(d, "[data-role=proposal]")[0].get_attribute("data-proposal")
    press(d, "r")
    wait_for(d, lambda d: css(d, "[data-role=no-proposal]"), what="no open proposal left")
    got = api("GET", f"/v1/catalogs/{lost}/discovery/proposals/{last_id}").json()
    assert got["state"] == "rejected"
    assert script_errors(d) == []
