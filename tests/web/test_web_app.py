"""The web app end to end in headless Chromium, against a real server with the real models.

One user's whole workflow, in order: first-run sign-up and sign-in, upload with live analysis
progress, tags, naming two people (a suggested group, and one face by hand), review decisions on tags
and face names, search by text and by image, filters by person and month, previous / next through a
list, a rating, an album from a search, trash and restore, an album export whose files exiftool reads
the names and keywords from, removing photos from an album, duplicates, emptying the trash, and
places with their map. The browser console must stay free of errors throughout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import expect, sync_playwright

from api.main import create_app
from tests.api.test_exports import exiftool
from tests.conftest import make_settings
from tests.helpers import wait_until
from tests.paths import REPO_ROOT, TESTDATA_DIR
from tests.reliability.live_server import serve

CHROMIUM = Path("/usr/bin/chromium")
# The README's screenshots; a run rewrites them only when asked, so `make test` leaves the tree clean.
UPDATE_SCREENSHOTS = os.environ.get("SHOEBOX_UPDATE_SCREENSHOTS") == "1"
README_SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
FACES = {
    "face_0001.jpg": "Madonna",
    "face_0010.jpg": "Madonna",
    "face_0015.jpg": "Madonna",
    "face_0002.jpg": "Jerry Seinfeld",
    "face_0013.jpg": "Jerry Seinfeld",
    "face_0016.jpg": "Jerry Seinfeld",
}
DETECTION = ["000000000009.jpg", "000000000025.jpg", "000000000042.jpg"]
DATED = "exif_0001.jpg"  # NIKON COOLPIX P6000, 2008-10-22, near Arezzo
TIMEOUT_MS = 120_000


def photo_files() -> list[Path]:
    return [
        *(TESTDATA_DIR / "faces" / "images" / name for name in FACES),
        *(TESTDATA_DIR / "detection" / "images" / name for name in DETECTION),
        TESTDATA_DIR / "exif" / "images" / DATED,
    ]


def wait_for_images(page: Any, selector: str) -> None:
    """Every image the selector names has loaded (before a screenshot)."""
    page.wait_for_function(
        "s => [...document.querySelectorAll(s)].every(img => img.complete && img.naturalWidth > 0)",
        arg=selector,
    )


@dataclass
class Session:
    base_url: str
    page: Any
    screenshots: Path
    console_errors: list[str] = field(default_factory=list)
    key: str = ""
    group_name: str = ""  # the person named from a suggested group (several photos)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """The test's own look at the service (never the browser's way to do things)."""
        response = httpx.request(
            method,
            self.base_url + path,
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=30,
            **kwargs,
        )
        assert response.status_code < 400, response.text
        return response.json() if response.content else None

    def photo_ids(self) -> dict[str, str]:
        return {p["filename"]: p["id"] for p in self.api("GET", "/v1/photos", params={"limit": 500})["items"]}

    def go(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    def upload_analysed(self, name: str, data: bytes) -> str:
        """Upload one photo through the API (a test's set-up) and wait until it is analysed."""
        answer = self.api("POST", "/v1/photos", files=[("files", (name, data, "image/jpeg"))])
        photo_id: str = answer["results"][0]["photo"]["id"]
        wait_until(
            lambda: self.api("GET", f"/v1/photos/{photo_id}")["analysis_state"] in ("done", "failed"),
            timeout=TIMEOUT_MS / 1000,
            what=f"analysis of {name}",
            every=0.2,
        )
        return photo_id


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Session]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is required for the web tests (Debian package `chromium`; .ci/run installs it)")
    settings = make_settings("sqlite", tmp_path_factory.mktemp("web-data"), request, events_poll_seconds=0.2)
    with serve(create_app(settings)) as (host, port), sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        context = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
        context.set_default_timeout(30_000)
        # Generous waits: the suite shares a small CI machine with the models' own work.
        expect.set_options(timeout=20_000)
        page = context.new_page()
        shots = README_SCREENSHOTS if UPDATE_SCREENSHOTS else tmp_path_factory.mktemp("screenshots")
        session = Session(base_url=f"http://{host}:{port}", page=page, screenshots=shots)
        page.on("console", lambda m: m.type == "error" and session.console_errors.append(m.text))
        page.on("pageerror", lambda error: session.console_errors.append(f"page error: {error}"))
        # The console says only "Failed to load resource"; this names the request.
        page.on(
            "response",
            lambda r: (
                r.status >= 400
                and session.console_errors.append(f"HTTP {r.status} {r.request.method} {r.url}")
            ),
        )
        try:
            yield session
        finally:
            context.close()
            browser.close()


@pytest.fixture(autouse=True)
def no_console_errors(web: Session) -> Iterator[None]:
    """Every step leaves the browser console without an error."""
    yield
    assert web.console_errors == [], web.console_errors


def test_first_run_creates_an_account_and_signs_in(web: Session) -> None:
    page = web.page
    web.go("/")
    expect(page.get_by_role("heading", name="Welcome to Shoebox", exact=True)).to_be_visible()
    page.get_by_label("Account name").fill("alice")
    page.get_by_role("button", name="Create account").click()
    web.key = page.locator("#new-key").inner_text().strip()
    assert web.key.startswith("sbx_")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Library", exact=True)).to_be_visible()
    expect(page.get_by_text("Your library is empty")).to_be_visible()

    # Signing out; a wrong key is refused in words; the right one signs in.
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API key").fill("sbx_not_a_key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("the API key is unknown or revoked")
    refused = [e for e in web.console_errors if "401" in e]
    assert len(refused) == 2 and len(web.console_errors) == 2, web.console_errors  # the browser logs the 401
    web.console_errors.clear()
    page.get_by_label("API key").fill(web.key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Library", exact=True)).to_be_visible()
    # The first-run door is closed now.
    assert web.api("GET", "/v1/setup") == {"owner_needed": False}


def test_upload_shows_each_file_and_live_analysis(web: Session) -> None:
    page = web.page
    page.get_by_role("link", name="Upload", exact=True).first.click()
    files = photo_files()
    page.locator("#files").set_input_files([str(p) for p in files])
    expect(page.locator("#upload-summary")).to_have_text(
        f"{len(files)} uploaded · 0 duplicates · 0 rejected", timeout=TIMEOUT_MS
    )
    expect(page.locator("#analysis-progress")).to_contain_text(
        f"All {len(files)} new photos analysed.", timeout=TIMEOUT_MS
    )
    expect(page.locator(".upload-row[data-status=created]")).to_have_count(len(files))
    # The same file again is a duplicate, said in words.
    page.locator("#files").set_input_files(str(files[0]))
    expect(page.locator(".upload-row").last).to_contain_text("Already in your library")


def test_a_rejected_file_says_why(web: Session, tmp_path: Path) -> None:
    page = web.page
    broken = tmp_path / "notes.jpg"
    broken.write_bytes(b"these are words, not a photo")
    page.locator("#files").set_input_files(str(broken))
    row = page.locator(".upload-row", has_text="notes.jpg")
    expect(row).to_have_attribute("data-status", "rejected")
    expect(row.locator(".detail")).not_to_be_empty()
    # The API answers a request whose every file was rejected with a 4xx problem; the browser logs
    # that response, and nothing else may be logged.
    expected = [e for e in web.console_errors if "Failed to load resource" in e or "POST" in e]
    assert len(expected) == 2 and any("/v1/photos" in e for e in expected), web.console_errors
    web.console_errors[:] = [e for e in web.console_errors if e not in expected]


def test_library_shows_tags_and_the_photo_page(web: Session) -> None:
    page = web.page
    ids = web.photo_ids()
    web.go("/")
    expect(page.locator(".grid .tile")).to_have_count(len(photo_files()))
    expect(page.locator(".timeline .month[data-month='2008-10']")).to_be_visible()
    wait_for_images(page, ".grid img")
    page.screenshot(path=str(web.screenshots / "library.png"))

    page.locator(f".tile[data-photo-id='{ids['000000000025.jpg']}'] a").click()
    expect(page.locator(".tag[data-tag='giraffe']")).to_be_visible()
    expect(page.get_by_role("heading", name="Quality", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Similar photos", exact=True)).to_be_visible()


def _face_owner_names(web: Session) -> dict[str, str]:
    """face id -> the person ground truth says it is."""
    names: dict[str, str] = {}
    for filename, photo_id in web.photo_ids().items():
        for face in web.api("GET", f"/v1/photos/{photo_id}/faces")["items"]:
            names[face["id"]] = FACES.get(filename, "stranger")
    return names


def test_rotation_keeps_face_boxes_on_the_faces_and_the_low_light_view(web: Session) -> None:
    page = web.page
    photo_id = web.photo_ids()["face_0002.jpg"]
    web.go(f"/photo/{photo_id}")
    box = page.locator(".face-box").first
    expect(box).to_be_visible()

    def box_drawn_at(rotation: int) -> None:
        """The API's box for this rotation is where the page draws it."""
        page.wait_for_function(
            "async r => (await (await fetch(`/v1/photos/${r.id}`)).json()).rotation === r.rotation",
            arg={"id": photo_id, "rotation": rotation},
        )
        x, y, _, _ = web.api("GET", f"/v1/photos/{photo_id}/faces")["items"][0]["bbox"]
        page.wait_for_function(
            "p => { const s = document.querySelector('.face-box').style;"
            " return Math.abs(parseFloat(s.left) - p.x) < 0.01"
            " && Math.abs(parseFloat(s.top) - p.y) < 0.01; }",
            arg={"x": x * 100, "y": y * 100},
        )

    before = web.api("GET", f"/v1/photos/{photo_id}/faces")["items"][0]["bbox"]
    page.get_by_role("button", name="Rotate right").click()
    box_drawn_at(90)
    assert web.api("GET", f"/v1/photos/{photo_id}/faces")["items"][0]["bbox"] != before
    page.get_by_role("button", name="Rotate left").click()
    box_drawn_at(0)
    page.get_by_role("button", name="Low-light view").click()
    expect(page.get_by_role("button", name="Low-light view")).to_have_attribute("aria-pressed", "true")
    wait_for_images(page, ".photo-image")


def test_people_named_from_a_group_and_by_labelling_a_face(web: Session) -> None:
    page = web.page
    truth = _face_owner_names(web)
    web.go("/people")
    cluster = page.locator("form.cluster").first
    expect(cluster).to_be_visible()
    face_ids = [
        src.split("/v1/faces/")[1].split("/")[0]
        for src in cluster.locator(".cluster-face img").evaluate_all(
            "els => els.map(e => e.getAttribute('src'))"
        )
    ]
    majority = max({truth[f] for f in face_ids}, key=[truth[f] for f in face_ids].count)
    for index, face_id in enumerate(face_ids):
        if truth[face_id] != majority:
            cluster.locator(".cluster-face input").nth(index).uncheck()
    cluster.locator("input[list=people-names]").fill(majority)
    cluster.get_by_role("button", name="Name them").click()
    web.group_name = majority
    expect(page.locator(".person-card", has_text=majority)).to_be_visible()
    wait_for_images(page, "#main img")
    page.screenshot(path=str(web.screenshots / "people.png"))

    # The other person: open a photo of an unnamed face and name the face on the photo.
    other = "Jerry Seinfeld" if majority == "Madonna" else "Madonna"
    face_id = next(f for f, name in truth.items() if name == other)
    photo_id = next(
        pid
        for fn, pid in web.photo_ids().items()
        if any(face["id"] == face_id for face in web.api("GET", f"/v1/photos/{pid}/faces")["items"])
    )
    web.go(f"/photo/{photo_id}")
    page.locator(f".face-box[data-face-id='{face_id}']").click()
    page.locator("#face-name").fill(other)
    page.get_by_role("button", name="Save name").click()
    expect(page.locator(f".face-box[data-face-id='{face_id}']")).to_contain_text(other)
    wait_for_images(page, ".photo-image")
    page.screenshot(path=str(web.screenshots / "photo.png"))

    web.go("/people")
    expect(page.locator(".person-card")).to_have_count(2)
    people = {p["name"] for p in web.api("GET", "/v1/people")["items"]}
    assert people == {"Madonna", "Jerry Seinfeld"}


def test_review_confirms_a_suggestion_with_the_keyboard(web: Session) -> None:
    page = web.page
    web.go("/review")
    subject = page.locator("#review-subject")
    expect(subject).to_be_visible()
    first = web.api("GET", "/v1/review/tags", params={"limit": 1})["items"][0]
    assert subject.inner_text() == first["tag"]["name"]
    page.keyboard.press("y")
    expect(page.locator("#review-count")).to_contain_text("1 reviewed")
    photo = web.api("GET", f"/v1/photos/{first['photo']['id']}")
    states = {t["state"] for t in photo["tags"] if t["name"] == first["tag"]["name"]}
    assert states == {"confirmed"}


def test_review_face_names_with_the_keyboard(web: Session) -> None:
    """The model's guesses at the faces nobody named, one at a time: y confirms a guess, n rejects one.
    How many guesses the model makes here depends on which person was named from the group (one or
    two); the first is answered by the ground truth, a second one is rejected (and named again)."""
    page = web.page
    truth = _face_owner_names(web)

    def guesses() -> list[dict[str, Any]]:
        params = {"unlabeled": "true", "order": "confidence", "limit": 100}
        return [
            f for f in web.api("GET", "/v1/faces", params=params)["items"] if f["person"] or f["suggestion"]
        ]

    def face_now(face_id: str) -> dict[str, Any]:
        return next(
            f for f in web.api("GET", "/v1/faces", params={"limit": 200})["items"] if f["id"] == face_id
        )

    queue = wait_until(guesses, timeout=20, what="a face-name guess", every=0.2)
    web.go("/review")
    page.get_by_role("tab", name="Face names").click()
    expect(page.get_by_role("tab", name="Face names")).to_have_attribute("aria-selected", "true")
    for done, item in enumerate(queue[:2], start=1):
        guess = (item["person"] or item["suggestion"]["person"])["name"]
        expect(page.locator("#review-subject")).to_have_text(guess)
        confirm = done == 1 and truth[item["id"]] == guess
        page.keyboard.press("y" if confirm else "n")
        expect(page.locator("#review-count")).to_contain_text(f"{done} reviewed")
        face = face_now(item["id"])
        if confirm:
            assert face["person_source"] == "user" and face["person"]["name"] == guess, face
        else:
            assert face["person"] is None, face
            assert (face["suggestion"] or {}).get("person", {}).get("name") != guess, face
            if truth[item["id"]] != "stranger":  # the later steps expect the true names
                web.api("POST", "/v1/faces/label", json={"face_ids": [item["id"]], "name": truth[item["id"]]})
    assert page.evaluate("location.search") == "?queue=faces"


def test_previous_and_next_walk_the_list_a_photo_was_opened_from(web: Session) -> None:
    page = web.page
    web.go("/")
    tiles = page.locator(".grid .tile")
    expect(tiles).to_have_count(len(photo_files()))
    order = tiles.evaluate_all("els => els.map(e => e.dataset.photoId)")
    tiles.nth(0).locator("a").click()
    expect(page.locator("#photo-position")).to_have_text(f"1 of {len(order)}")
    expect(page.get_by_role("button", name="Previous photo")).to_be_disabled()
    page.keyboard.press("ArrowRight")
    expect(page).to_have_url(re.compile(f"/photo/{order[1]}$"))
    expect(page.locator("#photo-position")).to_have_text(f"2 of {len(order)}")
    page.get_by_role("button", name="Next photo").click()
    expect(page).to_have_url(re.compile(f"/photo/{order[2]}$"))
    # The button keeps the focus from photo to photo, so Enter walks on.
    expect(page.get_by_role("button", name="Next photo")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(f"/photo/{order[3]}$"))
    expect(page.locator("#photo-position")).to_have_text(f"4 of {len(order)}")
    page.keyboard.press("ArrowLeft")
    expect(page).to_have_url(re.compile(f"/photo/{order[2]}$"))
    expect(page.locator("#photo-position")).to_have_text(f"3 of {len(order)}")
    # A photo moved to the trash from its page leaves the list: the next one takes its place.
    page.get_by_role("button", name="Move to trash").click()
    page.locator("dialog").get_by_role("button", name="Move to trash").click()
    expect(page).to_have_url(re.compile(f"/photo/{order[3]}$"))
    expect(page.locator("#photo-position")).to_have_text(f"3 of {len(order) - 1}")
    web.api("POST", "/v1/trash/restore", json={"photo_ids": [order[2]]})
    # Back returns to the list, not through every photo seen.
    page.get_by_role("button", name="← Back").click()
    expect(page.get_by_role("heading", name="Library", exact=True)).to_be_visible()

    # A list of several pages: its next page is loaded when the walk reaches its end. The grid
    # below pages two photos at a time and holds the second page back until the test lets it go.
    page.evaluate(
        """async () => {
        const { pagedGrid, photoTile } = await import('/ui.js');
        const { api } = await import('/api.js');
        window.releasePage = null;
        const held = new Promise((resolve) => { window.releasePage = resolve; });
        const fetchPage = async (cursor) => {
          if (cursor) await held;
          return api('/v1/photos', { query: { sort: '-taken_at', limit: 2, cursor } });
        };
        document.getElementById('main').replaceChildren(pagedGrid(fetchPage, (photo) => photoTile(photo)));
    }"""
    )
    expect(page.locator(".paged .tile")).to_have_count(2)
    page.locator(".paged .tile").nth(1).locator("a").click()
    expect(page.locator("#photo-position")).to_have_text("2 of 2+")
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(200)
    assert page.url.endswith(f"/photo/{order[1]}")  # waiting for the next page
    page.evaluate("window.releasePage()")
    expect(page).to_have_url(re.compile(f"/photo/{order[2]}$"))
    expect(page.locator("#photo-position")).to_contain_text("3 of ")


def test_search_by_text_and_by_image(web: Session) -> None:
    page = web.page
    ids = web.photo_ids()
    web.go("/search")
    page.locator("#search-q").fill("giraffe")
    page.get_by_role("button", name="Search", exact=True).click()
    hit = page.locator(f"#search-results .tile[data-photo-id='{ids['000000000025.jpg']}']")
    expect(hit).to_be_visible()
    expect(hit.locator("figcaption")).to_contain_text("giraffe")
    # A result opens with previous / next through the results.
    results = page.locator("#search-results .tile").count()
    hit.locator("a").click()
    expect(page.locator("#photo-position")).to_contain_text(f" of {results}")
    page.get_by_role("button", name="← Back").click()
    expect(page.get_by_role("heading", name="Search", exact=True)).to_be_visible()

    page.locator("#search-image").set_input_files(
        str(TESTDATA_DIR / "detection" / "images" / "000000000042.jpg")
    )
    best = page.locator("#search-results .tile").first
    expect(best).to_have_attribute("data-photo-id", ids["000000000042.jpg"])
    expect(best.locator("figcaption")).to_contain_text("near-duplicate")


def test_filters_by_person_and_by_month(web: Session) -> None:
    page = web.page
    ids = web.photo_ids()
    person = next(p for p in web.api("GET", "/v1/people")["items"] if p["name"] == web.group_name)
    expected = {p["id"] for p in web.api("GET", f"/v1/people/{person['id']}/photos")["items"]}
    web.go("/")
    page.locator("[data-filter=person]", has_text=web.group_name).click()
    expect(page.locator(".grid .tile")).to_have_count(len(expected))
    shown = set(page.locator(".grid .tile").evaluate_all("els => els.map(e => e.dataset.photoId)"))
    assert shown == expected
    page.get_by_role("button", name="Clear all filters").click()
    page.locator(".timeline .month[data-month='2008-10']").click()
    expect(page.locator(".grid .tile")).to_have_count(1)
    expect(page.locator(".grid .tile")).to_have_attribute("data-photo-id", ids[DATED])
    assert "month=2008-10" in page.url


def test_a_selection_is_edited_in_bulk(web: Session) -> None:
    page = web.page
    ids = web.photo_ids()
    chosen = [ids["000000000025.jpg"], ids["000000000042.jpg"]]
    web.go("/")
    for photo_id in chosen:
        page.locator(f".tile[data-photo-id='{photo_id}'] input.select").check()
    toolbar = page.get_by_role("toolbar", name="Selected photos")
    expect(toolbar).to_contain_text("2 selected")
    toolbar.get_by_role("button", name="♥ Favourite").click()
    expect(toolbar).to_be_hidden()
    for photo_id in chosen:
        expect(page.locator(f".tile[data-photo-id='{photo_id}'] .badge.fav")).to_be_visible()
    assert {p["id"] for p in web.api("GET", "/v1/photos", params={"favorite": "true"})["items"]} == set(
        chosen
    )


def test_rating_trash_and_restore(web: Session) -> None:
    page = web.page
    photo_id = web.photo_ids()["000000000009.jpg"]
    web.go(f"/photo/{photo_id}")
    page.get_by_role("radio", name="4 stars").click()
    expect(page.get_by_role("radio", name="4 stars")).to_have_attribute("aria-checked", "true")
    page.wait_for_function(
        "async id => (await (await fetch('/v1/photos/' + id)).json()).rating === 4", arg=photo_id
    )
    assert web.api("GET", f"/v1/photos/{photo_id}")["rating"] == 4
    page.keyboard.press("f")  # the keyboard way to favourite
    expect(page.get_by_role("button", name="♥ Favourite")).to_have_attribute("aria-pressed", "true")
    assert web.api("GET", f"/v1/photos/{photo_id}")["favorite"] is True

    page.get_by_role("button", name="Move to trash").click()
    page.locator("dialog").get_by_role("button", name="Move to trash").click()
    expect(page.get_by_role("heading", name="Library", exact=True)).to_be_visible()
    expect(page.locator(f".tile[data-photo-id='{photo_id}']")).to_have_count(0)
    web.go("/trash")
    page.locator(f".tile[data-photo-id='{photo_id}'] input.select").check()
    page.get_by_role("button", name="Restore selected").click()
    expect(page.get_by_text("The trash is empty")).to_be_visible()
    assert web.api("GET", f"/v1/photos/{photo_id}")["trashed_at"] is None


def test_album_from_a_search_exported_with_names_and_keywords(web: Session, tmp_path: Path) -> None:
    page = web.page
    name = web.group_name
    web.go(f"/search?q={name}")
    expect(page.locator("#search-results .tile").first).to_be_visible()
    page.get_by_role("button", name="Save as album").click()
    page.locator("dialog input").fill(name)
    page.locator("dialog").get_by_role("button", name="Create album").click()
    page.locator("#main").get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    album = web.api("GET", "/v1/albums")["items"][0]
    assert album["photo_count"] >= 2

    page.get_by_role("button", name="Export album").click()
    expect(page.get_by_role("heading", name="Exports", exact=True)).to_be_visible()
    download_link = page.get_by_role("link", name="Download zip")
    expect(download_link).to_be_visible(timeout=TIMEOUT_MS)
    with page.expect_download() as download_info:
        download_link.click()
    archive = tmp_path / "album.zip"
    download_info.value.save_as(archive)
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(tmp_path / "unzipped")
        manifest = json.loads(zipped.read("manifest.json"))
    assert shutil.which("exiftool"), "exiftool is required (Debian package libimage-exiftool-perl)"
    images = sorted(p for p in (tmp_path / "unzipped").rglob("*.jpg"))
    assert len(images) == album["photo_count"], manifest
    for meta in exiftool(images):
        subjects = meta.get("HierarchicalSubject") or []
        assert f"People|{name}" in subjects, meta
        assert f"Albums|{name}" in subjects, meta
        assert any(s.startswith(("Objects|", "Labels|", "Categories|")) for s in subjects), meta
        assert name in (meta.get("Keywords") or []) or name in (meta.get("Subject") or []), meta
        regions = meta.get("RegionInfo", {}).get("RegionList", [])
        assert any(region.get("Name") == name for region in regions), meta


def test_photos_are_removed_from_an_album(web: Session) -> None:
    page = web.page
    album = next(a for a in web.api("GET", "/v1/albums")["items"] if a["name"] == web.group_name)
    web.go(f"/albums/{album['id']}")
    tiles = page.locator(".grid .tile")
    expect(tiles).to_have_count(album["photo_count"])
    removed = tiles.first.get_attribute("data-photo-id")
    tiles.first.locator("input.select").check()
    page.get_by_role("button", name="Remove selected").click()
    expect(page.get_by_text("Removed from the album")).to_be_visible()
    expect(tiles).to_have_count(album["photo_count"] - 1)
    expect(page.locator(f".tile[data-photo-id='{removed}']")).to_have_count(0)
    assert web.api("GET", f"/v1/albums/{album['id']}")["photo_count"] == album["photo_count"] - 1
    assert web.api("GET", f"/v1/photos/{removed}")["trashed_at"] is None  # still in the library


def test_duplicates_keep_the_best_and_trash_the_rest(web: Session, tmp_path: Path) -> None:
    page = web.page
    original = web.photo_ids()["000000000042.jpg"]
    copy_path = tmp_path / "copy_of_42.jpg"
    Image.open(TESTDATA_DIR / "detection" / "images" / "000000000042.jpg").save(copy_path, quality=40)
    copy = web.upload_analysed(copy_path.name, copy_path.read_bytes())
    web.go("/duplicates")
    group = page.locator(".dup-group", has=page.locator(f".tile[data-photo-id='{copy}']"))
    expect(group).to_be_visible()
    expect(group.locator(f".tile[data-photo-id='{original}']")).to_be_visible()
    expect(group.locator("figcaption").first).to_have_text("Best shot")
    best = group.locator(".tile").first.get_attribute("data-photo-id")
    group.get_by_role("button", name="Keep the best, trash the rest").click()
    expect(page.locator(f".tile[data-photo-id='{copy}']")).to_have_count(0)
    trashed = {p["id"] for p in web.api("GET", "/v1/trash")["items"]}
    assert trashed == {original, copy} - {best}
    assert best not in trashed


def test_the_trash_is_emptied_for_good(web: Session) -> None:
    page = web.page
    trashed = [p["id"] for p in web.api("GET", "/v1/trash")["items"]]
    assert trashed, "the duplicates step left a photo in the trash"
    web.go("/trash")
    expect(page.locator(".grid .tile")).to_have_count(len(trashed))
    page.get_by_role("button", name="Empty trash").click()
    dialog = page.locator("dialog")
    expect(dialog).to_contain_text("cannot be undone")
    dialog.get_by_role("button", name="Empty trash").click()
    expect(page.get_by_text("The trash is empty")).to_be_visible()
    assert web.api("GET", "/v1/trash")["items"] == []
    gone = httpx.get(
        f"{web.base_url}/v1/photos/{trashed[0]}", headers={"Authorization": f"Bearer {web.key}"}, timeout=30
    )
    assert gone.status_code == 404


def test_places_list_and_map_open_their_photos(web: Session) -> None:
    page = web.page
    dated = web.photo_ids()[DATED]
    # A second place far from the first (Northumberland, 2002), for a second circle on the map.
    elsewhere = web.upload_analysed(
        "exif_0007.jpg", (TESTDATA_DIR / "exif" / "images" / "exif_0007.jpg").read_bytes()
    )
    places = web.api("GET", "/v1/places")["items"]
    assert len(places) == 2, places
    arezzo = next(p for p in places if p["photo_id"] == dated)
    name = arezzo["city"] or arezzo["region"] or arezzo["country"]

    web.go("/")
    page.get_by_role("link", name="Places", exact=True).click()
    expect(page.get_by_role("heading", name="Places", exact=True)).to_be_visible()
    expect(page.locator(".place-card")).to_have_count(2)
    expect(page.locator(f".place-card img[src='/v1/photos/{elsewhere}/thumbnail']")).to_be_visible()
    card = page.locator(f".place-card[data-place='{name}']")
    expect(card).to_contain_text("1 photo")
    expect(card.locator("img")).to_have_attribute("src", f"/v1/photos/{dated}/thumbnail")

    # The map: one circle per area; the keyboard opens one, and it lists its photos.
    dots = page.locator("#place-map .cluster-dot")
    expect(dots).to_have_count(2)
    expect(page.locator("#map-status")).to_contain_text("2 areas on the map")
    wait_for_images(page, "#main img")
    page.screenshot(path=str(web.screenshots / "places.png"))
    dot = page.locator("#place-map .cluster-dot[aria-label*='43.47']")
    dot.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#cluster-photos .tile")).to_have_count(1)
    expect(page.locator(f"#cluster-photos .tile[data-photo-id='{dated}']")).to_be_visible()
    page.get_by_role("link", name="Open in the library").click()
    expect(page.get_by_role("heading", name="Library", exact=True)).to_be_visible()
    expect(page.locator("[data-filter=area]")).to_be_visible()
    expect(page.locator(".grid .tile")).to_have_count(1)
    assert "radius_km=" in page.url

    # A place opens the library filtered by it.
    page.go_back()
    page.locator(f".place-card[data-place='{name}'] a").click()
    expect(page.locator(".grid .tile")).to_have_count(1)
    expect(page.locator(".grid .tile")).to_have_attribute("data-photo-id", dated)
    assert "place=" in page.url
    page.goto(f"{web.base_url}/?place=Atlantis")  # a place with no photos: an empty state in words
    expect(page.get_by_text("No photos match these filters")).to_be_visible()


def test_exports_say_what_they_hold(web: Session) -> None:
    page = web.page
    web.go("/exports")
    row = page.locator(".export").first
    expect(row.locator(".export-title")).to_have_text(f"Album “{web.group_name}”")


def test_a_persons_faces_are_checked_with_the_keyboard(web: Session) -> None:
    page = web.page
    person = next(p for p in web.api("GET", "/v1/people")["items"] if p["name"] == web.group_name)
    web.go(f"/people/{person['id']}")
    first = page.locator(".face-card").first
    first.locator("button.face-pick").focus()
    page.keyboard.press("y")
    expect(first).to_have_attribute("data-decided", "yes")
    face_id = first.get_attribute("data-face-id")
    assert face_id
    face = next(
        f
        for f in web.api("GET", "/v1/faces", params={"person_id": person["id"]})["items"]
        if f["id"] == face_id
    )
    assert face["person_source"] == "user"

    # Hidden people leave the people screen (and the filters) until shown again.
    page.get_by_role("button", name="Hide").click()
    expect(page.get_by_role("button", name="Show in people")).to_be_visible()
    assert web.api("GET", f"/v1/people/{person['id']}")["hidden"] is True
    web.go("/people")
    expect(page.locator(".person-card", has_text=web.group_name)).to_have_count(0)
    page.get_by_role("button", name="Show hidden people").click()
    page.locator(".person-card", has_text=web.group_name).get_by_role("link").click()
    page.get_by_role("button", name="Show in people").click()
    expect(page.get_by_role("button", name="Hide")).to_be_visible()
    assert web.api("GET", f"/v1/people/{person['id']}")["hidden"] is False


SCREENS = [
    "/",
    "/upload",
    "/search?q=giraffe",
    "/people",
    "/review",
    "/albums",
    "/places",
    "/duplicates",
    "/exports",
    "/trash",
    "/photo/... (opened from the library, with previous / next)",
]


@pytest.mark.parametrize("path", SCREENS)
def test_every_screen_fits_a_phone(web: Session, path: str, tmp_path: Path) -> None:
    page = web.page
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        if path.startswith("/photo/"):
            web.go("/")
            page.locator(".grid .tile a").nth(1).click()
            expect(page.locator("#photo-position")).to_be_visible()
        else:
            web.go(path)
        expect(page.locator("#main h1")).to_be_visible()
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
        page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
        assert overflow <= 1, f"{path} scrolls sideways by {overflow} px at phone width"
        assert page.locator(".state.error").count() == 0
    finally:
        page.set_viewport_size({"width": 1360, "height": 900})


def test_the_library_grid_keeps_only_the_rows_on_screen(web: Session) -> None:
    """Tens of thousands of photos: the grid loads them page by page as the end nears, and the page
    only ever holds the tiles around the screen."""
    page = web.page
    web.go("/albums")
    expect(page.locator("#main h1")).to_be_visible()
    page.evaluate(
        """async () => {
        const { virtualGrid, h } = await import('/ui.js');
        const total = 30000;
        const fetchPage = async (cursor) => {
          const start = Number(cursor || 0);
          const count = Math.min(500, total - start);
          const items = Array.from({ length: count }, (_, i) => ({ id: `p${start + i}` }));
          return { items, next_cursor: start + 500 < total ? String(start + 500) : null };
        };
        const tile = (item) => h('figure', { class: 'tile', dataset: { photoId: item.id } }, item.id);
        document.getElementById('main').replaceChildren(virtualGrid(fetchPage, tile));
    }"""
    )
    # 60 pages, each fetched as the end nears: a deadline rather than a count, for a busy machine.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if page.locator(".paged[data-state=complete]").count():
            break
        page.evaluate("window.scrollTo(0, document.scrollingElement.scrollHeight)")
        page.wait_for_timeout(20)
    expect(page.locator(".paged")).to_have_attribute("data-state", "complete")
    # The last page may still be growing the grid: scroll to the end until its last tile is drawn.
    last = page.locator(".tile[data-photo-id='p29999']")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not last.count():
        page.evaluate("window.scrollTo(0, document.scrollingElement.scrollHeight)")
        page.wait_for_timeout(50)
    expect(last).to_be_visible()
    assert page.locator(".tile").count() < 400
    page.evaluate("window.scrollTo(0, 0)")
    expect(page.locator(".tile[data-photo-id='p0']")).to_be_visible()
    assert page.locator(".tile").count() < 400
