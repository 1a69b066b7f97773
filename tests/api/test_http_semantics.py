"""HTTP as clients expect it: HEAD, Allow on 405, conditional GETs, 400/415/422 for bad requests."""

from email.utils import format_datetime, parsedate_to_datetime

import pytest
from fastapi.testclient import TestClient

from tests.api.test_photos_upload import EXIF_DIR, EXIF_TRUTH
from tests.conftest import OwnerAuth


@pytest.fixture
def photo(client: TestClient, owner: OwnerAuth) -> dict:
    name = sorted(EXIF_TRUTH)[1]
    files = [("files", (name, (EXIF_DIR / "images" / name).read_bytes(), "image/jpeg"))]
    return client.post("/v1/photos", headers=owner.headers, files=files).json()["results"][0]["photo"]


def test_head_answers_wherever_get_does(client: TestClient, owner: OwnerAuth, photo: dict) -> None:
    for path in [
        f"/v1/photos/{photo['id']}",
        f"/v1/photos/{photo['id']}/thumbnail",
        "/v1/photos",
        "/healthz",
    ]:
        got = client.get(path, headers=owner.headers)
        head = client.head(path, headers=owner.headers)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"]
        assert head.headers.get("etag") == got.headers.get("etag")
    original = client.head(f"/v1/photos/{photo['id']}/original", headers=owner.headers)
    assert int(original.headers["content-length"]) == photo["size_bytes"]
    assert client.head(f"/v1/photos/{photo['id']}").status_code == 401


def test_405_allows_every_method_of_the_path(client: TestClient, owner: OwnerAuth, photo: dict) -> None:
    answer = client.put(f"/v1/photos/{photo['id']}", headers=owner.headers)
    assert answer.status_code == 405
    assert answer.headers["content-type"] == "application/problem+json"
    assert set(answer.headers["allow"].split(", ")) == {"GET", "HEAD", "PATCH", "DELETE"}
    listing = client.delete("/v1/photos", headers=owner.headers)
    assert set(listing.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}


def test_conditional_gets(client: TestClient, owner: OwnerAuth, photo: dict) -> None:
    for path in [f"/v1/photos/{photo['id']}/original", f"/v1/photos/{photo['id']}/thumbnail"]:
        first = client.get(path, headers=owner.headers)
        etag, last_modified = first.headers["etag"], first.headers["last-modified"]
        parsedate_to_datetime(last_modified)
        for condition in [etag, f"W/{etag}", f'"other", {etag}', "*"]:
            again = client.get(path, headers={**owner.headers, "If-None-Match": condition})
            assert again.status_code == 304 and again.content == b"", (path, condition)
            assert again.headers["etag"] == etag
        assert client.get(path, headers={**owner.headers, "If-None-Match": '"other"'}).status_code == 200
        since = client.get(path, headers={**owner.headers, "If-Modified-Since": last_modified})
        assert since.status_code == 304, path
        earlier = format_datetime(parsedate_to_datetime(last_modified).replace(year=2001), usegmt=True)
        assert client.get(path, headers={**owner.headers, "If-Modified-Since": earlier}).status_code == 200
        # If-None-Match wins over If-Modified-Since (RFC 9110).
        both = {**owner.headers, "If-None-Match": '"other"', "If-Modified-Since": last_modified}
        assert client.get(path, headers=both).status_code == 200
        garbage = client.get(path, headers={**owner.headers, "If-Modified-Since": "yesterday-ish"})
        assert garbage.status_code == 200


def test_malformed_bodies_and_unknown_names(client: TestClient, owner: OwnerAuth, photo: dict) -> None:
    path = f"/v1/photos/{photo['id']}"
    not_json = client.patch(
        path, headers={**owner.headers, "content-type": "application/json"}, content=b"{x"
    )
    assert not_json.status_code == 400 and not_json.json()["status"] == 400
    wrong_type = client.patch(
        path, headers={**owner.headers, "content-type": "text/plain"}, content=b'{"caption": "x"}'
    )
    assert wrong_type.status_code == 415 and wrong_type.headers["content-type"] == "application/problem+json"
    unknown_field = client.patch(path, headers=owner.headers, json={"caption": "x", "captoin": "y"})
    assert unknown_field.status_code == 422
    assert [e["field"] for e in unknown_field.json()["errors"]] == ["captoin"]
    unknown_query = client.get("/v1/photos", headers=owner.headers, params={"tag": "dog", "limit": 5})
    assert unknown_query.status_code == 422
    assert unknown_query.json()["errors"] == [
        {"field": "tag", "location": "query", "message": "unknown query parameter"}
    ]
    # Known parameters of every kind still pass: paging, filters, sort.
    fine = client.get(
        "/v1/photos", headers=owner.headers, params={"tags": "dog", "limit": 5, "sort": "-uploaded_at"}
    )
    assert fine.status_code == 200
    nested = client.post("/v1/exports", headers=owner.headers, json={"search": {"tagz": ["dog"]}})
    assert nested.status_code == 422 and "tagz" in nested.json()["detail"]


def test_docs_pages_use_local_assets(client: TestClient) -> None:
    for page, asset in [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")]:
        html = client.get(page)
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assert "cdn" not in html.text.lower() and "fonts.googleapis" not in html.text
        script = client.get(f"/docs/assets/{asset}")
        assert script.status_code == 200 and len(script.content) > 100_000
        assert f"/docs/assets/{asset}" in html.text
    assert client.get("/docs/assets/swagger-ui.css").status_code == 200
