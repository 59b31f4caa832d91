"""The console in a real browser (headless Debian Chromium through Selenium) against a real
gunicorn with the real models: a catalog made, filled, tried and deleted from the console; a
lost-pet gallery checked against the API's own answer; metadata that looks like HTML shown as
text; a screenshot of each page in ``out/console/``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.console.conftest import (
    KEY_A,
    WAIT_S,
    browser_missing,
    copy_as,
    screenshot,
    script_errors,
    wait_for,
)

if browser_missing():
    pytest.skip(browser_missing(), allow_module_level=True)

from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

XSS = "<img src=x onerror=alert(1)>"
GROCERY_ITEMS = ("Arla-Standard-Milk", "Oatly-Natural-Oatghurt")
OPTIONAL = {"traps": r"trap|batches", "analytics": r"analytics|quality|clusters"}  # as main.js
DOGS = 21  # two gallery pages of 20


def css(driver, selector: str):
    return driver.find_elements(By.CSS_SELECTOR, selector)


def visible_dialog(driver):
    found = css(driver, "dialog[open]")
    return found[0] if found else None


def open_console(driver, server, hash_: str = "#/catalogs") -> None:
    """Open a console page; type the key when the console asks for it."""
    driver.get(f"{server.url}/console/{hash_}")
    wait_for(driver, lambda d: d.execute_script("return document.readyState") == "complete")
    if not driver.execute_script("return sessionStorage.getItem('sighting.apiKey')"):
        key = wait_for(driver, lambda d: css(d, "[data-role=key-input]"), what="the key prompt")
        key[0].send_keys(KEY_A)
        css(driver, "[data-role=key-save]")[0].click()
        wait_for(driver, lambda d: not visible_dialog(d), what="the key prompt to close")


def image_loaded(element) -> bool:
    return element.parent.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0", element
    )


def injected(driver) -> int:
    """How many elements the page holds that only HTML parsing of `XSS` would have made."""
    return driver.execute_script("return document.querySelectorAll('img[src=\"x\"]').length")


def no_alert(driver) -> None:
    try:
        text = driver.switch_to.alert.text
    except NoAlertPresentException:
        return
    pytest.fail(f"an alert ran in the page: {text!r}")


def test_catalog_made_filled_tried_and_deleted_in_the_console(
    browser, server, api, shared_data: Path, tmp_path: Path
) -> None:
    d = browser
    open_console(d, server)
    assert d.execute_script("return sessionStorage.getItem('sighting.apiKey')") == KEY_A
    assert KEY_A not in d.current_url

    # a catalog, created from the form
    css(d, "[data-role=new-name]")[0].send_keys("corner shop")
    css(d, "[data-role=create] button[type=submit]")[0].click()
    wait_for(
        d, lambda d: d.current_url.split("#/catalogs/")[-1] != d.current_url, what="navigation"
    )
    cid = d.current_url.split("#/catalogs/")[1]
    assert api("GET", f"/v1/catalogs/{cid}").json()["name"] == "corner shop"

    # two reference photos through the file picker: each becomes an item named after its file
    photos = [
        copy_as(
            next((shared_data / "grocery" / "catalog" / item).iterdir()), tmp_path, f"{item}.jpg"
        )
        for item in GROCERY_ITEMS
    ]
    css(d, "input[data-role=files]")[0].send_keys("\n".join(str(p) for p in photos))
    wait_for(
        d,
        lambda d: len(css(d, "[data-role=upload][data-state=done]")) == 2,
        what="both uploads to finish",
    )
    cards = wait_for(d, lambda d: len(css(d, "article.card")) == 2 and css(d, "article.card"))
    assert sorted(c.get_attribute("data-item") for c in cards) == sorted(GROCERY_ITEMS)
    wait_for(d, lambda d: all(image_loaded(i) for i in css(d, "article.card .thumb img")))
    items = api("GET", f"/v1/catalogs/{cid}/items").json()["items"]
    assert sorted(i["item_id"] for i in items) == sorted(GROCERY_ITEMS)
    assert all(len(i["images"]) == 1 for i in items)

    # metadata edited in the dialog, stored through PATCH
    card = css(d, f"article.card[data-item={GROCERY_ITEMS[0]}]")[0]
    card.find_element(By.CSS_SELECTOR, "[data-role=edit]").click()
    dialog = wait_for(d, visible_dialog)
    key, value = dialog.find_elements(By.CSS_SELECTOR, ".kv input")[:2]
    key.send_keys("name")
    value.send_keys("Arla standard milk 1 l")
    dialog.find_element(By.CSS_SELECTOR, "[data-role=save-metadata]").click()
    wait_for(d, lambda d: not visible_dialog(d))
    wait_for(
        d,
        lambda d: (
            "Arla standard milk 1 l"
            in css(d, f"article.card[data-item={GROCERY_ITEMS[0]}] [data-role=metadata]")[0].text
        ),
        what="the new metadata on the card",
    )
    got = api("GET", f"/v1/catalogs/{cid}/items/{GROCERY_ITEMS[0]}").json()["metadata"]
    assert got == {"name": "Arla standard milk 1 l"}
    # the search box filters on metadata
    css(d, "[data-role=search]")[0].send_keys("standard milk")
    wait_for(d, lambda d: len(css(d, "article.card")) == 1)
    screenshot(d, "catalog")

    # try a photo: a real shelf photo of the first item
    query = sorted((shared_data / "grocery" / "queries" / GROCERY_ITEMS[0]).iterdir())[0]
    open_console(d, server, f"#/try?catalog={cid}")
    wait_for(d, lambda d: css(d, "input[data-role=photo-input]"))[0].send_keys(str(query))
    canvas = wait_for(d, lambda d: css(d, "canvas[data-role=photo][data-boxes]"), what="boxes")[0]
    expected = api(
        "POST",
        f"/v1/catalogs/{cid}/detect",
        params={"top_k": 5},
        data=query.read_bytes(),
        headers={"Content-Type": "image/jpeg"},
    ).json()["detections"]
    assert int(canvas.get_attribute("data-boxes")) == len(expected) >= 1
    first = css(d, "[data-role=detection]")[0].find_elements(By.CSS_SELECTOR, ".cand")
    assert first[0].get_attribute("data-item") == GROCERY_ITEMS[0]
    best = max(expected, key=lambda det: det["matches"][0]["score"])
    assert [c.get_attribute("data-item") for c in first] == [m["item_id"] for m in best["matches"]]
    wait_for(d, lambda d: all(image_loaded(i) for i in css(d, ".cand .thumb img")))
    # the slider dims candidates under it, never hides them
    shown = len(css(d, ".cand"))
    slider = css(d, "[data-role=min-score]")[0]
    d.execute_script(
        "arguments[0].value = 0.99; arguments[0].dispatchEvent(new Event('input'))", slider
    )
    scores = [float(c.get_attribute("data-score")) for c in css(d, ".cand")]
    dimmed = ["dim" in c.get_attribute("class") for c in css(d, ".cand")]
    assert len(scores) == shown and dimmed == [s < 0.99 for s in scores]
    d.execute_script(
        "arguments[0].value = 0.5; arguments[0].dispatchEvent(new Event('input'))", slider
    )
    screenshot(d, "try")

    # the explanation of the first candidate
    first = css(d, "[data-role=detection]")[0].find_elements(By.CSS_SELECTOR, ".cand")[0]
    first.click()
    picture = wait_for(
        d,
        lambda d: [i for i in css(d, "dialog[open] img.explain") if image_loaded(i)],
        what="the explanation picture",
    )[0]
    assert d.execute_script("return arguments[0].naturalWidth", picture) > 300
    screenshot(d, "explain")
    css(d, "dialog[open] .d-head button")[0].click()

    # deleted from the list, after a confirmation
    open_console(d, server, "#/catalogs")
    row = wait_for(d, lambda d: css(d, f"tr[data-catalog='{cid}']"))[0]
    screenshot(d, "catalogs")
    row.find_element(By.CSS_SELECTOR, "[data-role=delete]").click()
    wait_for(d, lambda d: css(d, "dialog[open] [data-confirm]"))[0].click()
    wait_for(d, lambda d: not css(d, f"tr[data-catalog='{cid}']"), what="the row to go")
    assert api("GET", f"/v1/catalogs/{cid}").status_code == 404
    assert script_errors(d) == []


@pytest.fixture(scope="module")
def dogs(api, shared_data: Path) -> tuple[str, Path]:
    """An animals catalog of `DOGS` dogs (one photo and contact fields each), made through the
    API, and a query photo of one of them."""
    cid = api("POST", "/v1/catalogs", json={"name": "found dogs", "kind": "animals"}).json()["id"]
    queries = shared_data / "dogs" / "queries"
    ids = sorted(p.name for p in queries.iterdir() if p.is_dir())[:DOGS]
    for n, dog in enumerate(ids):
        photo = sorted((shared_data / "dogs" / "catalog" / dog).iterdir())[0]
        meta = {"finder": f"Shelter {n % 3 + 1}", "phone": f"+358 40 {1000 + n}"}
        r = api(
            "POST",
            f"/v1/catalogs/{cid}/items",
            files={"images": (photo.name, photo.read_bytes(), "image/jpeg")},
            data={"item_id": f"dog-{dog}", "metadata": json.dumps(meta)},
        )
        assert r.status_code == 201, r.text
    yield cid, sorted((queries / ids[0]).iterdir())[0]
    api("DELETE", f"/v1/catalogs/{cid}")


def test_lost_pet_gallery_is_the_search_answer_in_rank_order(browser, server, api, dogs) -> None:
    d = browser
    cid, query = dogs
    open_console(d, server, f"#/lost?catalog={cid}")
    wait_for(d, lambda d: css(d, "input[data-role=photo-input]"))[0].send_keys(str(query))
    wait_for(d, lambda d: css(d, "[data-role=gallery] .cand"), what="the gallery")
    answer = api(
        "POST",
        f"/v1/catalogs/{cid}/search",
        params={"top_k": 100},
        data=query.read_bytes(),
        headers={"Content-Type": "image/jpeg"},
    ).json()["matches"]
    assert len(answer) == DOGS  # nothing cut by a threshold
    shown = []
    while True:
        cards = css(d, "[data-role=gallery] .cand")
        shown += [
            (c.get_attribute("data-item"), float(c.get_attribute("data-score"))) for c in cards
        ]
        nxt = css(d, "[data-role=next]")[0]
        if not nxt.is_enabled():
            break
        if len(shown) == 20:  # the first page, its thumbnails loaded, for the README
            wait_for(d, lambda d: all(image_loaded(i) for i in css(d, ".gallery .thumb img")))
            screenshot(d, "lost-pet")
        nxt.click()
        wait_for(
            d,
            lambda d, n=len(shown): (
                css(d, "[data-role=gallery] .cand")[0].get_attribute("data-rank") == str(n + 1)
            ),
        )
    assert [s[0] for s in shown] == [m["item_id"] for m in answer]
    assert [s[1] for s in shown] == pytest.approx([m["score"] for m in answer])
    assert "Shelter" in css(d, "[data-role=gallery] .cand")[0].text  # the contact fields

    css(d, "[data-role=gallery] .cand")[0].click()
    wait_for(
        d,
        lambda d: [i for i in css(d, "dialog[open] img.explain") if image_loaded(i)],
        what="the explanation picture",
    )
    css(d, "dialog[open] .d-head button")[0].click()
    assert script_errors(d) == []


def test_metadata_and_file_names_that_look_like_html_are_shown_as_text(
    browser, server, api, shared_data: Path
) -> None:
    d = browser
    cid = api("POST", "/v1/catalogs", json={"name": XSS, "kind": "products"}).json()["id"]
    try:
        photo = next((shared_data / "grocery" / "catalog" / GROCERY_ITEMS[0]).iterdir())
        r = api(
            "POST",
            f"/v1/catalogs/{cid}/items",
            files={"images": ("a.jpg", photo.read_bytes(), "image/jpeg")},
            data={"item_id": "milk", "metadata": json.dumps({"name": XSS, XSS: "key too"})},
        )
        assert r.status_code == 201, r.text
        open_console(d, server, f"#/catalogs/{cid}")
        meta = wait_for(d, lambda d: css(d, "article.card [data-role=metadata]"))[0]
        pairs = dict(
            zip(
                [e.text for e in meta.find_elements(By.TAG_NAME, "dt")],
                [e.text for e in meta.find_elements(By.TAG_NAME, "dd")],
                strict=True,
            )
        )
        assert pairs == {"name": XSS, XSS: "key too"}
        assert css(d, "[data-role=catalog-name]")[0].text == XSS
        assert injected(d) == 0
        # a photo named like a tag, dropped on the drop zone (a real drop event of a File)
        name = "<img src=x onerror=alert(2)>.jpg"
        d.execute_async_script(
            """const [url, name, done] = arguments;
            fetch(url, {headers: {'X-API-Key': sessionStorage.getItem('sighting.apiKey')}})
              .then((r) => r.blob()).then((blob) => {
                const dt = new DataTransfer();
                dt.items.add(new File([blob], name, {type: 'image/jpeg'}));
                const zone = document.querySelector('.drop');
                zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true}));
                done();
              });""",
            f"/v1/catalogs/{cid}/items/milk/images/{r.json()['image_ids'][0]}",
            name,
        )
        row = wait_for(d, lambda d: css(d, "[data-role=upload][data-state=done]"))[0]
        assert name in row.text
        assert injected(d) == 0
        items = api("GET", f"/v1/catalogs/{cid}/items").json()["items"]
        assert sorted(i["item_id"] for i in items) == ["img-src-x-onerror-alert-2", "milk"]
        css(d, "[data-role=search]")[0].send_keys(XSS)
        open_console(d, server, "#/catalogs")
        wait_for(d, lambda d: css(d, f"tr[data-catalog='{cid}']"))
        no_alert(d)
        assert injected(d) == 0
        assert XSS in css(d, f"tr[data-catalog='{cid}']")[0].text
    finally:
        api("DELETE", f"/v1/catalogs/{cid}")


def test_live_health_and_coming_pages(browser, server, api, shared_data: Path) -> None:
    d = browser
    video = shared_data / "video"
    cid = api("POST", "/v1/catalogs", json={"name": "coke shelf", "kind": "products"}).json()["id"]
    try:
        for folder in sorted((video / "coke-shelf-catalog").iterdir())[:3]:
            photo = sorted(folder.iterdir())[0]
            r = api(
                "POST",
                f"/v1/catalogs/{cid}/items",
                files={"images": (photo.name, photo.read_bytes(), "image/jpeg")},
                data={"item_id": folder.name},
            )
            assert r.status_code == 201, r.text
        open_console(d, server, f"#/live?catalog={cid}")
        wait_for(d, lambda d: css(d, "input[data-role=video-input]"))[0].send_keys(
            str(video / "coke-shelf.mp4")
        )
        # answers come back one at a time; frames in between are dropped
        wait_for(
            d,
            lambda d: int(css(d, "[data-stat=sent]")[0].text.replace("–", "0") or 0) >= 2,
            what="two answered frames",
        )
        assert int(css(d, "[data-stat=dropped]")[0].text) > 0
        assert float(css(d, "[data-stat=latency]")[0].text) > 0
        assert css(d, "[data-role=tracks] tr[data-track]"), "no track listed"
        assert int(css(d, "canvas[data-role=live]")[0].get_attribute("data-boxes")) >= 1
        screenshot(d, "live")
        css(d, "[data-role=stop]")[0].click()
        # the browser's camera (Chromium's fake one): its frames go the same way
        css(d, "[data-role=camera]")[0].click()
        sent = css(d, "[data-stat=sent]")[0]
        wait_for(d, lambda d: sent.text not in ("", "–"), what="a camera frame answered")
        css(d, "[data-role=stop]")[0].click()
    finally:
        api("DELETE", f"/v1/catalogs/{cid}")

    open_console(d, server, "#/health")
    workers = wait_for(d, lambda d: css(d, "[data-role=workers] .v"))[0]
    wait_for(d, lambda d: workers.text == "1")
    ready = css(d, "[data-role=readiness]")[0].text
    assert "ready" in ready and "not ready" not in ready
    models = css(d, "[data-role=models]")[0].text
    assert "animals" in models and "products" in models and "yolov5n" in models
    assert css(d, "a[href='/docs']")
    screenshot(d, "health")

    for page in ("traps", "analytics"):
        open_console(d, server, f"#/{page}")
        wait_for(d, lambda d: css(d, "main h1"))
        paths = api("GET", "/openapi.json").json()["paths"]
        link = css(d, f"#nav a[data-page={page}]")[0]
        assert ("coming" in link.text) == (not any(re.search(OPTIONAL[page], p) for p in paths))
        screenshot(d, page)
    assert script_errors(d) == []


def test_console_pages_carry_a_strict_content_security_policy(server) -> None:
    import requests

    for path in ("/console/", "/console/static/main.js"):
        r = requests.get(server.url + path, timeout=WAIT_S)
        assert r.status_code == 200
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    r = requests.get(server.url + "/", allow_redirects=False, timeout=WAIT_S)
    assert r.status_code == 302 and r.headers["Location"].endswith("/console/")
    # the console's own routes give no data: the API still asks for the key
    assert requests.get(server.url + "/v1/catalogs", timeout=WAIT_S).status_code == 401


def test_upload_warnings_and_item_ids_from_file_names(browser, server) -> None:
    """The catalog page's helpers, run in the browser: an upload answer's ``warnings`` (the
    per-image warnings of issue 16, in the shapes a service may give) become lines of text,
    and a file name becomes a valid item id."""
    d = browser
    open_console(d, server, "#/health")
    got = d.execute_async_script(
        """const done = arguments[arguments.length - 1];
        import('/console/static/pages/catalog.js').then((m) => done({
          warnings: [
            m.warningLines({item_id: 'a', image_ids: ['x']}),
            m.warningLines({warnings: []}),
            m.warningLines({warnings: ['blurry', 'over-exposed']}),
            m.warningLines({warnings: [[{code: 'blurry', message: 'sharpness 12 < 40'}], []]}),
            m.warningLines({warnings: [{image_id: 'x', warnings: ['near-duplicate of y']}]}),
          ],
          ids: ['Arla Milk (1).jpg', '..hidden.png', '<b>x</b>.jpeg', '.jpg'].map(m.idFromName),
        }));"""
    )
    assert got["warnings"] == [
        [],
        [],
        ["blurry", "over-exposed"],
        ["blurry: sharpness 12 < 40"],
        ["x: near-duplicate of y"],
    ]
    assert got["ids"][:3] == ["Arla-Milk-1", "hidden", "b-x-b"]
    assert all(re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}", i) for i in got["ids"])


def test_health_says_which_runtime_and_precision_each_stage_runs(browser, server, api) -> None:
    """Issue 24: the Health page shows each kind's detector and embedder runtime and precision
    as GET /v1/info reports them, and a fallback's reason as text (never parsed as HTML)."""
    d = browser
    kinds = api("GET", "/v1/info").json()["kinds"]
    open_console(d, server, "#/health")
    wait_for(d, lambda d: css(d, "[data-role=models] [data-role=runtime]"))
    rows = css(d, "[data-role=models] tbody tr")
    assert len(rows) == len(kinds)
    for row, (kind, models) in zip(rows, kinds.items(), strict=True):
        assert kind in row.text
        for stage in ("detector", "embedder"):
            run = models["runtimes"][stage]
            cell = row.find_element(By.CSS_SELECTOR, f"[data-role=runtime][data-stage={stage}]")
            assert cell.text.startswith(f"{run['runtime']} · {run['precision']}")
    got = d.execute_async_script(
        """const done = arguments[arguments.length - 1];
        import('/console/static/pages/health.js').then((m) => {
          const el = m.runsOn({detector: {runtime: 'torch', precision: 'fp32',
            requested: 'openvino/int8', reason: arguments[0]}}, 'detector');
          document.body.append(el);
          done([el.textContent, m.runsOn({}, 'embedder')]);
        });""",
        XSS,
    )
    assert got == [f"torch · fp32 (asked openvino/int8: {XSS})", None]
    assert injected(d) == 0
    no_alert(d)
