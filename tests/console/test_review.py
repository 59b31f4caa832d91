"""The console's Review page (issue 23) in a real browser against a real gunicorn with the real
models: a small catalog of real grocery photos, searches kept as sightings through the API
(``keep=true``), then the queue reviewed with the keyboard only: ``1`` confirms candidate 1 (the
crop added as a reference photo with the toggle on), ``n`` says none, ``c`` makes a new item,
arrows move back and forth; every verdict checked through the API. A sighting whose file name
looks like HTML stays text. The screenshot goes to ``docs/console-review.png``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from catalog.local_store import LocalStore
from core.settings import REPO_ROOT
from tests.console.conftest import browser_missing, screenshot, script_errors, wait_for

if browser_missing():
    pytest.skip(browser_missing(), allow_module_level=True)
# the sightings package and its routes come with issue 23's review branch
pytest.importorskip("sightings.repository", reason="the sightings package (issue 23) is missing")

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

from tests.console.test_console import XSS, css, injected, no_alert, open_console  # noqa: E402

pytestmark = pytest.mark.slow

ITEMS = ("Arla-Standard-Milk", "Oatly-Natural-Oatghurt", "Alpro-Fresh-Soy-Milk")
NEW_ITEM = "shelf-find-1"


def press(driver, key: str) -> None:
    """A key pressed on the page (nothing focused: the page's own shortcuts)."""
    driver.execute_script("document.activeElement && document.activeElement.blur()")
    ActionChains(driver).send_keys(key).perform()


def shown(driver) -> dict:
    """The sighting the page shows: its id, state and candidates' items."""
    el = wait_for(driver, lambda d: css(d, "[data-role=sighting]"), what="a sighting")[0]
    return {
        "id": el.get_attribute("data-sighting"),
        "state": el.get_attribute("data-state"),
        "items": [c.get_attribute("data-item") for c in css(driver, "[data-role=candidate]")],
    }


def next_shown(driver, old: str) -> dict:
    wait_for(
        driver,
        lambda d: (
            (s := css(d, "[data-role=sighting]")) and s[0].get_attribute("data-sighting") != old
        ),
        what=f"the page to move on from {old}",
    )
    return shown(driver)


@pytest.fixture(scope="module")
def kept(api, server, shared_data: Path) -> dict:
    """A products catalog of 3 real items (one reference photo each) and 4 searches of real
    shelf photos kept as sightings, plus one sighting whose file name is `XSS` (a copy of a
    kept one written by the sightings repository into the server's own store, as a trap
    batch would name it). Returns the catalog id and the sighting ids, newest first."""
    from sightings.repository import SightingRepository, crop_key, new_sighting_id

    cid = api("POST", "/v1/catalogs", json={"name": "review shelf", "kind": "products"}).json()[
        "id"
    ]
    grocery = shared_data / "grocery"
    for item in ITEMS:
        ref = sorted((grocery / "catalog" / item).iterdir())[0]
        files = [("images", (ref.name, ref.read_bytes(), "image/jpeg"))]
        r = api("POST", f"/v1/catalogs/{cid}/items", files=files, data={"item_id": item})
        assert r.status_code == 201, r.text
    queries = [sorted((grocery / "queries" / item).iterdir())[0] for item in ITEMS]
    queries.append(sorted((grocery / "queries" / ITEMS[0]).iterdir())[1])
    for photo in queries:
        r = api(
            "POST",
            f"/v1/catalogs/{cid}/search",
            params={"keep": "true", "top_k": 3},
            data=photo.read_bytes(),
            headers={"Content-Type": "image/jpeg"},
        )
        assert r.status_code == 200, r.text
        assert len(r.json()["sighting_ids"]) == 1, r.json()

    repo = SightingRepository(LocalStore(server.root / "store"))
    listed = api("GET", f"/v1/catalogs/{cid}/sightings").json()
    first = repo.get(cid, listed["sightings"][0]["sighting_id"])
    sid = new_sighting_id()
    named = dataclasses.replace(
        first,
        sighting_id=sid,
        crop_key=crop_key(cid, sid),
        photo_key=None,
        source=dataclasses.replace(first.source, kind="trap", file_name=f"{XSS}.jpg"),
    )
    repo.add(named, repo.image(first, "crop"))
    listed = api("GET", f"/v1/catalogs/{cid}/sightings").json()
    assert listed["counts"]["unreviewed"] == 5 and listed["total"] == 5
    ids = [s["sighting_id"] for s in listed["sightings"]]
    assert ids[0] == named.sighting_id  # newest first
    return {"cid": cid, "ids": ids}


def test_review_queue_by_keyboard(browser, server, api, kept) -> None:
    d = browser
    cid, ids = kept["cid"], kept["ids"]
    sighting = lambda sid: api("GET", f"/v1/catalogs/{cid}/sightings/{sid}").json()  # noqa: E731

    open_console(d, server, f"#/review?catalog={cid}")
    link = css(d, "#nav a[data-page=review]")[0]
    assert "coming" not in link.text and "active" in link.get_attribute("class")
    first = shown(d)
    assert first["id"] == ids[0]
    progress = css(d, "[data-role=progress]")[0]
    assert progress.get_attribute("data-unreviewed") == "5"
    assert progress.get_attribute("data-reviewed") == "0"

    # the sighting named like HTML: its name is text, nothing injected, no alert
    source = css(d, "[data-role=sighting-source]")[0].text
    assert f"{XSS}.jpg" in source
    assert injected(d) == 0
    no_alert(d)
    # candidates ranked as the API keeps them, with their reference photos
    want = sighting(ids[0])
    assert first["items"] == [c["item_id"] for c in want["candidates"]]
    assert first["items"], "a search keeps its ranked list"
    wait_for(
        d,
        lambda d: (
            all(
                d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i)
                for i in css(d, "[data-role=candidate] .thumb img")
            )
            and d.execute_script(
                "const i = document.querySelector('[data-role=crop]');"
                "return i && i.complete && i.naturalWidth > 0"
            )
        ),
        what="the crop and the reference photos",
    )

    # 1 with "add as reference photo" on: confirmed, the crop becomes a reference image
    item_path = f"/v1/catalogs/{cid}/items/{first['items'][0]}"
    images_before = len(api("GET", item_path).json()["images"])
    css(d, "[data-role=add-reference]")[0].click()
    press(d, "1")
    second = next_shown(d, ids[0])
    assert second["id"] == ids[1]
    got = sighting(ids[0])
    assert got["state"] == "confirmed" and got["item_id"] == first["items"][0]
    assert got["reviews"][-1]["reference_image_id"]
    images = api("GET", item_path).json()["images"]
    assert len(images) == images_before + 1
    css(d, "[data-role=add-reference]")[0].click()  # off again

    # n: none of them
    press(d, "n")
    third = next_shown(d, ids[1])
    assert third["id"] == ids[2]
    assert sighting(ids[1])["state"] == "none"

    # c: a new item from the crop, with an id and metadata typed in the dialog
    press(d, "c")
    dialog = wait_for(d, lambda d: css(d, "dialog[open] [data-role=new-item-id]"))[0]
    dialog.send_keys(NEW_ITEM)
    key, value = css(d, "dialog[open] .kv input")[:2]
    key.send_keys("name")
    value.send_keys(XSS)
    css(d, "dialog[open] [data-role=new-item-save]")[0].click()
    fourth = next_shown(d, ids[2])
    assert fourth["id"] == ids[3]
    got = sighting(ids[2])
    assert got["state"] == "new_item" and got["item_id"] == NEW_ITEM
    item = api("GET", f"/v1/catalogs/{cid}/items/{NEW_ITEM}")
    assert item.status_code == 200, item.text
    assert item.json()["metadata"]["name"] == XSS

    # progress follows: 3 reviewed here, as many unreviewed as the API counts
    listed = api("GET", f"/v1/catalogs/{cid}/sightings").json()
    assert listed["counts"]["unreviewed"] == 2
    wait_for(d, lambda d: progress.get_attribute("data-reviewed") == "3")
    assert progress.get_attribute("data-unreviewed") == "2"

    # arrows: back over the reviewed ones (their new state shown), then forward again
    press(d, Keys.ARROW_LEFT)
    back = next_shown(d, ids[3])
    assert back["id"] == ids[2] and back["state"] == "new_item"
    press(d, Keys.ARROW_LEFT)
    back = next_shown(d, ids[2])
    assert back["id"] == ids[1] and back["state"] == "none"
    press(d, Keys.ARROW_RIGHT)
    assert next_shown(d, ids[1])["id"] == ids[2]
    press(d, Keys.ARROW_RIGHT)
    now = next_shown(d, ids[2])
    assert now["id"] == ids[3] and now["state"] == "unreviewed"
    assert sighting(ids[3])["state"] == "unreviewed"  # moving is not a verdict

    wait_for(
        d,
        lambda d: all(
            d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i)
            for i in css(d, "[data-role=candidate] .thumb img, [data-role=crop]")
        ),
        what="the pictures of the fourth sighting",
    )
    path = screenshot(d, "review")
    (REPO_ROOT / "docs" / "console-review.png").write_bytes(path.read_bytes())

    # a click on a candidate: the explanation picture (the explain route, the crop as query)
    css(d, "[data-role=candidate] [data-role=explain]")[0].click()
    img = wait_for(
        d,
        lambda d: (
            (i := css(d, "dialog[open] [data-role=explanation] img.explain"))
            and d.execute_script(
                "return arguments[0].complete && arguments[0].naturalWidth > 0", i[0]
            )
            and i
        ),
        what="the explanation picture",
    )[0]
    assert img.get_attribute("src").startswith("blob:")
    ActionChains(d).send_keys(Keys.ESCAPE).perform()
    wait_for(d, lambda d: not css(d, "dialog[open]"))

    # filters: state and source (a file name) from the page's own controls
    open_console(d, server, f"#/review?catalog={cid}&state=confirmed")
    assert shown(d)["id"] == ids[0]
    assert css(d, "[data-role=state]")[0].get_attribute("value") == "confirmed"
    box = css(d, "[data-role=source-filter]")[0]
    box.send_keys(f"{XSS}.jpg", Keys.ENTER)
    wait_for(d, lambda d: "source=" in d.current_url)
    assert shown(d)["id"] == ids[0]
    assert injected(d) == 0
    no_alert(d)
    assert script_errors(d) == []
