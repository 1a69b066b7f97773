"""Owners and keys from the admin CLI and the bootstrap key, used over real HTTP."""

import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from api.main import create_app
from core.config import REPO_ROOT, Settings
from db.models import ApiKey, Owner
from db.session import get_engine, session_factory, upgrade_schema
from services.owners.service import ensure_bootstrap_owner, hash_key
from tests.paths import MODEL_DIR


def run_cli(database_url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHOEBOX_DATABASE_URL": database_url, "SHOEBOX_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "services.owners.admin_cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_creates_owner_and_keys_and_revokes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    created = run_cli(url, tmp_path, "owner-create", "alice")
    assert created.returncode == 0, created.stderr
    key = created.stdout.split("api key ")[1].strip()
    duplicate = run_cli(url, tmp_path, "owner-create", "alice")
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    second = run_cli(url, tmp_path, "key-create", "alice")
    key_id = second.stdout.split("key id ")[1].split()[0]
    second_key = second.stdout.split("api key ")[1].strip()

    settings = Settings(data_dir=tmp_path, database_url=url, model_dir=MODEL_DIR, run_job_workers=False)
    with TestClient(create_app(settings)) as client:
        for api_key in (key, second_key):
            assert client.get("/v1/photos", headers={"Authorization": f"Bearer {api_key}"}).status_code == 200
        assert run_cli(url, tmp_path, "key-revoke", key_id).returncode == 0
        assert client.get("/v1/photos", headers={"Authorization": f"Bearer {second_key}"}).status_code == 401
        assert client.get("/v1/photos", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_bootstrap_key_makes_the_default_owner(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        model_dir=MODEL_DIR,
        bootstrap_key="sbx_test_bootstrap_key_123",
        run_job_workers=False,
    )
    for _ in range(2):  # idempotent across restarts
        with TestClient(create_app(settings)) as client:
            response = client.get(
                "/v1/photos", headers={"Authorization": "Bearer sbx_test_bootstrap_key_123"}
            )
            assert response.status_code == 200
            assert client.get("/healthz").json() == {"status": "ok"}
    assert (tmp_path / "shoebox.db").is_file()


def test_processes_starting_together_make_one_bootstrap_owner(postgres_url: str) -> None:
    """An API and its workers start at once and each makes sure the bootstrap owner exists."""
    upgrade_schema(postgres_url)
    engine = get_engine(postgres_url)
    sessions = session_factory(engine)
    name, key = f"race-{uuid.uuid4().hex[:8]}", f"sbx_race_{uuid.uuid4().hex}"
    start = threading.Barrier(6)
    answers: list[str] = []
    failures: list[BaseException] = []

    def start_up() -> None:
        start.wait()
        try:
            with sessions() as db:
                answers.append(ensure_bootstrap_owner(db, key=key, owner_name=name))
        except BaseException as exc:  # collected: the test fails on any of them
            failures.append(exc)

    threads = [threading.Thread(target=start_up) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    with sessions() as db:
        owners = list(db.scalars(select(Owner.id).where(Owner.name == name)))
        keys = list(db.scalars(select(ApiKey.owner_id).where(ApiKey.key_hash == hash_key(key))))
    assert len(owners) == 1 and set(answers) == set(owners) and keys == owners
