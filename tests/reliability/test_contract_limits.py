"""Limits and validation that belong to the contract: filter and id lists capped with a 422 naming
the limit, forged cursors refused, rotation never null, file names cleaned for display, only
client job types, and a metrics token (issue 17, items 1, 5, 7, 12, 13, 15)."""

import base64
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.test_jobs import upload_some
from tests.conftest import OwnerAuth


def forged(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


FORGED_CURSORS = [
    ("/v1/photos", {}, ["2020-01-01T00:00:00", 5]),
    ("/v1/photos", {}, ["2020-13-45T99:00:00", "x"]),
    ("/v1/people", {}, ["alice", "x" * 5000]),
    ("/v1/jobs", {}, ["yesterday", "x"]),
    ("/v1/photos", {"sort": "uploaded_at"}, ["2020-01-01T00:00:00", ["x"]]),
    ("/v1/photos", {}, [None, None]),
    ("/v1/faces", {}, ["2020-01-01T00:00:00", 5]),
    ("/v1/faces", {"order": "confidence"}, ["NaN", {"a": 1}]),
    ("/v1/review/tags", {}, [10**30, 7]),
    ("/v1/search", {"q": "dog"}, [10**400, "x"]),
    ("/v1/duplicates", {}, [10**30, 5]),
]


@pytest.mark.parametrize(("path", "params", "values"), FORGED_CURSORS)
def test_a_forged_cursor_is_a_422(
    client: TestClient, owner: OwnerAuth, path: str, params: dict[str, str], values: list[Any]
) -> None:
    response = client.get(path, headers=owner.headers, params={**params, "cursor": forged(values)})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "cursor"


def test_rotation_cannot_be_set_to_null(client: TestClient, owner: OwnerAuth) -> None:
    [photo_id] = upload_some(client, owner, 1)
    response = client.patch(f"/v1/photos/{photo_id}", headers=owner.headers, json={"rotation": None})
    assert response.status_code == 422, response.text
    assert (
        client.patch(f"/v1/photos/{photo_id}", headers=owner.headers, json={"caption": None}).status_code
        == 200
    )
    assert client.get(f"/v1/photos/{photo_id}", headers=owner.headers).json()["rotation"] == 0


def test_a_filter_list_over_the_limit_is_a_422_naming_it(client: TestClient, owner: OwnerAuth) -> None:
    response = client.get(
        "/v1/photos", headers=owner.headers, params={"tags": ",".join(f"t{i}" for i in range(256))}
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert "100" in problem["detail"] and problem["errors"][0]["field"] == "tags", problem


def test_a_long_filter_list_is_one_query_not_one_per_value(client: TestClient, owner: OwnerAuth) -> None:
    """100 tags must cost what 2 tags cost: the statement does not grow a subquery per value."""
    from sqlalchemy import event

    engine = client.app.state.sessions.kw["bind"]  # type: ignore[attr-defined]
    statements: dict[int, list[str]] = {2: [], 100: []}
    count = 2

    def remember(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "photo_tags" in statement and "FROM photos" in statement:
            statements[count].append(statement)

    event.listen(engine, "before_cursor_execute", remember)
    try:
        for count in (2, 100):
            tags = ",".join(f"t{i}" for i in range(count))
            for name in ("tags", "any_tags"):
                response = client.get("/v1/photos", headers=owner.headers, params={name: tags})
                assert response.status_code == 200, response.text
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    # A listing by capture time reads the dated photos, then the undated: as many statements either way.
    assert statements[2] and len(statements[2]) == len(statements[100])
    subqueries = [statement.count("FROM photo_tags") for batch in statements.values() for statement in batch]
    assert max(subqueries) == min(subqueries) == 1


def test_all_of_tags_still_means_all_of(client: TestClient, owner: OwnerAuth) -> None:
    photo_ids = upload_some(client, owner, 3)
    for photo_id, names in zip(photo_ids, (["sea", "sun"], ["sea"], ["sun", "sea", "sand"]), strict=True):
        for name in names:
            client.post(f"/v1/photos/{photo_id}/tags", headers=owner.headers, json={"name": name})
    found = client.get("/v1/photos", headers=owner.headers, params={"tags": "sea,sun"}).json()["items"]
    assert sorted(p["id"] for p in found) == sorted([photo_ids[0], photo_ids[2]])
    found = client.get("/v1/photos", headers=owner.headers, params={"tags": "Sea,sea , SUN"}).json()["items"]
    assert sorted(p["id"] for p in found) == sorted([photo_ids[0], photo_ids[2]])


def test_an_id_list_over_the_limit_is_a_422_naming_it(client: TestClient, owner: OwnerAuth) -> None:
    ids = [f"{i:08d}-0000-0000-0000-000000000000" for i in range(10_001)]
    response = client.post("/v1/jobs", headers=owner.headers, json={"type": "analyze", "photo_ids": ids})
    assert response.status_code == 422, response.text
    assert "10000" in response.text


def test_only_client_job_types_can_be_started(client: TestClient, owner: OwnerAuth) -> None:
    response = client.post("/v1/jobs", headers=owner.headers, json={"type": "export"})
    assert response.status_code == 422, response.text
    for job_type in ("analyze", "recognize", "verify"):
        assert client.post("/v1/jobs", headers=owner.headers, json={"type": job_type}).status_code == 202


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("\u202egpj.exe", "gpj.exe"),
        ("../../etc/passwd.jpg", "passwd.jpg"),
        ("nul\x00byte.jpg", "nulbyte.jpg"),
        ("e\u0301cole.jpg", "\u00e9cole.jpg"),
        ("..", "upload"),
    ],
)
def test_file_names_are_cleaned_for_display(
    client: TestClient, owner: OwnerAuth, sent: str, stored: str
) -> None:
    [photo_id] = upload_some(client, owner, 1)
    data = client.get(f"/v1/photos/{photo_id}/original", headers=owner.headers).content
    client.delete(f"/v1/photos/{photo_id}", headers=owner.headers)
    client.delete("/v1/trash", headers=owner.headers)  # gone for good, so the same bytes upload anew
    # Built by hand: HTTP clients percent-encode a NUL in a file name, a hostile one does not.
    body = (
        b'--b\r\nContent-Disposition: form-data; name="files"; filename="'
        + sent.encode()
        + b'"\r\nContent-Type: image/jpeg\r\n\r\n'
        + data
        + b"\r\n--b--\r\n"
    )
    response = client.post(
        "/v1/photos",
        headers={**owner.headers, "Content-Type": "multipart/form-data; boundary=b"},
        content=body,
    )
    assert response.status_code == 201, response.text
    assert response.json()["results"][0]["photo"]["filename"] == stored
