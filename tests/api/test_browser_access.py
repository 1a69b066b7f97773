"""What a browser needs: CORS for listed origins, signed image URLs for <img src>, session cookies."""

import contextlib
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from core.config import Settings
from core.signing import UrlSigner, load_or_create_secret
from db.session import session_scope
from services.owners.service import issue_key, revoke_key
from tests.api.test_photos_upload import EXIF_DIR, EXIF_TRUTH
from tests.conftest import OwnerAuth, make_settings, new_owner

ALLOWED_ORIGIN = "https://photos.example.org"


@pytest.fixture(scope="module")
def browser_settings(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Settings:
    return make_settings(
        backend,
        tmp_path_factory.mktemp(f"browser-{backend}"),
        request,
        cors_origins=[ALLOWED_ORIGIN, "http://localhost:5173"],
        analyze_on_upload=False,
    )


@pytest.fixture(scope="module")
def browser(browser_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(browser_settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def uploaded(browser: TestClient) -> tuple[OwnerAuth, dict]:
    owner = new_owner(browser)
    name = sorted(EXIF_TRUTH)[0]
    files = [("files", (name, (EXIF_DIR / "images" / name).read_bytes(), "image/jpeg"))]
    answer = browser.post("/v1/photos", headers=owner.headers, files=files)
    assert answer.status_code == 201, answer.text
    return owner, answer.json()["results"][0]["photo"]


@contextlib.contextmanager
def web_browser(browser: TestClient) -> Iterator[TestClient]:
    """A fresh cookie jar on the running app: the web app's browser. Not entered as a context, which
    would start the app's lifespan (and its job workers) a second time."""
    web = TestClient(browser.app, raise_server_exceptions=False)
    try:
        yield web
    finally:
        web.close()


def test_preflight_from_a_listed_origin_is_allowed_with_credentials(browser: TestClient) -> None:
    answer = browser.options(
        "/v1/photos",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert answer.headers["access-control-allow-credentials"] == "true"
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "authorization" in answer.headers["access-control-allow-headers"].lower()


def test_preflight_from_another_origin_gets_no_cors_headers(browser: TestClient) -> None:
    answer = browser.options(
        "/v1/photos",
        headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert answer.status_code == 400
    assert "access-control-allow-origin" not in answer.headers
    simple = browser.get("/healthz", headers={"Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in simple.headers


def test_simple_request_from_a_listed_origin_exposes_headers(
    browser: TestClient, uploaded: tuple[OwnerAuth, dict]
) -> None:
    owner, photo = uploaded
    answer = browser.get(f"/v1/photos/{photo['id']}", headers={**owner.headers, "Origin": ALLOWED_ORIGIN})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()


def test_no_cors_headers_when_no_origin_is_configured(client: TestClient) -> None:
    answer = client.options(
        "/v1/photos", headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in answer.headers


def test_signed_urls_load_images_without_a_key(browser: TestClient, uploaded: tuple[OwnerAuth, dict]) -> None:
    owner, photo = uploaded
    original = (EXIF_DIR / "images" / sorted(EXIF_TRUTH)[0]).read_bytes()
    for url, content_type in [
        (photo["thumbnail_url"], "image/jpeg"),
        (photo["original_url"], "image/jpeg"),
        (photo["enhanced_url"], "image/jpeg"),
    ]:
        assert url.startswith(f"/v1/photos/{photo['id']}/"), url
        answer = browser.get(url)  # no Authorization header, no cookie
        assert answer.status_code == 200, (url, answer.text)
        assert answer.headers["content-type"] == content_type
    assert browser.get(photo["original_url"]).content == original
    assert browser.head(photo["thumbnail_url"]).status_code == 200
    # Listings carry them too, and the same image keeps the same URL for a while (browser caching).
    listed = browser.get("/v1/photos", headers=owner.headers).json()["items"][0]
    assert listed["thumbnail_url"] == photo["thumbnail_url"]


def _with(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    params.update(changes)
    return f"{parts.path}?{urlencode(params)}"


def test_tampered_signed_urls_are_refused(browser: TestClient, uploaded: tuple[OwnerAuth, dict]) -> None:
    owner, photo = uploaded
    url = photo["thumbnail_url"]
    other = new_owner(browser)
    attempts = [
        _with(url, size="1024"),  # another size than signed
        _with(url, owner=other.id),  # another owner
        _with(url, expires=str(int(dict(parse_qsl(urlsplit(url).query))["expires"]) + 86400)),
        _with(url, sig="A" * 43),
        url.replace(photo["id"], str(uuid.uuid4())),  # another photo with the same signature
    ]
    for attempt in attempts:
        answer = browser.get(attempt)
        assert answer.status_code == 403, (attempt, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["status"] == 403
    # A signed URL does not turn into write access.
    query = urlsplit(photo["original_url"]).query
    assert browser.delete(f"/v1/photos/{photo['id']}?{query}").status_code == 401
    assert browser.get(f"/v1/photos/{photo['id']}", headers=owner.headers).status_code == 200
    assert browser.get(f"/v1/photos/{photo['id']}", headers=other.headers).status_code == 404


def test_expired_signed_urls_are_refused(
    browser: TestClient, browser_settings: Settings, uploaded: tuple[OwnerAuth, dict]
) -> None:
    owner, photo = uploaded
    # The server's own secret, with a lifetime that already ended.
    expired_signer = UrlSigner(load_or_create_secret(browser_settings.data_dir, None), ttl_seconds=-600)
    url = expired_signer.sign(
        f"/v1/photos/{photo['id']}/thumbnail", owner_id=owner.id, params={"size": "256"}
    )
    answer = browser.get(url)
    assert answer.status_code == 403
    assert "expired" in answer.json()["detail"]
    fresh_signer = UrlSigner(load_or_create_secret(browser_settings.data_dir, None), ttl_seconds=600)
    fresh = fresh_signer.sign(
        f"/v1/photos/{photo['id']}/thumbnail", owner_id=owner.id, params={"size": "256"}
    )
    assert browser.get(fresh).status_code == 200


def test_session_cookie_authenticates_until_signed_out(
    browser: TestClient, uploaded: tuple[OwnerAuth, dict]
) -> None:
    owner, photo = uploaded
    with web_browser(browser) as web:
        assert web.get("/v1/photos").status_code == 401
        created = web.post("/v1/session", json={"api_key": owner.key})
        assert created.status_code == 200, created.text
        assert created.json()["owner_id"] == owner.id
        cookie = created.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        listed = web.get("/v1/photos")
        assert listed.status_code == 200 and [p["id"] for p in listed.json()["items"]] == [photo["id"]]
        assert web.patch(f"/v1/photos/{photo['id']}", json={"caption": "via cookie"}).status_code == 200
        assert web.delete("/v1/session").status_code == 204
        assert web.get("/v1/photos").status_code == 401


def test_session_from_authorization_header_and_bad_keys(browser: TestClient) -> None:
    owner = new_owner(browser)
    with web_browser(browser) as web:
        assert web.post("/v1/session", headers=owner.headers).status_code == 200
        assert web.get("/v1/photos").status_code == 200
    with web_browser(browser) as web:
        refused = web.post("/v1/session", json={"api_key": "sbx_not_a_key"})
        assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"
        assert web.post("/v1/session").status_code == 401
        web.cookies.set("shoebox_session", "forged.9999999999.abc")
        assert web.get("/v1/photos").status_code == 401


def test_revoking_the_key_ends_its_sessions(browser: TestClient) -> None:
    owner = new_owner(browser)
    with session_scope(browser.app.state.sessions) as db:  # type: ignore[attr-defined]
        second = issue_key(db, owner_id=owner.id, name="web")
    with web_browser(browser) as web:
        assert web.post("/v1/session", json={"api_key": second.key}).status_code == 200
        assert web.get("/v1/photos").status_code == 200
        with session_scope(browser.app.state.sessions) as db:  # type: ignore[attr-defined]
            revoke_key(db, key_id=second.id)
        refused = web.get("/v1/photos")
        assert refused.status_code == 401, refused.text
    # The owner's other key still works.
    assert browser.get("/v1/photos", headers=owner.headers).status_code == 200
