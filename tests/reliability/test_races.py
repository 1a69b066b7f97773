"""Concurrent identical writes are idempotent and names stay unique regardless of letter case,
enforced by the database (issue 17, item 6)."""

import threading
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from db.models import Person
from services.faces.people import get_or_create_by_name
from tests.api.test_jobs import upload_some
from tests.conftest import OwnerAuth


def run_together(count: int, work: Callable[[int], Any]) -> list[Any]:
    """`count` threads released at once by a barrier; their results in thread order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        results[index] = work(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_parallel_identical_tag_posts_all_succeed_once(client: TestClient, owner: OwnerAuth) -> None:
    [photo_id] = upload_some(client, owner, 1)
    statuses = run_together(
        8,
        lambda _: (
            client.post(
                f"/v1/photos/{photo_id}/tags", headers=owner.headers, json={"name": "Holiday"}
            ).status_code
        ),
    )
    assert statuses == [201] * 8
    tags = client.get(f"/v1/photos/{photo_id}", headers=owner.headers).json()["tags"]
    assert [t["name"] for t in tags if t["kind"] == "user"] == ["holiday"]


CASES = ["alice", "Alice", "ALICE", "aLiCe", "AlIcE", "alicE", "ALice", "aLICE"]


def test_parallel_people_in_every_letter_case_make_one_person(client: TestClient, owner: OwnerAuth) -> None:
    statuses = run_together(
        8, lambda i: client.post("/v1/people", headers=owner.headers, json={"name": CASES[i]}).status_code
    )
    assert sorted(statuses) == [201] + [409] * 7
    with client.app.state.sessions() as db:  # type: ignore[attr-defined]
        count = db.scalar(select(func.count()).select_from(Person).where(Person.owner_id == owner.id))
    assert count == 1


def test_parallel_labels_by_name_in_every_letter_case_share_one_person(
    client: TestClient, owner: OwnerAuth
) -> None:
    sessions = client.app.state.sessions  # type: ignore[attr-defined]

    def name_someone(index: int) -> str:
        with sessions() as db:
            person_id = get_or_create_by_name(db, owner_id=owner.id, name=CASES[index]).id
            db.commit()
            return person_id

    assert len(set(run_together(8, name_someone))) == 1
    with sessions() as db:
        assert db.scalar(select(func.count()).select_from(Person).where(Person.owner_id == owner.id)) == 1


def test_the_database_refuses_a_second_spelling_of_a_name(client: TestClient, owner: OwnerAuth) -> None:
    created = client.post("/v1/people", headers=owner.headers, json={"name": "Zoë Smith"})
    assert created.status_code == 201
    other = client.post("/v1/people", headers=owner.headers, json={"name": "Bob"}).json()
    renamed = client.patch(f"/v1/people/{other['id']}", headers=owner.headers, json={"name": "ZOË  SMITH"})
    assert renamed.status_code == 409
